"""One socket generation of the trio adapter, from connecting to closed.

:func:`run_link` connects (TCP, TLS, the WebSocket handshake, all bounded by the handshake
timeout), then reads frames until the socket closes, while one writer task is the only code that
writes to it. It decides nothing: it reports what happened to the session as :mod:`.inputs`
(``LinkOpened``, ``FrameReceived``, ``LinkClosed``, ``ConnectFailed``, ``HandshakeFailed``)
through the :data:`Feed` it is given. The session talks to a running link through :class:`Link`
(:meth:`~Link.send`, :meth:`~Link.close`, :meth:`~Link.abort`).

Nothing here logs an access token: WebSocket URLs go through :func:`.endpoints.redact_url`, and
trio-websocket's own log records are redacted by a filter installed on import.
"""

from __future__ import annotations

import logging
import math
import ssl
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import attrs
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    WebSocketConnection,
    wrap_client_stream,
)

from . import rest
from ._logs import RedactingLogger, redacted
from .effects import OpenSocket
from .endpoints import redact_text, redact_url, websocket_url
from .inputs import (
    ConnectFailed,
    FrameReceived,
    HandshakeFailed,
    Input,
    LinkClosed,
    LinkOpened,
)
from .rest import AccessToken
from .tokens import TokenCache, TokenUnavailableError

__all__ = [
    "MAX_INBOUND_MESSAGE",
    "Feed",
    "Link",
    "LinkContext",
    "run_link",
]

# The link records keep the adapter's logger name (they were logged by ``trio_client`` before
# the link code moved here), so existing logging configuration still applies to them.
logger = RedactingLogger(logging.getLogger("polyai_messaging.trio_client"))

MAX_INBOUND_MESSAGE: Final = 4 * 1024 * 1024
"""Largest inbound WebSocket message accepted (characters); the protocol's limit is 128 KiB."""

Feed = Callable[[Input], object]
"""Where a link reports what happened: the session's single entry point. It must not await, so
that a report and whatever the session does about it happen before any other task runs."""

# How long a polite close may take: the closing handshake, or waiting for a link to end.
_CLOSE_TIMEOUT: Final = 2.0
_LOG_FRAME_CHARS: Final = 2000
_E = TypeVar("_E", bound=BaseException)


class _RedactTokens(logging.Filter):
    """Redacts secrets (``access_token=...``) in records of loggers that may log a WS URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg = redacted
            record.args = ()
        return True


# trio-websocket logs the request target (with our query string) at DEBUG level.
logging.getLogger("trio-websocket").addFilter(_RedactTokens())


@attrs.define(eq=False)
class _Close:
    """Queued after the last frame: the writer closes the socket with this code and reason."""

    code: int
    reason: str


@attrs.define(eq=False)
class Link:
    """One socket generation: its cancel scope and its outgoing queue.

    The session creates one per ``OpenSocket`` and hands it to :func:`run_link`; ``done`` is
    set once the link has ended, whichever way.
    """

    generation: int
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    done: trio.Event = attrs.field(factory=trio.Event)
    outgoing: trio.MemorySendChannel[str | _Close] = attrs.field(init=False)
    pending: trio.MemoryReceiveChannel[str | _Close] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        # Unbounded: queuing must never block, because the session queues without awaiting.
        self.outgoing, self.pending = trio.open_memory_channel[str | _Close](math.inf)

    def send(self, text: str) -> bool:
        """Queue a frame for the link's writer; ``False`` if the writer is gone."""
        return _offer(self, text)

    def close(self, code: int, reason: str) -> None:
        """Close politely after the frames already queued (or at once if the writer is gone)."""
        if _offer(self, _Close(code, reason)):
            self.outgoing.close()
        else:
            self.scope.cancel()  # the writer is gone: nothing can be sent any more

    def abort(self) -> None:
        """Drop the socket now, without a closing handshake."""
        self.scope.cancel()

    async def aclose(self, code: int, reason: str) -> None:
        """:meth:`close`, then wait (a bounded time) until the link has ended."""
        self.close(code, reason)
        with trio.move_on_after(_CLOSE_TIMEOUT):
            await self.done.wait()


@attrs.frozen
class LinkContext:
    """What a link needs from its session: where to connect, with what, and where to report."""

    base_url: str
    """The REST base URL; the WebSocket URL is derived from it."""
    tokens: TokenCache
    """Supplies the access token; a token refused with 401/403 is invalidated in it."""
    ssl_context: ssl.SSLContext | None
    """For ``wss://`` (``None``: the system's default verification)."""
    handshake_timeout: float
    """Bound on TCP + TLS, and separately on the WebSocket handshake."""
    feed: Feed
    """Receives the link's inputs."""


async def run_link(link: Link, request: OpenSocket, context: LinkContext) -> None:
    """Run one socket generation, from connecting to closed; return when it has ended.

    Every outcome is reported through ``context.feed``; only cancellation (an abort) and bugs
    propagate. On return the link's queue is closed and ``link.done`` is set.
    """
    try:
        with link.scope:
            await _connect(link, request, context)
    finally:
        link.outgoing.close()
        link.done.set()


async def _connect(link: Link, request: OpenSocket, context: LinkContext) -> None:
    """Get a token and open TCP (and TLS), then hand over to :func:`_handshake`."""
    generation = link.generation
    try:
        token = await context.tokens.get()
    except TokenUnavailableError as exc:
        logger.warning("no access token for link %d: %r", generation, exc.__cause__)
        context.feed(ConnectFailed(generation, "no access token"))
        return
    url = websocket_url(context.base_url, request.session_id, token.secret, request.cursor)
    logger.debug("link %d: connecting to %s", generation, redact_url(url))
    target = _Target.parse(url)
    try:
        with trio.fail_after(context.handshake_timeout):
            stream = await target.connect(context.ssl_context)
    except (OSError, trio.BrokenResourceError, trio.TooSlowError) as exc:
        logger.info("link %d: connection failed: %s", generation, type(exc).__name__)
        context.feed(ConnectFailed(generation, type(exc).__name__))
        return
    # We own the stream, so it is closed whichever way the link ends (trio-websocket leaves
    # it open after an abnormal closure), and an abort needs no closing handshake.
    try:
        await _handshake(link, stream, target, token, context)
    finally:
        await trio.aclose_forcefully(stream)


async def _handshake(
    link: Link,
    stream: trio.SocketStream | trio.SSLStream[trio.SocketStream],
    target: _Target,
    token: AccessToken,
    context: LinkContext,
) -> None:
    """Run the WebSocket handshake on ``stream``, then the link until the socket closes.

    A failed handshake is reported (a refusal as ``HandshakeFailed``); errors after the link
    opened propagate.
    """
    generation = link.generation
    opened = False
    try:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(context.handshake_timeout):
                ws = await wrap_client_stream(
                    nursery,
                    stream,
                    target.host_header,
                    target.resource,
                    max_message_size=MAX_INBOUND_MESSAGE,
                )
            opened = True
            context.feed(LinkOpened(generation))
            code, reason = await _pump(link, ws, context.feed)
            context.feed(LinkClosed(generation, code, reason))
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        rejected, rest_ = group.split(ConnectionRejected)
        if opened or (rest_ is not None and rest_.split(_CONNECT_ERRORS)[1] is not None):
            raise
        if rejected is None:
            logger.info("link %d: handshake failed: %r", generation, group.exceptions[0])
            context.feed(ConnectFailed(generation, "handshake failed"))
        else:
            _refused(generation, token, _first(rejected, ConnectionRejected), context)


def _refused(
    generation: int, token: AccessToken, exc: ConnectionRejected, context: LinkContext
) -> None:
    """Report a handshake the server answered with an HTTP status instead of a WebSocket."""
    status = exc.status_code
    # The body is the server's text: it may echo our request, access token included.
    body = redacted((exc.body or b"").decode("utf-8", "replace"), (token.secret,))[:200]
    logger.info("link %d: handshake refused with HTTP %d: %s", generation, status, body)
    if status in (401, 403):
        context.tokens.invalidate(token)
    context.feed(HandshakeFailed(generation, status, body, _retry_after(exc.headers)))


async def _pump(link: Link, ws: WebSocketConnection, feed: Feed) -> tuple[int | None, str]:
    """Run the link's writer and read frames until the socket closes; return the close."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_write, link, ws)
        while True:
            try:
                data = await ws.get_message()
            except ConnectionClosed as exc:
                nursery.cancel_scope.cancel()
                close = exc.reason
                if close is None:
                    return None, ""
                logger.debug("link %d: closed with %d", link.generation, close.code)
                return close.code, close.reason or ""
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("link %d <- %s", link.generation, _clip(data))
            feed(FrameReceived(link.generation, data))
    raise AssertionError("unreachable")  # pragma: no cover


async def _write(link: Link, ws: WebSocketConnection) -> None:
    """The link's only writer: frames in order, then at most one close."""
    async with link.pending:
        async for item in link.pending:
            if isinstance(item, _Close):
                with trio.move_on_after(_CLOSE_TIMEOUT):
                    await ws.aclose(item.code, item.reason)
                link.scope.cancel()
                return
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("link %d -> %s", link.generation, _clip(item))
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


@attrs.frozen
class _Target:
    """Where a WebSocket URL points."""

    host: str
    port: int
    tls: bool
    resource: str

    @classmethod
    def parse(cls, url: str) -> _Target:
        parts = urlsplit(url)
        tls = parts.scheme == "wss"
        host = parts.hostname or ""
        port = parts.port or (443 if tls else 80)
        resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(host, port, tls, resource)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == (443 if self.tls else 80) else f"{host}:{self.port}"

    async def connect(
        self, context: ssl.SSLContext | None
    ) -> trio.SocketStream | trio.SSLStream[trio.SocketStream]:
        """Open TCP (and TLS, handshake included, so certificate errors surface here)."""
        if not self.tls:
            return await trio.open_tcp_stream(self.host, self.port)
        stream = await trio.open_ssl_over_tcp_stream(
            self.host,
            self.port,
            ssl_context=context or ssl.create_default_context(),
            https_compatible=True,
        )
        try:
            await stream.do_handshake()
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        return stream


def _offer(link: Link, item: str | _Close) -> bool:
    """Queue ``item`` for the link's writer; ``False`` if the writer is gone."""
    try:
        link.outgoing.send_nowait(item)
    except (trio.ClosedResourceError, trio.BrokenResourceError):
        return False
    return True


def _retry_after(headers: tuple[tuple[bytes, bytes], ...]) -> float | None:
    """The refusal's ``Retry-After`` in seconds, if it has a usable one."""
    for name, value in headers:
        if name.lower() == b"retry-after":
            return rest.parse_retry_after(value.decode("latin-1"), now=time.time())
    return None


def _clip(data: str | bytes) -> str:
    """A frame as it is logged: binary frames by size, long ones cut short."""
    text = data if isinstance(data, str) else f"<binary frame of {len(data)} bytes>"
    return text if len(text) <= _LOG_FRAME_CHARS else text[:_LOG_FRAME_CHARS] + "…"
