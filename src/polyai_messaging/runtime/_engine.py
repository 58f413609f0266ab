"""The engine every adapter runs: the driver stepped, its effects dispatched, links reported.

:class:`Engine` owns the driver state. Every input goes through one synchronous method,
:meth:`Engine.feed`, which steps the driver and executes the effects without awaiting, so the
driver sees one ordered stream of inputs whatever the loop. Socket work, the timer and
background tasks are asked of the adapter (the :class:`~._loop.Adapter` methods, which an
adapter's session class implements); everything else is decided here: logging (redacted,
tagged with the session and link), snapshots, the bounded event stream, replacement sessions,
what a link reports (the access token and URL it connects with, how a refusal or a failure is
told to the driver).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, NotRequired, TypedDict
from urllib.parse import urlsplit

import attrs

from ..core import MessagingError
from ..driver import (
    AbortSocket,
    Applied,
    CloseSocket,
    ConnectFailed,
    Delivery,
    Effect,
    Finished,
    FrameReceived,
    HandshakeFailed,
    Input,
    LinkClosed,
    LinkOpened,
    NeedNewSession,
    NewSessionFailed,
    NewSessionReason,
    Now,
    OpenSocket,
    ProtocolViolation,
    Resumed,
    SendFrame,
    SessionState,
    Start,
    StartNewSession,
    StatusChanged,
    WakeAt,
    WakeUp,
    redact_url,
    step,
    websocket_url,
)
from ._feed import EventStream, UpdateFeed, Waiters
from ._logs import RedactingLogger, redacted
from ._loop import Event, LinkHandle
from ._retry_after import parse_retry_after
from ._tokens import Token, TokenCache, TokenUnavailableError

__all__ = ["MIN_REWAKE_SECONDS", "Clock", "Engine", "EngineOptions", "LinkTarget", "SessionFactory"]

Clock = Callable[[], Now]
"""Returns both clock readings: monotonic time for the driver's timers (the loop's own clock by
default), and wall time (which also decides when an access token counts as expired)."""

SessionFactory = Callable[[], Awaitable[str]]
"""Creates a session on the server and returns its id (for replacement sessions)."""

MIN_REWAKE_SECONDS: Final = 0.05
"""The shortest wait before waking the driver again for a deadline it kept when woken."""

_LOGGER = logging.getLogger("polyai_messaging")
_WAKE_UP: Final = WakeUp()
"""Every wake-up is the same input (inputs are immutable): one, not one per timer firing."""
_LOG_FRAME_CHARS = 2000
_BODY_CHARS = 200


class EngineOptions(TypedDict):
    """What :class:`Engine` is made from, as keyword arguments (``open_session`` gathers them)."""

    state: SessionState
    base_url: str
    tokens: TokenCache
    create_session: SessionFactory
    clock: Clock
    events_capacity: NotRequired[int]


@attrs.frozen
class LinkTarget:
    """Where a link connects, and with which token (the URL holds it: never log it)."""

    url: str = attrs.field(repr=False)
    token: Token = attrs.field(repr=False)

    @property
    def tls(self) -> bool:
        """Whether the URL is ``wss://``."""
        return urlsplit(self.url).scheme == "wss"

    @property
    def host(self) -> str:
        """The host to connect to (an IPv6 address without brackets)."""
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        """The port to connect to (443 or 80 unless the URL names one)."""
        return urlsplit(self.url).port or (443 if self.tls else 80)

    @property
    def resource(self) -> str:
        """The request target: path and query (it holds the access token)."""
        parts = urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    @property
    def host_header(self) -> str:
        """The ``Host`` header: the host, and the port unless it is the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == (443 if self.tls else 80) else f"{host}:{self.port}"


class Engine:
    """The driver of one session and what it asks of the adapter (see the module docstring)."""

    def __init__(
        self,
        *,
        state: SessionState,
        base_url: str,
        tokens: TokenCache,
        create_session: SessionFactory,
        clock: Clock,
        events_capacity: int = 1024,
    ) -> None:
        self._state = state
        self._base_url = base_url
        self._tokens = tokens
        self._create_session = create_session
        self._clock = clock
        self._status: StatusChanged | None = None
        self._finished: Finished | None = None
        new_event = self.new_event  # one bound method for all three, not one each
        self._over = Waiters(new_event)
        """Woken when the session finishes or is closed."""
        self._renewal: Event | None = None
        self._closed = False
        self._timer_for: float | None = None
        """The deadline the adapter's timer is armed for (``None``: not armed)."""
        self._feed_updates = UpdateFeed(state, new_event)
        self._events = EventStream(events_capacity, new_event)
        self.last_resume: Resumed | None = None
        """The outcome of the latest reconnect, if any."""
        self.error: BaseException | None = None
        """Why creating a replacement session failed, if it did."""
        self.log = RedactingLogger(_LOGGER, context=self._log_context, secrets=self._secrets)
        """The session's logger: every line redacted and tagged with the session and link."""
        self.links: dict[int, LinkHandle] = {}
        """The running links by generation: an adapter adds each link it starts (``open_link``)
        and removes it once it has ended; frames, closes and aborts are routed to them."""

    # --- the adapter's part (see ``_loop.Adapter``) ----------------------------------------

    def new_event(self) -> Event:
        """A fresh event of the running loop."""
        raise NotImplementedError

    def spawn(self, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` as a task of the session."""
        raise NotImplementedError

    def open_link(self, request: OpenSocket) -> None:
        """Start the link of ``request.generation``."""
        raise NotImplementedError

    def send_frame(self, generation: int, text: str) -> bool:
        """Queue a frame on a link; ``False`` if it has ended."""
        link = self.links.get(generation)
        return link is not None and link.send(text)

    def close_link(self, generation: int, code: int, reason: str) -> None:
        """Close a link politely."""
        link = self.links.get(generation)
        if link is not None:
            link.close(code, reason)

    def abort_link(self, generation: int) -> None:
        """Drop a link at once."""
        link = self.links.get(generation)
        if link is not None:
            link.abort()

    def rearm_timer(self, deadline: float | None) -> None:
        """Call :meth:`~polyai_messaging.runtime.Engine.wake` at ``deadline``."""
        raise NotImplementedError

    async def checkpoint(self) -> None:
        """Let other tasks run (and a cancellation be delivered)."""
        raise NotImplementedError

    async def cancel_point(self) -> None:
        """Deliver a pending cancellation, before an intent is executed (by default
        :meth:`~polyai_messaging.runtime.Engine.checkpoint`, which then stands for the
        intent's whole checkpoint). Once it has returned, the intent is fed and
        :meth:`~polyai_messaging.runtime.Engine.schedule_point` awaited, whatever happens."""
        await self.checkpoint()

    async def schedule_point(self) -> None:
        """Let other tasks run once an intent is executed, never raising a cancellation (by
        default nothing: :meth:`~polyai_messaging.runtime.Engine.cancel_point` was the
        checkpoint). On trio the intent's frames for an idle link are written here."""

    # --- the single entry point ------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """The latest driver state."""
        return self._state

    def start(self) -> None:
        """Open the first connection."""
        self.feed(Start())
        deadline = self._state.deadline
        if self._timer_for is None and deadline is not None:
            self._arm(deadline)  # a restored state's deadline may not have moved

    def wake(self) -> None:
        """The adapter's timer fired (it calls this).

        A timer left armed for a deadline that has since moved later is re-armed for the new
        one, and the driver is not woken. If the driver keeps its deadline (the wall clock lags
        the monotonic one, say), the timer is re-armed for no sooner than ``MIN_REWAKE_SECONDS``
        from now, rather than spin.
        """
        fired_for, self._timer_for = self._timer_for, None
        due = self._state.deadline
        if due is None or (fired_for is not None and fired_for < due):
            if due is not None and not self._closed:
                self._arm(due)
            return
        self.feed(_WAKE_UP)
        deadline = self._state.deadline
        if deadline is not None and deadline == due and not self._closed:
            self._arm(max(deadline, self._clock().monotonic + MIN_REWAKE_SECONDS))

    def deadline(self) -> float | None:
        """When :meth:`wake` is next due, on the driver's clock (``None``: never)."""
        return self._state.deadline

    def now(self) -> Now:
        """The clock the driver runs on."""
        return self._clock()

    def feed(self, event: Input) -> list[Effect]:
        """Step the driver and execute its effects, without awaiting (inputs never interleave).

        Raises :class:`~polyai_messaging.core.LocalProtocolError` for an illegal intent (the
        state is then unchanged). Inputs after the session was closed are ignored.
        """
        if self._closed:
            return []
        state, effects = step(self._state, event, self._clock())
        self._state = state
        for effect in effects:
            _DISPATCH[type(effect)](self, effect)
        self._feed_updates.publish(self._state, self._status, self._finished)
        return effects

    def _on_open(self, effect: OpenSocket) -> None:
        self.open_link(effect)

    def _on_send(self, effect: SendFrame) -> None:
        if self.send_frame(effect.generation, effect.text):
            if self.log.logger.isEnabledFor(logging.DEBUG):  # see ``_on_delivery``
                self.log.debug("-> %s", _clip(effect.text))
        else:
            self.log.debug("dropping a frame for ended link %d", effect.generation)

    def _on_close(self, effect: CloseSocket) -> None:
        self.close_link(effect.generation, effect.code, effect.reason)

    def _on_abort(self, effect: AbortSocket) -> None:
        self.log.info("aborting link %d: %s", effect.generation, effect.reason)
        self.abort_link(effect.generation)

    def _on_wake_at(self, effect: WakeAt) -> None:
        # Only a deadline that comes sooner moves the timer. One that moves later (or goes) leaves
        # it armed, and ``wake`` re-arms when it fires: a message's echo check is set when it is
        # sent and cleared by its echo, and moving the timer for both cost every round trip.
        deadline = effect.deadline
        armed = self._timer_for
        if deadline is not None and (armed is None or deadline < armed):
            self._arm(deadline)

    def _arm(self, deadline: float) -> None:
        self._timer_for = deadline
        self.rearm_timer(deadline)

    def _on_status(self, effect: StatusChanged) -> None:
        self._status = effect
        retry = "" if effect.retry_in is None else f", retry in {effect.retry_in:.1f} s"
        self.log.info(
            "link %s: %s (attempt %d%s)", effect.status.value, effect.reason, effect.attempt, retry
        )

    def _on_applied(self, effect: Applied) -> None:
        self._events.put(effect.event)

    def _on_violation(self, effect: ProtocolViolation) -> None:
        self.log.warning("protocol violation from the server: %s", effect.error)

    def _on_delivery(self, effect: Delivery) -> None:
        # Twice a message: the enum is read only if the line is logged, and the logger is
        # asked directly (the adapter's ``isEnabledFor`` adds a call, to the same answer).
        if self.log.logger.isEnabledFor(logging.DEBUG):
            self.log.debug("delivery %s: %s", effect.client_event_id, effect.status.value)

    def _on_resumed(self, effect: Resumed) -> None:
        self.last_resume = effect
        self.log.info("resumed (%s) from cursor %d", effect.kind.value, effect.previous_cursor)

    def _on_new_session(self, effect: NeedNewSession) -> None:
        self.log.info("a new session is needed: %s", effect.reason.value)
        self._renewal = self.new_event()
        reason = effect.reason
        self.spawn(lambda: self._renew(reason))

    def _on_finished(self, effect: Finished) -> None:
        self.log.info("session finished: %s (%s)", effect.kind.value, effect.reason)
        if self._finished is None:
            self._finished = effect
            self._over.wake()
            self._events.close()

    # --- what a link reports ---------------------------------------------------------------

    async def link_target(self, request: OpenSocket) -> LinkTarget | None:
        """The URL and token link ``request.generation`` connects with; ``None`` (the driver
        is told) when no access token can be had."""
        try:
            token = await self._tokens.get()
        except TokenUnavailableError as exc:
            self.log.warning("no access token for link %d: %r", request.generation, exc.__cause__)
            self.feed(ConnectFailed(request.generation, "no access token"))
            return None
        url = websocket_url(self._base_url, request.session_id, token.secret, request.cursor)
        if self.log.isEnabledFor(logging.DEBUG):  # redacting costs as much as making the URL
            self.log.debug("link %d: connecting to %s", request.generation, redact_url(url))
        return LinkTarget(url, token)

    def link_failed(self, generation: int, error: BaseException | str) -> None:
        """No connection could be made (DNS, refused, TLS, timeout)."""
        what = error if isinstance(error, str) else type(error).__name__
        self.log.info("link %d: connection failed: %s", generation, what)
        self.feed(ConnectFailed(generation, what))

    def link_refused(
        self,
        generation: int,
        token: Token,
        status: int,
        body: bytes,
        retry_after: str | None,
    ) -> None:
        """The server answered the upgrade with an HTTP error instead of a WebSocket."""
        # The body is the server's text: it may echo our request, access token included.
        text = redacted(body.decode("utf-8", "replace"), (token.secret,))[:_BODY_CHARS]
        self.log.info("link %d: handshake refused with HTTP %d: %s", generation, status, text)
        if status in (401, 403):
            self._tokens.invalidate(token)
        seconds = parse_retry_after(retry_after, now=self._clock().wall)
        self.feed(HandshakeFailed(generation, status, text, seconds))

    def link_opened(self, generation: int) -> None:
        """The WebSocket handshake succeeded."""
        self.feed(LinkOpened(generation))

    def frame_received(self, generation: int, data: str | bytes) -> None:
        """A frame arrived on the link."""
        if self.log.logger.isEnabledFor(logging.DEBUG):  # see ``_on_delivery``
            self.log.debug("<- %s", _clip(data))
        self.feed(FrameReceived(generation, data))

    def link_closed(self, generation: int, code: int | None, reason: str) -> None:
        """The link ended (code 1006, or ``None``, for an abnormal end)."""
        self.log.debug("link %d: closed with %s", generation, code)
        self.feed(LinkClosed(generation, code, reason))

    # --- replacement sessions --------------------------------------------------------------

    async def _renew(self, reason: NewSessionReason) -> None:
        """Create a replacement session and feed ``StartNewSession`` (or finish for good)."""
        renewal = self._renewal
        self._tokens.invalidate()
        try:
            session_id = await self._create_session()
        except (MessagingError, OSError) as exc:
            self.log.warning("could not create a replacement session (%s): %s", reason.value, exc)
            self.error = exc
            self.feed(NewSessionFailed(f"replacement session ({reason.value}): {exc}"))
        else:
            self.log.info("continuing on a new session (%s)", reason.value)
            self.feed(StartNewSession(session_id))
        finally:
            self._renewal = None
            if renewal is not None:
                renewal.set()

    # --- shutdown --------------------------------------------------------------------------

    def close(self) -> None:
        """Stop feeding the driver and wake every waiter (the session stays alive on the
        server, and could be resumed by id)."""
        self._closed = True
        self._events.close()
        self._over.wake()
        self._feed_updates.close()

    async def shutdown(self) -> None:
        """:meth:`close`, then close the current link politely (code 1000) and wait until it
        has ended, at most the driver's closing-handshake timeout."""
        current = self.links.get(self._state.generation)
        self.close()
        if current is not None:
            timeout = self._state.config.close_timeout_seconds
            await current.aclose(1000, "client closing", timeout)

    # --- logging ---------------------------------------------------------------------------

    def _log_context(self) -> dict[str, Any]:
        state = self._state
        return {"session_id": state.session_id, "link": state.generation}

    def _secrets(self) -> tuple[str, ...]:
        return self._tokens.secrets


def _clip(data: str | bytes) -> str:
    """A frame as it is logged: binary frames by size, long ones cut short."""
    text = data if isinstance(data, str) else f"<binary frame of {len(data)} bytes>"
    return text if len(text) <= _LOG_FRAME_CHARS else text[:_LOG_FRAME_CHARS] + "…"


_DISPATCH: dict[type[Any], Callable[[Engine, Any], None]] = {
    OpenSocket: Engine._on_open,
    SendFrame: Engine._on_send,
    CloseSocket: Engine._on_close,
    AbortSocket: Engine._on_abort,
    WakeAt: Engine._on_wake_at,
    StatusChanged: Engine._on_status,
    Applied: Engine._on_applied,
    ProtocolViolation: Engine._on_violation,
    Delivery: Engine._on_delivery,
    Resumed: Engine._on_resumed,
    NeedNewSession: Engine._on_new_session,
    Finished: Engine._on_finished,
}
"""Each effect's handler: socket work goes to the adapter, the rest is decided here."""
