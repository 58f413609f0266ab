"""One socket generation on trio and trio-websocket, from connecting to closed.

:func:`run_link` connects (TCP, TLS, the WebSocket handshake, each bounded by the handshake
timeout), then reads frames until the socket closes (trio-websocket's reader, awaited in the
link's own task where the release allows it, see :mod:`._inbox`), while one writer at a time
writes to it: a writer task, started whenever frames are queued and gone once they are written,
or the task of an intent that found the link idle, which writes its own frames
(:meth:`Link.hold`). It decides nothing: every outcome is reported to the session's engine
(``link_opened``, ``frame_received``, ``link_closed``, ``link_failed``, ``link_refused``). The
session talks to a running link through :class:`Link`.
"""

from __future__ import annotations

import math
import socket
import ssl
from collections.abc import Awaitable, Callable
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
from ..runtime import MAX_INBOUND_MESSAGE, Engine, LinkTarget, QueuedClose
from ._inbox import HOOKS, Inbox, attach

__all__ = ["Link", "run_link"]

_E = TypeVar("_E", bound=BaseException)
_WRITER: Final = f"{__name__}.Link._write"
"""The writer task's name (trio would otherwise format it at every start)."""


class Link:
    """One socket generation: its cancel scope, its outgoing queue and, while frames are queued
    on an open socket, its writer task.

    The writer runs only while there is something to write: an idle link is one task (which
    runs trio-websocket's reader itself), not three, and a plain queue rather than a memory
    channel.
    """

    __slots__ = (
        "_close_timeout", "_done", "_finished", "_inline", "_queue", "_spare", "_write_job",
        "_writer", "_writing", "_ws", "closing", "ended", "generation", "scope",
    )  # fmt: skip

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.scope = trio.CancelScope()
        self._done: trio.Event | None = None
        """Set once the link has ended; made only if someone waits for that."""
        self._finished = False
        # Unbounded: queuing must never block, because the session queues without awaiting. A
        # list the writer takes whole, not a deque, whose first block alone is some 600 bytes.
        self._queue: list[str | QueuedClose] = []
        self._spare: list[str | QueuedClose] = []
        """The list the writer hands over when it takes the queue: the two take turns, so a
        write leaves no new list behind to live until the next one (a heartbeat's)."""
        self._writer: trio.Nursery | None = None
        """Where a writer runs, while the socket is open."""
        self._ws: WebSocketConnection | None = None
        self._close_timeout = 0.0
        self._write_job: Callable[[], Awaitable[None]] | None = None
        """The writer, bound once: a writer starts per burst of frames (every heartbeat), and
        one made per start was one more object in flight each time."""
        self._writing = False
        """Whether a writer is running (a writer task, or a caller writing what it held)."""
        self._inline: trio.CancelScope | None = None
        """The shielded scope of a caller's own write while it runs (an abort cancels it)."""
        self.closing = False
        """Whether a close is queued: nothing is queued after it."""
        self.ended = False
        """Whether nothing more will be written (the writer failed, or the link has ended)."""

    def send(self, text: str) -> bool:
        """Queue a frame for the link's writer; ``False`` if the writer is gone."""
        if self.ended or self.closing:
            return False
        self._queue.append(text)
        self._write_soon()
        return True

    def close(self, code: int, reason: str) -> None:
        """Close politely after the frames already queued (or at once if the writer is gone);
        a close already queued stands."""
        if self.closing:
            return
        if self.ended:
            self.scope.cancel()
            return
        self._queue.append(QueuedClose(code, reason))
        self.closing = True
        self._write_soon()

    def abort(self) -> None:
        """Drop the socket now, without a closing handshake."""
        self.scope.cancel()
        self._stop_inline()

    def _stop_inline(self) -> None:
        if self._inline is not None:
            self._inline.cancel()

    async def aclose(self, code: int, reason: str, timeout: float) -> None:
        """:meth:`close`, then wait (at most ``timeout``) until the link has ended."""
        self.close(code, reason)
        if self._finished:
            await trio.lowlevel.checkpoint()
            return
        if self._done is None:
            self._done = trio.Event()
        with trio.move_on_after(timeout):
            await self._done.wait()

    def finished(self) -> None:
        """The link has ended: it takes no more frames, and :meth:`aclose` returns."""
        self.ended = self._finished = True
        self._writer = None
        self._stop_inline()
        # The bound writer refers back to the link: dropped, no cycle is left for the
        # garbage collector to find.
        self._write_job = self._ws = None
        if self._done is not None:
            self._done.set()

    def opened(self, nursery: trio.Nursery, ws: WebSocketConnection, close_timeout: float) -> None:
        """The socket is open: write what is queued, and what comes, in ``nursery``."""
        self._writer = nursery
        self._ws = ws
        self._close_timeout = close_timeout
        self._write_job = self._write
        self._write_soon()

    def reading_ended(self) -> None:
        """The socket is closed: no writer is started any more, and a caller's write stops."""
        self._writer = None
        self._stop_inline()

    def hold(self) -> bool:
        """If the link is open and idle (no writer running, nothing queued), hold the frames
        queued from now on for the caller to write with :meth:`write_held`, which it must then
        await (it does so right after feeding an intent); ``False`` (nothing held) otherwise.

        A writer task per burst of frames was a task started and three scheduler rounds before
        the frame was written, on every message's round trip.
        """
        if self._writer is None or self._writing or self._queue or self.ended or self.closing:
            return False
        self._writing = True
        return True

    async def write_held(self) -> None:
        """Write the frames queued since :meth:`hold`, in this task, up to a queued close (the
        writer task closes); frames queued meanwhile go to a writer task after them.

        The write is shielded from the caller's cancellation (delivered at its next checkpoint),
        since a frame cut short would break the framing of the whole socket; an abort of the
        link cancels it. It waits only while the socket's buffer is full. Yields once at least.
        """
        batch, ws = self._queue, self._ws
        if not batch or ws is None or self.ended or self.scope.cancel_called:
            self._writing = False
            self._write_soon()
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        self._queue, self._spare = self._spare, batch
        written = 0
        self._inline = scope = trio.CancelScope(shield=True)
        with scope:
            try:
                for item in batch:
                    if isinstance(item, QueuedClose):
                        self._queue[:0] = batch[written:]  # the writer task closes, in order
                        break
                    await ws.send_message(item)
                    written += 1
            except ConnectionClosed:
                self.ended = True
            except BaseException:
                self.ended = True  # cancelled by an abort: what is queued is never written
                raise
            finally:
                batch.clear()
                self._inline = None
                self._writing = False
        if not self.ended:
            self._write_soon()
        if not written:
            await trio.lowlevel.cancel_shielded_checkpoint()

    def _write_soon(self) -> None:
        writer, job = self._writer, self._write_job
        if writer is not None and job is not None and not self._writing and self._queue:
            self._writing = True
            writer.start_soon(job, name=_WRITER)

    async def _write(self) -> None:
        """The link's only writer: frames in order, then at most one close; it returns when
        the queue is empty (the next frame starts another)."""
        ws = self._ws
        close_timeout = self._close_timeout
        assert ws is not None
        try:
            while self._queue:
                batch, self._queue = self._queue, self._spare
                self._spare = batch
                for item in batch:
                    if isinstance(item, QueuedClose):
                        self.ended = True
                        with trio.move_on_after(close_timeout):
                            await ws.aclose(item.code, item.reason)
                        self.scope.cancel()
                        return
                    try:
                        await ws.send_message(item)
                    except ConnectionClosed:
                        self.ended = True
                        return
                batch.clear()
        except BaseException:
            self.ended = True  # cancelled: what is still queued is never written
            raise
        finally:
            self._spare.clear()  # what was taken and not written never will be
            self._writing = False


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
            stream = await _open_stream(target, ssl_context)
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


async def _open_stream(
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
