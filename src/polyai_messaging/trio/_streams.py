"""A link's byte stream on trio: TCP, and TLS over it."""

from __future__ import annotations

import socket
import ssl
from typing import Final

import trio

from ..runtime import LinkTarget

__all__ = ["open_stream"]


async def open_stream(
    target: LinkTarget, context: ssl.SSLContext | None
) -> trio.SocketStream | trio.SSLStream[trio.SocketStream]:
    """Open TCP (and TLS, handshake included, so certificate errors surface here)."""
    host = target.host
    tcp = await _open_tcp(host, target.port)
    if not target.tls:
        return tcp
    # What ``trio.open_ssl_over_tcp_stream`` does with a context, over our TCP stream.
    stream = trio.SSLStream(
        tcp, context or ssl.create_default_context(), server_hostname=host, https_compatible=True
    )
    try:
        await stream.do_handshake()
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return stream


async def _open_tcp(host: str, port: int) -> trio.SocketStream:
    """TCP to ``host``: where it is an IP address, a plain connect to it; otherwise
    ``trio.open_tcp_stream``, which looks the name up and tries its addresses in turn,
    overlapping them.

    ``open_tcp_stream`` connects even to one address in a task of a nursery of its own, then
    cancels its own wait: a task, a nursery, cancel scopes, closures and a ``Cancelled`` with its
    traceback for every link, all alive while it connects, which in a reconnect storm is long
    enough for the garbage collector to promote them (some 80 objects a reconnect).
    """
    try:
        # Numeric only: this never waits for a name server, and fails at once for a name.
        targets = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=_NUMERIC)
    except socket.gaierror:
        targets = []
    if len(targets) != 1:
        return await trio.open_tcp_stream(host, port)
    family, kind, protocol, _, address = targets[0]
    sock = trio.socket.socket(family, kind, protocol)
    try:
        await sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


_NUMERIC: Final = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
