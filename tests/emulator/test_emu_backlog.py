"""The listen queue: a burst of connections waits for the accept loop instead of being turned
away (a thousand clients reconnecting at once must not wait for their SYNs to be resent)."""

from __future__ import annotations

import resource
import selectors
import socket
import time
from pathlib import Path

import pytest

from polyai_messaging.emulator import run_emulator

pytestmark = pytest.mark.anyio

BURST = 400
"""More than the 128 an ordinary listen queue holds, few enough for small descriptor limits."""


def _kernel_allows(burst: int) -> bool:
    somaxconn = Path("/proc/sys/net/core/somaxconn")
    if not somaxconn.exists():
        return False
    files, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return int(somaxconn.read_text()) > burst and files > 3 * burst


def _connected_within(port: int, burst: int, seconds: float) -> int:
    """Start ``burst`` connections at once and count those the kernel completes in time,
    without letting the event loop (and so the accept loop) run meanwhile."""
    clients = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(burst)]
    try:
        with selectors.DefaultSelector() as selector:
            for client in clients:
                client.setblocking(False)
                client.connect_ex(("127.0.0.1", port))
                selector.register(client, selectors.EVENT_WRITE)
            connected = 0
            deadline = time.monotonic() + seconds
            while connected < burst and (left := deadline - time.monotonic()) > 0:
                for key, _ in selector.select(left):
                    selector.unregister(key.fileobj)
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                        connected += 1
            return connected
    finally:
        for client in clients:
            client.close()


@pytest.mark.skipif(not _kernel_allows(BURST), reason="needs Linux with a deep enough somaxconn")
async def test_a_burst_of_connections_waits_in_the_listen_queue() -> None:
    async with run_emulator() as emulator:
        # Less than the 1 s after which a dropped SYN would be resent.
        assert _connected_within(emulator.port, BURST, 0.5) == BURST
