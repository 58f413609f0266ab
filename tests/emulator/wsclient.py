"""A minimal WebSocket client (wsproto over an anyio byte stream) that runs on trio and asyncio.

The emulator's tests talk to it through this client on both event loops, so that one test reads
the same on either. It has no background task: frames are read when a test asks for one, and a
close frame from the server is answered then.
"""

from __future__ import annotations

import contextlib
import ssl
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import anyio
import anyio.abc
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

ABNORMAL_CLOSURE = 1006
"""The code a client reports when the connection ended without a close frame."""

_RECEIVE_SIZE = 65536


class ConnectionClosed(Exception):
    """The connection is closed; ``code`` is the server's close code, or 1006 without one."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"connection closed with {code} {reason}".strip())
        self.code = code
        self.reason = reason


class ConnectionRejected(Exception):
    """The server answered the upgrade request with an HTTP response."""

    def __init__(self, status_code: int, body: bytes) -> None:
        super().__init__(f"handshake rejected with {status_code}")
        self.status_code = status_code
        self.body = body


class WebSocket:
    """One client connection after a successful handshake."""

    def __init__(
        self, stream: anyio.abc.ByteStream, protocol: WSConnection, pending: deque[Event]
    ) -> None:
        self._stream = stream
        self._protocol = protocol
        self._events = pending
        self._closed: ConnectionClosed | None = None

    async def send_message(self, message: str | bytes) -> None:
        """Send one text (``str``) or binary (``bytes``) message."""
        event = TextMessage(message) if isinstance(message, str) else BytesMessage(message)
        await self._stream.send(self._protocol.send(event))

    async def get_message(self) -> str | bytes:
        """The next whole message; :class:`ConnectionClosed` once the connection is closed."""
        text: list[str] = []
        data: list[bytes] = []
        while True:
            event = await self._next_event()
            if isinstance(event, TextMessage):
                text.append(event.data)
                if event.message_finished:
                    return "".join(text)
            elif isinstance(event, BytesMessage):
                data.append(bytes(event.data))
                if event.message_finished:
                    return b"".join(data)
            elif isinstance(event, Ping):
                await self._stream.send(self._protocol.send(event.response()))

    async def aclose(self) -> None:
        """Close politely (code 1000) and wait for the server's close reply."""
        if self._closed is not None:
            return
        await self._stream.send(self._protocol.send(CloseConnection(code=1000)))
        with contextlib.suppress(ConnectionClosed):
            while True:  # frames the server sent before it saw the close are dropped
                await self._next_event()

    async def _next_event(self) -> Event:
        if self._closed is not None:
            raise self._closed
        while not self._events:
            try:
                data = await self._stream.receive(_RECEIVE_SIZE)
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                self._closed = ConnectionClosed(ABNORMAL_CLOSURE)
                raise self._closed from None
            self._protocol.receive_data(data)
            self._events.extend(self._protocol.events())
        event = self._events.popleft()
        if isinstance(event, CloseConnection):
            if self._protocol.state is ConnectionState.REMOTE_CLOSING:
                await self._stream.send(self._protocol.send(event.response()))
            self._closed = ConnectionClosed(event.code, event.reason or "")
            raise self._closed
        return event


@asynccontextmanager
async def open_websocket(
    url: str, ssl_context: ssl.SSLContext | None = None, *, timeout: float = 5.0
) -> AsyncIterator[WebSocket]:
    """Connect to a ``ws://`` or ``wss://`` URL; the TCP stream is always closed on exit.

    A refused handshake raises :class:`ConnectionRejected`. On normal exit the socket is closed
    politely (within ``timeout``); on an error or a cancellation the stream is just closed.
    """
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    target = f"{parts.path}?{parts.query}" if parts.query else parts.path
    stream: anyio.abc.ByteStream
    if ssl_context is None:
        stream = await anyio.connect_tcp(parts.hostname, parts.port)
    else:
        stream = await anyio.connect_tcp(
            parts.hostname, parts.port, ssl_context=ssl_context, tls_standard_compatible=False
        )
    try:
        with anyio.fail_after(timeout):
            websocket = await _handshake(stream, parts.netloc, target)
        yield websocket
        with anyio.fail_after(timeout):
            await websocket.aclose()
    finally:
        await anyio.aclose_forcefully(stream)


async def _handshake(stream: anyio.abc.ByteStream, host: str, target: str) -> WebSocket:
    protocol = WSConnection(ConnectionType.CLIENT)
    await stream.send(protocol.send(Request(host=host, target=target)))
    events: deque[Event] = deque()
    status, body = 0, b""
    while True:
        while not events:
            try:
                data = await stream.receive(_RECEIVE_SIZE)
            except anyio.EndOfStream:
                raise ConnectionClosed(ABNORMAL_CLOSURE) from None
            protocol.receive_data(data)
            events.extend(protocol.events())
        event = events.popleft()
        if isinstance(event, AcceptConnection):
            return WebSocket(stream, protocol, events)
        if isinstance(event, RejectConnection):
            status = event.status_code
            if not event.has_body:
                raise ConnectionRejected(status, body)
        elif isinstance(event, RejectData):
            body += event.data
            if event.body_finished:
                raise ConnectionRejected(status, body)
