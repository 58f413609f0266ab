"""One socket generation on trio and trio-websocket, from connecting to closed.

:func:`run_link` connects (TCP, TLS, the WebSocket handshake, each bounded by the handshake
timeout), then reads frames until the socket closes, while one writer task is the only code that
writes to it. It decides nothing: every outcome is reported to the session's engine
(``link_opened``, ``frame_received``, ``link_closed``, ``link_failed``, ``link_refused``). The
session talks to a running link through :class:`Link`.
"""

from __future__ import annotations

import math
import ssl
from typing import Any, Final, TypeVar

import attrs
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    WebSocketConnection,
    wrap_client_stream,
)

from ..driver import OpenSocket
from ..runtime import MAX_INBOUND_MESSAGE, Engine, LinkTarget, QueuedClose

__all__ = ["Link", "run_link"]

_E = TypeVar("_E", bound=BaseException)


@attrs.define(eq=False)
class Link:
    """One socket generation: its cancel scope and its outgoing queue."""

    generation: int
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    done: trio.Event = attrs.field(factory=trio.Event)
    outgoing: trio.MemorySendChannel[str | QueuedClose] = attrs.field(init=False)
    pending: trio.MemoryReceiveChannel[str | QueuedClose] = attrs.field(init=False)
    closing: bool = False
    """Whether a close is queued: nothing is queued after it."""

    def __attrs_post_init__(self) -> None:
        # Unbounded: queuing must never block, because the session queues without awaiting.
        self.outgoing, self.pending = trio.open_memory_channel[str | QueuedClose](math.inf)

    def send(self, text: str) -> bool:
        """Queue a frame for the link's writer; ``False`` if the writer is gone."""
        return self._offer(text)

    def close(self, code: int, reason: str) -> None:
        """Close politely after the frames already queued (or at once if the writer is gone);
        a close already queued stands."""
        if self.closing:
            return
        if self._offer(QueuedClose(code, reason)):
            self.closing = True
            self.outgoing.close()
        else:
            self.scope.cancel()

    def abort(self) -> None:
        """Drop the socket now, without a closing handshake."""
        self.scope.cancel()

    async def aclose(self, code: int, reason: str, timeout: float) -> None:
        """:meth:`close`, then wait (at most ``timeout``) until the link has ended."""
        self.close(code, reason)
        with trio.move_on_after(timeout):
            await self.done.wait()

    def _offer(self, item: str | QueuedClose) -> bool:
        try:
            self.outgoing.send_nowait(item)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return False
        return True


async def run_link(
    engine: Engine, link: Link, request: OpenSocket, ssl_context: ssl.SSLContext | None
) -> None:
    """Run one socket generation, from connecting to closed; return when it has ended.

    Only cancellation (an abort) and bugs propagate. On return the link's queue is closed and
    ``link.done`` is set.
    """
    try:
        with link.scope:
            target = await engine.link_target(request)
            if target is not None:
                await _connect(engine, link, target, ssl_context)
    finally:
        link.outgoing.close()
        link.done.set()


async def _connect(
    engine: Engine, link: Link, target: LinkTarget, ssl_context: ssl.SSLContext | None
) -> None:
    """Open TCP (and TLS), then hand over to :func:`_handshake`."""
    timeout = engine.state.config.connect_timeout_seconds
    try:
        with trio.fail_after(timeout):
            stream = await _open_stream(target, ssl_context)
    except (OSError, trio.BrokenResourceError, trio.TooSlowError) as exc:
        engine.link_failed(link.generation, exc)
        return
    # We own the stream, so it is closed whichever way the link ends (trio-websocket leaves
    # it open after an abnormal closure), and an abort needs no closing handshake.
    try:
        await _handshake(engine, link, stream, target, timeout)
    finally:
        await trio.aclose_forcefully(stream)


async def _handshake(
    engine: Engine,
    link: Link,
    stream: trio.SocketStream | trio.SSLStream[trio.SocketStream],
    target: LinkTarget,
    timeout: float,
) -> None:
    """The WebSocket handshake on ``stream``, then the link until the socket closes."""
    generation = link.generation
    opened = False
    try:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(timeout):
                ws = await wrap_client_stream(
                    nursery,
                    stream,
                    target.host_header,
                    target.resource,
                    max_message_size=MAX_INBOUND_MESSAGE,
                )
            opened = True
            engine.link_opened(generation)
            code, reason = await _pump(engine, link, ws)
            engine.link_closed(generation, code, reason)
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        rejected, others = group.split(ConnectionRejected)
        if opened or (others is not None and others.split(_CONNECT_ERRORS)[1] is not None):
            raise
        if rejected is None:
            engine.link_failed(generation, "handshake failed")
        else:
            refusal = _first(rejected, ConnectionRejected)
            retry_after = _header(refusal.headers, b"retry-after")
            body = refusal.body or b""
            engine.link_refused(generation, target.token, refusal.status_code, body, retry_after)


async def _pump(engine: Engine, link: Link, ws: WebSocketConnection) -> tuple[int | None, str]:
    """Run the link's writer and read frames until the socket closes; return the close."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_write, link, ws, engine.state.config.close_timeout_seconds)
        while True:
            try:
                data = await ws.get_message()
            except ConnectionClosed as exc:
                nursery.cancel_scope.cancel()
                close = exc.reason
                return (None, "") if close is None else (close.code, close.reason or "")
            engine.frame_received(link.generation, data)
    raise AssertionError("unreachable")  # pragma: no cover


async def _write(link: Link, ws: WebSocketConnection, close_timeout: float) -> None:
    """The link's only writer: frames in order, then at most one close."""
    async with link.pending:
        async for item in link.pending:
            if isinstance(item, QueuedClose):
                with trio.move_on_after(close_timeout):
                    await ws.aclose(item.code, item.reason)
                link.scope.cancel()
                return
            try:
                await ws.send_message(item)
            except ConnectionClosed:
                return


# What a failed handshake may raise besides a refusal; anything else is a bug and propagates.
_CONNECT_ERRORS: Final = (
    HandshakeError,
    ConnectionClosed,
    OSError,
    trio.BrokenResourceError,
    trio.TooSlowError,
)


def _first(group: BaseExceptionGroup[Any], kind: type[_E]) -> _E:
    """The first exception of type ``kind`` in a (possibly nested) group."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first(exc, kind)
        if isinstance(exc, kind):
            return exc
    raise LookupError(kind.__name__)  # pragma: no cover


def _header(headers: tuple[tuple[bytes, bytes], ...], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _open_stream(
    target: LinkTarget, context: ssl.SSLContext | None
) -> trio.SocketStream | trio.SSLStream[trio.SocketStream]:
    """Open TCP (and TLS, handshake included, so certificate errors surface here)."""
    if not target.tls:
        return await trio.open_tcp_stream(target.host, target.port)
    stream = await trio.open_ssl_over_tcp_stream(
        target.host, target.port, ssl_context=context or ssl.create_default_context(),
        https_compatible=True,
    )  # fmt: skip
    try:
        await stream.do_handshake()
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return stream
