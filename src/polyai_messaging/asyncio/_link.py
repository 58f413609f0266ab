"""One socket generation on asyncio and ``websockets``, from connecting to closed.

:func:`run_link` connects (TCP, TLS and the WebSocket handshake, together bounded by the connect
timeout), then reads frames until the socket closes, while one writer task is the only code that
writes to it. It decides nothing: every outcome is reported to the session's engine
(``link_opened``, ``frame_received``, ``link_closed``, ``link_failed``, ``link_refused``). The
session talks to a running link through :class:`Link`; cancelling the link's task drops the TCP
connection without a closing handshake.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
import weakref
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.protocol import State
from websockets.uri import WebSocketURI, parse_uri

from ..driver import OpenSocket
from ..runtime import MAX_INBOUND_MESSAGE, Engine, LinkTarget, QueuedClose, RedactingLogger

try:
    from websockets.proxy import get_proxy
except ImportError:  # websockets < 15 connects directly: it has no proxy to look up
    get_proxy = None  # type: ignore[assignment]

__all__ = ["Link", "ProxyChoice", "Start", "run_link"]

Start = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]
"""Runs a coroutine as a task of the session (cancelled when the session closes)."""

# What a failed connection attempt may raise (TimeoutError is an OSError); anything else is a
# bug and propagates.
_CONNECT_ERRORS: Final = (OSError, WebSocketException)

_NO_HEADERS: Final = Headers()
"""What an open connection keeps of its handshake response's headers: one empty ``Headers``
for every link (nothing writes to them once the handshake is over)."""
_DROPPED_URI: Final = parse_uri("ws://dropped.invalid/")
"""What an open connection's protocol keeps of the URI it connected to, which holds the access
token and is read only to write the handshake request."""


class Link:
    """One socket generation: its task, its outgoing queue and, while frames are queued on an
    open socket, its writer task.

    The writer runs only while there is something to write: an idle link is one task, with a
    plain queue rather than an :class:`asyncio.Queue` and no task group of its own.
    """

    __slots__ = (
        "_open",
        "_queue",
        "_spare",
        "_start",
        "_writer",
        "closing",
        "generation",
        "task",
        "writable",
    )

    def __init__(self, generation: int, start: Start | None = None) -> None:
        self.generation = generation
        self._start = start
        self.task: asyncio.Task[None] | None = None
        """Runs :func:`run_link`; set by the session as it starts the link."""
        # Unbounded: queuing must never block, because the session queues without awaiting. A
        # list the writer takes whole, not a deque, whose first block alone is some 600 bytes.
        self._queue: list[str | QueuedClose] = []
        self._spare: list[str | QueuedClose] = []
        """The list the writer hands over when it takes the queue: the two take turns, so a
        write leaves no new list behind to live until the next one (a heartbeat's)."""
        self._open: ClientConnection | None = None
        """The socket, while it is open."""
        self._writer: asyncio.Task[None] | None = None
        self.writable = True
        """Whether the writer may still write (it stops after a close, or when the socket
        fails)."""
        self.closing = False
        """Whether a close is queued: nothing is queued after it."""

    def send(self, text: str) -> bool:
        """Write a frame, or queue it for the link's writer; ``False`` if the writer is gone.

        On an idle link (open, nothing queued, no writer, nothing buffered in the transport)
        the frame is written at once, as ``websockets`` would write it, since writing it there
        cannot wait: no task is started, and the caller does not wait a loop round for one. A
        heartbeat of every idle session, and each message sent, takes that path.
        """
        if not self.writable or self.closing:
            return False
        ws = self._open
        if ws is not None and self._writer is None and not self._queue and _idle(ws):
            ws.protocol.send_text(text.encode())
            for data in ws.protocol.data_to_send():
                ws.transport.write(data)
            return True
        self._queue.append(text)
        self._write_soon()
        return True

    def close(self, code: int, reason: str) -> None:
        """Close politely after the frames already queued (or at once if the writer is gone);
        a close already queued stands."""
        if not self.writable:
            self.abort()
        elif not self.closing:
            self._queue.append(QueuedClose(code, reason))
            self.closing = True
            self._write_soon()

    def abort(self) -> None:
        """Drop the socket now, without a closing handshake."""
        self.writable = False
        if self.task is not None:
            self.task.cancel()

    def cancel(self) -> None:
        """Cancel the link's task and its writer (the session is stopping)."""
        if self.task is not None:
            self.task.cancel()
        if self._writer is not None:
            self._writer.cancel()

    async def aclose(self, code: int, reason: str, timeout: float) -> None:
        """:meth:`close`, then wait (at most ``timeout``) until the link has ended."""
        self.close(code, reason)
        if self.task is not None:
            await asyncio.wait([self.task], timeout=timeout)

    def queued(self) -> list[str | QueuedClose]:
        """What is queued and not yet taken by the writer, oldest first."""
        return list(self._queue)

    def opened(self, ws: ClientConnection) -> None:
        """The socket is open: write what is queued, and what comes (in tasks of the session)."""
        self._open = ws
        self._write_soon()

    def reading_ended(self) -> None:
        """The socket is closed (or the link cancelled): stop writing."""
        self._open = None
        if self._writer is not None:
            self._writer.cancel()

    def _write_soon(self) -> None:
        ws, start = self._open, self._start
        if ws is not None and start is not None and self._writer is None and self._queue:
            self._writer = start(self._write(ws))

    async def _write(self, ws: ClientConnection) -> None:
        """The link's only writer: frames in order, then at most one close; it returns when
        the queue is empty (the next frame starts another)."""
        try:
            while self._queue:
                batch, self._queue = self._queue, self._spare
                self._spare = batch
                for item in batch:
                    if isinstance(item, QueuedClose):
                        self.writable = False
                        await ws.close(item.code, item.reason)  # bounded by close_timeout
                        return
                    await ws.send(item)
                batch.clear()
        except ConnectionClosed:
            self.writable = False
        except BaseException:
            self.writable = False
            raise
        finally:
            self._spare.clear()  # what was taken and not written never will be
            self._writer = None


class ProxyChoice:
    """The proxy a session's links go through (``None``: none), as ``websockets`` picks it
    from the environment, looked up at the session's first link and kept.

    ``websockets`` looks it up at every connect (``urllib.request.getproxies`` and
    ``proxy_bypass`` walk the whole environment, some 200 µs), and every link of a session goes
    to the same host and port: that was a fifth of a reconnect's CPU in a storm.
    """

    __slots__ = ("_known", "_proxy")

    def __init__(self) -> None:
        self._known = False
        self._proxy: str | None = None

    def __call__(self, url: str) -> str | None:
        """The proxy for ``url`` (a URL of the session's host and port)."""
        if not self._known:
            self._proxy = get_proxy(parse_uri(url))
            self._known = True
        return self._proxy


def _idle(ws: ClientConnection) -> bool:
    """Whether ``ws.send`` would write a text frame without waiting: the connection is open and
    its transport is writing nothing (so the protocol is not paused for back-pressure)."""
    transport = ws.transport
    return (
        ws.protocol.state is State.OPEN
        and not transport.is_closing()
        and transport.get_write_buffer_size() == 0
    )


async def run_link(
    engine: Engine,
    link: Link,
    request: OpenSocket,
    ssl_context: ssl.SSLContext | None,
    proxy: ProxyChoice,
) -> None:
    """Run one socket generation, from connecting to closed; return when it has ended.

    Only cancellation (an abort) and bugs propagate; the socket is dropped whichever way the
    link ends.
    """
    target = await engine.link_target(request)
    if target is None:
        return
    try:
        ws = await connect(target.url, **_options(engine, target, ssl_context, proxy))
    except InvalidStatus as refusal:
        response = refusal.response
        retry_after = response.headers.get("Retry-After")
        body = bytes(response.body or b"")
        engine.link_refused(link.generation, target.token, response.status_code, body, retry_after)
        return
    except _CONNECT_ERRORS as exc:
        engine.link_failed(link.generation, exc)
        return
    _drop_handshake(ws)
    # Nor is the target (its URL holds the token): this frame lives as long as the link.
    del target, request
    # Read here rather than in a coroutine of its own: an idle link's task waits in
    # ``recv`` under this one frame.
    try:
        engine.link_opened(link.generation)
        link.opened(ws)
        try:
            while True:
                engine.frame_received(link.generation, await ws.recv())
        except ConnectionClosed as closed:
            # The server's close, or ours when it never answered (1009 for a message too big).
            close = closed.rcvd if closed.rcvd is not None else closed.sent
            code, reason = (None, "") if close is None else (close.code, close.reason)
        finally:
            link.reading_ended()
        engine.link_closed(link.generation, code, reason)
    finally:
        ws.transport.abort()
        _break_cycles(ws)


def _break_cycles(ws: ClientConnection, again: bool = True) -> None:
    """Break the reference cycles an ended connection leaves, so that reference counting frees
    it: otherwise only a full collection of the garbage collector does (some 20 objects a link),
    and the objects its end made live on, promoted, until then.

    ``websockets``' protocol keeps the exception that ended its parser (an ``EOFError`` when
    the server dropped the socket), whose traceback holds the parser's frame, which holds the
    protocol; and its parser, a generator whose frame holds the protocol. Once the protocol's
    reader has seen the end of the stream (at once when the server closed or dropped the socket;
    once ``connection_lost`` has run when the link was aborted), the parser is never stepped
    again. asyncio's socket transport keeps a bound method of its own (CPython drops it in
    ``close`` from 3.12, never in ``abort``); once the transport is closing, it no longer
    reads. Where a release has moved or changed these attributes, nothing is dropped.
    """
    transport = ws.transport
    if transport.is_closing() and callable(getattr(transport, "_read_ready_cb", None)):
        transport._read_ready_cb = None  # type: ignore[attr-defined]
    protocol = ws.protocol
    # Older releases of websockets (13 among them) name the connection in its log records by a
    # strong reference, from the protocol's logger back to the connection (later: a weak one).
    extra = getattr(getattr(protocol, "logger", None), "extra", None)
    if isinstance(extra, dict) and extra.get("websocket") is ws:
        extra["websocket"] = weakref.proxy(ws)
    reader = getattr(protocol, "reader", None)
    if not getattr(reader, "eof", False):
        # Aborted before the socket closed: ``connection_lost``, which the abort has scheduled,
        # steps the parser once more, so the parser is closed after it.
        if again:
            asyncio.get_running_loop().call_soon(_break_cycles, ws, False)
        return
    failure = getattr(protocol, "parser_exc", None)
    if isinstance(failure, BaseException):
        failure.__traceback__ = None
    parser = getattr(protocol, "parser", None)
    if isinstance(parser, Generator):
        parser.close()


def _drop_handshake(ws: ClientConnection) -> None:
    """Drop what the handshake left in an open connection that it will not read again: the
    request and the protocol's URI (both hold the access token), the response's headers (some
    2 KiB an idle session, as long as the link is open)."""
    ws.request = None
    if ws.response is not None:
        ws.response.headers = _NO_HEADERS
    protocol = ws.protocol
    for name in ("uri", "wsuri"):  # websockets >= 14 names it ``uri``, 13 ``wsuri``
        if isinstance(getattr(protocol, name, None), WebSocketURI):
            setattr(protocol, name, _DROPPED_URI)


class _Connection(ClientConnection):
    """``websockets``' connection, with two things fewer kept as long as it is open.

    Its queue of writers waiting for the transport to drain is made only when one waits
    (back-pressure): an empty ``deque`` is some 760 bytes, and an idle link's writes never
    wait. And its records go to the :class:`_LibraryLog` it is given, not through an adapter
    of its own that would tag them with the connection (some 550 bytes): the session's log
    already tags them with the session and the link.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tagging = self.logger
        if (
            isinstance(tagging, logging.LoggerAdapter)
            and isinstance(tagging.logger, _LibraryLog)
            and self.protocol.logger is tagging
        ):
            self.logger = self.protocol.logger = tagging.logger

    @property
    def drain_waiters(self) -> collections.deque[asyncio.Future[None]]:
        attributes = self.__dict__
        waiters: collections.deque[asyncio.Future[None]] | None = attributes.get("_drain_waiters")
        if waiters is None:
            waiters = attributes["_drain_waiters"] = collections.deque()
        return waiters

    @drain_waiters.setter
    def drain_waiters(self, waiters: collections.deque[asyncio.Future[None]]) -> None:
        # ``ClientConnection.__init__`` sets an empty one: it is made at the first use instead.
        if type(waiters) is collections.deque and not waiters:
            self.__dict__.pop("_drain_waiters", None)
        else:
            self.__dict__["_drain_waiters"] = waiters


def _options(
    engine: Engine, target: LinkTarget, ssl_context: ssl.SSLContext | None, proxy: ProxyChoice
) -> dict[str, Any]:
    """``connect``'s options: the driver's timeouts, the size limit, no pings of its own (the
    driver sends heartbeats), compression only if the config asks for it, the session's proxy,
    our TLS context, and its records through the engine's log."""
    config = engine.state.config
    options: dict[str, Any] = {
        "open_timeout": config.connect_timeout_seconds,
        "close_timeout": config.close_timeout_seconds,
        "max_size": MAX_INBOUND_MESSAGE,
        "ping_interval": None,
        "compression": "deflate" if config.websocket_compression else None,
        "logger": _LibraryLog(engine.log),
        "create_connection": _Connection,
    }
    if get_proxy is not None:
        options["proxy"] = proxy(target.url)
    if ssl_context is not None and target.url.startswith("wss:"):
        options["ssl"] = ssl_context  # otherwise websockets uses the system's default context
    return options


class _LibraryLog(logging.LoggerAdapter[RedactingLogger]):
    """``websockets``' own records, warnings and errors only, through the engine's log (which
    redacts them: its debug records quote the request, access token included)."""

    def isEnabledFor(self, level: int) -> bool:
        return level >= logging.WARNING and self.logger.isEnabledFor(level)

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            self.logger.log(level, msg, *args, **kwargs)
