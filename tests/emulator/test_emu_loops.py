"""The emulator on each event loop: plain asyncio, the loop check, and the trio acceptor."""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import types
from typing import Any

import httpx
import pytest
import trio
import trio.testing
import websockets
from hypercorn.config import Config
from hypercorn.events import Closed, RawData

from polyai_messaging.emulator import DEMO_CONNECTOR_TOKEN, EmulatorConfig, run_emulator
from polyai_messaging.emulator import _hypercorn_server as server_module
from polyai_messaging.emulator._serve_trio import TrioAcceptor, _TCPServer

from .helpers import TIMEOUT


def test_a_plain_asyncio_program_can_run_it_and_drop_a_socket() -> None:
    # No anyio test runner here: the emulator is started from asyncio.run, as an app would.
    async def main() -> None:
        async with (
            run_emulator(EmulatorConfig.fast()) as emulator,
            httpx.AsyncClient(base_url=emulator.base_url) as http,
        ):
            headers = {"X-Token": DEMO_CONNECTOR_TOKEN, "X-Host": "localhost"}
            token = (await http.post("/api/v1/access-token", headers=headers)).json()
            auth = {"Authorization": f"Bearer {token['access_token']}"}
            session_id = (await http.post("/api/v1/sessions", headers=auth)).json()["session_id"]
            url = emulator.ws_connect_url(session_id, token["access_token"])
            async with websockets.connect(url) as ws:
                replay = await asyncio.wait_for(ws.recv(), TIMEOUT)
                emulator.state.set_faults("drop-after=0")
                await ws.send('{"type": "EVENT_TYPE_HEARTBEAT", "payload": {}}')
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), TIMEOUT)
        assert json.loads(replay)["payload"]["events"][0]["type"] == "EVENT_TYPE_SESSION_START"
        assert closed.value.rcvd is None  # no close frame: the TCP connection was shut down

    asyncio.run(main())


@pytest.mark.anyio
@pytest.mark.parametrize("port", [-1, 65536, 99999])
async def test_a_port_out_of_range_is_a_value_error(port: int) -> None:
    with pytest.raises(ValueError, match=f"port must be between 0 and 65535, got {port}"):
        async with run_emulator(port=port):
            pass  # pragma: no cover


@pytest.mark.anyio
async def test_another_async_library_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.SimpleNamespace(current_async_library=lambda: "curio")
    monkeypatch.setattr(server_module, "sniffio", fake)
    with pytest.raises(RuntimeError, match="trio or asyncio, not curio"):
        async with run_emulator():
            pass  # pragma: no cover


class _BusyStream:
    async def send_all(self, data: bytes) -> None:
        raise trio.BusyResourceError("another task is currently sending data")


class _RecordingProtocol:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def handle(self, event: Any) -> None:
        self.events.append(event)


@pytest.mark.trio
async def test_a_send_that_finds_the_trio_stream_busy_closes_the_connection() -> None:
    # hypercorn 0.18 sends EOF outside its send lock when a peer goes away; a frame being sent
    # then meets trio.BusyResourceError. It must end the connection as a broken stream does,
    # not reach the app (or crash the connection's task group) as an exception.
    server = _TCPServer(None, Config(), None, {}, _BusyStream())  # type: ignore[arg-type]
    protocol = _RecordingProtocol()
    server.protocol = protocol  # type: ignore[assignment]
    await server.protocol_send(RawData(b"frame"))
    assert protocol.events == [Closed()]


class _FlakyListener:
    """A listener whose accept fails with each of ``errors`` before returning ``stream``."""

    def __init__(self, errors: list[OSError], stream: trio.SocketStream) -> None:
        self.errors = errors
        self.stream = stream

    async def accept(self) -> trio.SocketStream:
        await trio.lowlevel.checkpoint()
        if self.errors:
            raise self.errors.pop(0)
        return self.stream


@pytest.mark.trio
async def test_trio_accept_waits_and_retries_when_out_of_descriptors(
    autojump_clock: trio.testing.MockClock,
) -> None:
    acceptor = TrioAcceptor(socket.create_server(("127.0.0.1", 0)), None, None, Config())  # type: ignore[arg-type]
    left, right = trio.socket.socketpair()
    with left, right:
        stream = trio.SocketStream(left)
        too_many = OSError(errno.EMFILE, "too many open files")
        acceptor._listener = _FlakyListener([too_many, too_many], stream)  # type: ignore[assignment]
        started = trio.current_time()
        accepted = await acceptor.accept()
        assert accepted.socket is left
        assert trio.current_time() - started == pytest.approx(0.2)

        other = OSError(errno.EPERM, "something else")
        acceptor._listener = _FlakyListener([other], stream)  # type: ignore[assignment]
        with pytest.raises(OSError, match="something else"):
            await acceptor.accept()
    acceptor.close()
