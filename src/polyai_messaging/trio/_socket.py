"""One socket generation on trio and trio-websocket, from connecting to closed.

:func:`run_link` connects (TCP, TLS, the WebSocket handshake, each bounded by the handshake
timeout), then reads frames until the socket closes (trio-websocket's reader, awaited in the
link's own task where the release allows it, see :mod:`._inbox`), while the link's writers
(:class:`._link.Link`) write to it. It decides nothing: every outcome is reported to the
session's engine (``link_opened``, ``frame_received``, ``link_closed``, ``link_failed``,
``link_refused``).
"""

from __future__ import annotations

import math
import ssl
from typing import Any, Final, TypeVar

import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    WebSocketConnection,
    wrap_client_stream,
)
from wsproto import ConnectionType, WSConnection
from wsproto.handshake import H11Handshake

from ..driver import OpenSocket
from ..runtime import MAX_INBOUND_MESSAGE, Engine, LinkTarget
from ._inbox import HOOKS, Inbox, attach
from ._link import Link
from ._streams import open_stream

__all__ = ["run_link"]

_E = TypeVar("_E", bound=BaseException)


async def run_link(
    engine: Engine, link: Link, request: OpenSocket, ssl_context: ssl.SSLContext | None
) -> None:
    """Run one socket generation, from connecting to closed; return when it has ended.

    Only cancellation (an abort) and bugs propagate. On return the link is finished
    (:meth:`Link.finished`) and no longer in ``engine.links``.
    """
    try:
        with link.scope:
            target = await engine.link_target(request)
            if target is not None:
                await _connect(engine, link, target, ssl_context)
    finally:
        link.finished()
        engine.links.pop(link.generation, None)


async def _connect(
    engine: Engine, link: Link, target: LinkTarget, ssl_context: ssl.SSLContext | None
) -> None:
    """Open TCP (and TLS), then hand over to :func:`_read` (or :func:`_handshake`)."""
    timeout = engine.state.config.connect_timeout_seconds
    try:
        with trio.fail_after(timeout):
            stream = await open_stream(target, ssl_context)
    except (OSError, trio.BrokenResourceError, trio.TooSlowError) as exc:
        engine.link_failed(link.generation, exc)
        return
    # We own the stream, so it is closed whichever way the link ends (trio-websocket leaves
    # it open after an abnormal closure), and an abort needs no closing handshake.
    try:
        inbox = _reading(engine, link, stream, target) if HOOKS else None
        if inbox is not None:  # awaited here, not in a function choosing: one frame less
            await _read(engine, link, inbox, target, timeout)
        else:
            await _handshake(engine, link, stream, target, timeout)
    finally:
        if isinstance(stream, trio.SocketStream):
            # What ``aclose_forcefully`` does, without the checkpoint it then cancels (a cancel
            # scope, and a ``Cancelled`` raised and caught, for every link that ends).
            stream.socket.close()
        else:
            await trio.aclose_forcefully(stream)


def _reading(
    engine: Engine,
    link: Link,
    stream: trio.SocketStream | trio.SSLStream[trio.SocketStream],
    target: LinkTarget,
) -> _Reading | None:
    """A connection on ``stream`` for the link's own task to read (:mod:`._inbox`), or
    ``None`` where this release of trio-websocket does not allow it."""
    ws = WebSocketConnection(
        stream,
        WSConnection(ConnectionType.CLIENT),
        host=target.host_header,
        path=target.resource,
        max_message_size=MAX_INBOUND_MESSAGE,
    )
    inbox = _Reading(engine, link, ws)
    return inbox if attach(ws, inbox) else None


class _Reading(Inbox):
    """What the link's task does with what trio-websocket's reader, awaited in it, reads."""

    __slots__ = ("engine", "generation", "link", "nursery", "ws")

    def __init__(self, engine: Engine, link: Link, ws: WebSocketConnection) -> None:
        super().__init__()
        self.engine = engine
        self.generation = link.generation
        self.link = link
        self.ws: WebSocketConnection | None = ws
        self.nursery: trio.Nursery | None = None
        """Where the reader is awaited and writers run (its scope stops both)."""

    def opened(self) -> None:
        nursery, ws = self.nursery, self.ws
        assert nursery is not None
        assert ws is not None
        nursery.cancel_scope.deadline = math.inf  # the handshake's
        _forget_handshake(ws)
        self.link.opened(nursery, ws, self.engine.state.config.close_timeout_seconds)
        self.engine.link_opened(self.generation)

    def received(self, message: str | bytes) -> None:
        self.engine.frame_received(self.generation, message)

    def ended(self) -> None:
        if self.nursery is not None:
            self.nursery.cancel_scope.cancel()


async def _read(
    engine: Engine, link: Link, inbox: _Reading, target: LinkTarget, timeout: float
) -> None:
    """The WebSocket handshake and then the link until the socket closes, with
    trio-websocket's reader awaited in this task, in the scope of the nursery where writers
    run: the handshake's timeout is that scope's deadline until the connection opens, and once
    it has closed, reader and writers stop."""
    generation = link.generation
    ws = inbox.ws
    assert ws is not None
    refusal: ConnectionRejected | None = None
    async with trio.open_nursery() as nursery:
        nursery.cancel_scope.deadline = trio.current_time() + timeout  # the handshake's
        inbox.nursery = nursery
        try:
            await ws._reader_task()
        except ConnectionRejected as exc:
            refusal = exc
        finally:
            link.reading_ended()
            nursery.cancel_scope.cancel()  # a writer's frames can no longer be written
            # The connection refers to the inbox: without these, a cycle for the collector.
            inbox.nursery = inbox.ws = None
    if refusal is not None:
        retry_after = _header(refusal.headers, b"retry-after")
        body = refusal.body or b""
        engine.link_refused(generation, target.token, refusal.status_code, body, retry_after)
    elif not inbox.is_open:
        engine.link_failed(generation, "handshake failed")
    else:
        close = ws.closed
        code, reason = (None, "") if close is None else (close.code, close.reason or "")
        engine.link_closed(generation, code, reason)


async def _handshake(
    engine: Engine,
    link: Link,
    stream: trio.SocketStream | trio.SSLStream[trio.SocketStream],
    target: LinkTarget,
    timeout: float,
) -> None:
    """The WebSocket handshake on ``stream``, then the link until the socket closes, through
    trio-websocket's public API: its reader in a task of its own, each message taken from its
    channel (where :func:`_read` cannot be used)."""
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
            _forget_handshake(ws)
            link.opened(nursery, ws, engine.state.config.close_timeout_seconds)
            try:
                engine.link_opened(generation)
                while True:  # reading in this frame: an idle link's task is as shallow as can be
                    try:
                        data = await ws.get_message()
                    except ConnectionClosed as exc:
                        close = exc.reason
                        code, reason = (
                            (None, "") if close is None else (close.code, close.reason or "")
                        )
                        break
                    engine.frame_received(generation, data)
            finally:
                # However reading ends (an abort, too), before the nursery can close: a frame
                # queued later must not start a writer in it.
                link.reading_ended()
            engine.link_closed(generation, code, reason)
            await _let_end(nursery)
    except BaseExceptionGroup as group:
        # No part of the group is kept in a local while one propagates: its traceback holds
        # this frame, and the frame's locals would hold it back, a cycle keeping the link's
        # connection alive until a full collection of the garbage collector.
        if opened or _unexpected(group):
            raise
        if group.subgroup(trio.Cancelled) is not None:
            # Aborted as the handshake failed (the driver's connect deadline is the same as
            # ours): the abort is what happened, and the link's scope takes it.
            raise _cancellations(group) from None
        rejected = group.split(ConnectionRejected)[0]
        if rejected is None:
            engine.link_failed(generation, "handshake failed")
        else:
            refusal = _first(rejected, ConnectionRejected)
            retry_after = _header(refusal.headers, b"retry-after")
            body = refusal.body or b""
            engine.link_refused(generation, target.token, refusal.status_code, body, retry_after)


async def _let_end(nursery: trio.Nursery) -> None:
    """End the link's other tasks on the public path (trio-websocket's reader, a writer): let
    them run to their end for a few scheduling rounds, then cancel what is left.

    Once the socket has closed, the reader ends by itself within two rounds. Cancelling it at
    once raised a ``Cancelled`` in it twice (at each of its last checkpoints) and once in this
    task, waiting for it: three exceptions and their tracebacks for every link that ends.
    """
    for _ in range(_ROUNDS):
        if not nursery.child_tasks:
            return
        await trio.lowlevel.cancel_shielded_checkpoint()
    nursery.cancel_scope.cancel()


_ROUNDS: Final = 3
"""Scheduling rounds a link's other tasks get to end by themselves once its socket has closed."""


_FINISHED: Final = H11Handshake(ConnectionType.CLIENT)
"""Stands for the finished opening handshake of every open link: once the connection is open,
wsproto only asks it for its pending events, and it has none."""


def _forget_handshake(ws: WebSocketConnection) -> None:
    """Drop what the opening handshake left in ``ws``, which it would otherwise keep as long
    as the socket is open: wsproto's HTTP/1.1 handshake (h11's connection, its buffers and
    the request; some 2.5 KiB a link), trio-websocket's copy of the request (whose target
    holds the access token), the response's headers (``ws.handshake_headers``, which nothing
    reads) and the future a server's connection receives its request in (a client's never
    does; trio-websocket drops it once used).

    All are private attributes, which no option reaches: where a release has moved or
    changed them, nothing is dropped.
    """
    protocol = getattr(ws, "_wsproto", None)
    if not isinstance(protocol, WSConnection) or not protocol.client:
        return
    if protocol.connection is not None and isinstance(
        getattr(protocol, "handshake", None), H11Handshake
    ):
        protocol.handshake = _FINISHED
    if getattr(ws, "_initial_request", None) is not None:
        ws._initial_request = None
    if getattr(ws, "_handshake_headers", None):
        ws._handshake_headers = ()
    if getattr(ws, "_connection_proposal", None) is not None:
        ws._connection_proposal = None


# What a failed handshake may raise besides a refusal; anything else is a bug and propagates.
_CONNECT_ERRORS: Final = (
    trio.Cancelled,
    HandshakeError,
    ConnectionClosed,
    OSError,
    trio.BrokenResourceError,
    trio.TooSlowError,
)


def _unexpected(group: BaseExceptionGroup[Any]) -> bool:
    """Whether a failed handshake raised something besides a refusal and the errors a
    connection attempt may meet (a bug, which propagates)."""
    others = group.split(ConnectionRejected)[1]
    return others is not None and others.split(_CONNECT_ERRORS)[1] is not None


def _cancellations(group: BaseExceptionGroup[Any]) -> BaseExceptionGroup[trio.Cancelled]:
    """The cancellations in ``group``, which holds some."""
    cancelled = group.subgroup(trio.Cancelled)
    assert cancelled is not None
    return cancelled


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
