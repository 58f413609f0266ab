"""The trio adapter: runs the sans-I/O driver (:func:`polyai_messaging.session.step`) on sockets.

The adapter decides nothing. It feeds :mod:`.inputs` and executes :mod:`.effects`:

- every input goes through one synchronous function (``Session._feed``) that calls ``step`` and
  executes the effects without awaiting; trio switches tasks only at ``await``, so the driver sees
  one ordered input stream without a lock;
- one *link* task per socket generation connects, then reads frames (``FrameReceived``,
  ``LinkClosed``); one writer task per link is the only code that writes to that socket (both in
  :mod:`.trio_link`);
- one timer task sleeps until ``state.deadline`` in a cancel scope whose deadline ``WakeAt``
  moves, and feeds ``WakeUp``;
- REST calls (creating a replacement session) run in their own task and feed the result back,
  with access tokens from :mod:`.tokens`.

This module holds the :class:`Session` itself: the single entry point, effect execution, and what
the application sees (conflated :class:`Update` snapshots and the :meth:`Session.events` channel).

Nothing in the adapter logs an access token (:mod:`.trio_link` redacts WebSocket URLs).

Usage::

    async with open_session(base_url, token_provider, streaming=True) as session:
        await session.send("Hello")
        async for update in session.updates():
            print(update.conversation.transcript[-1].text)
"""

from __future__ import annotations

import logging
import math
import secrets
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Final, NoReturn

import attrs
import httpx
import trio

from . import rest
from ._logs import RedactingLogger
from .conversation import Conversation
from .effects import (
    AbortSocket,
    Applied,
    CloseSocket,
    Delivery,
    DeliveryStatus,
    Effect,
    Finished,
    NeedNewSession,
    NewSessionReason,
    OpenSocket,
    ProtocolViolation,
    Resumed,
    SendFrame,
    StatusChanged,
    WakeAt,
)
from .endpoints import check_transport_security
from .errors import LocalProtocolError, MessagingError
from .events import ServerEvent
from .inputs import (
    EndSession,
    Input,
    NewSessionFailed,
    Now,
    PickSuggestion,
    SendText,
    SetTyping,
    Start,
    StartNewSession,
    WakeUp,
)
from .session import SessionConfig, SessionState, step
from .tokens import TokenCache, TokenProvider, TokenUnavailableError, connector_token_provider
from .trio_link import MAX_INBOUND_MESSAGE, Link, LinkContext, run_link

__all__ = [
    "MAX_INBOUND_MESSAGE",
    "Clock",
    "Session",
    "TokenProvider",
    "TokenUnavailableError",
    "Update",
    "connector_token_provider",
    "open_session",
]

logger = RedactingLogger(logging.getLogger(__name__))

# The old names of the two classes that moved and became public in their new modules.

Clock = Callable[[], Now]
"""Returns both clock readings. The default is ``Now(trio.current_time(), time.time())``. The
wall reading also decides when an access token counts as expired."""

_MIN_REWAKE: Final = 0.05


@attrs.frozen
class Update:
    """A snapshot of the session, published after every input that changed something."""

    version: int
    """Increases with every published snapshot."""
    state: SessionState
    """The driver state (conversation, outbox, counters...)."""
    status: StatusChanged | None
    """The latest link status."""
    finished: Finished | None
    """Set on the last snapshot: the session is over (see :attr:`Session.finished`)."""

    @property
    def conversation(self) -> Conversation:
        """The folded conversation (``state.conversation``)."""
        return self.state.conversation


class _UpdateIterator:
    """``async for`` over a session's snapshots, skipping any it was too slow to see."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._seen = 0
        self._done = False

    def __aiter__(self) -> _UpdateIterator:
        return self

    async def __anext__(self) -> Update:
        if self._done:
            raise StopAsyncIteration
        update = await self._session.next_update(self._seen)
        if update is None:
            self._done = True
            raise StopAsyncIteration
        self._seen = update.version
        if update.finished is not None:
            self._done = True
        return update


@attrs.frozen
class _SessionMaker:
    """Creates sessions with the caller's settings: the first one and any replacement."""

    base_url: str
    tokens: TokenCache
    http: httpx.AsyncClient
    streaming: bool
    platform: str
    user_agent: str | None

    async def create(self) -> str:
        """A new session's id, created with a current access token."""
        token = await self.tokens.get()
        info = await rest.create_session(
            self.base_url,
            token,
            streaming=self.streaming,
            platform=self.platform,
            user_agent=self.user_agent,
            client=self.http,
        )
        return info.session_id


class Session:
    """A running session; obtained from :func:`open_session`, valid inside its ``async with``."""

    def __init__(
        self,
        *,
        nursery: trio.Nursery,
        state: SessionState,
        maker: _SessionMaker,
        ssl_context: ssl.SSLContext | None,
        clock: Clock,
        events_capacity: int,
    ) -> None:
        self._nursery = nursery
        self._state = state
        self._maker = maker
        self._base_url = maker.base_url
        self._tokens = maker.tokens
        self._ssl_context = ssl_context
        self._clock = clock
        self._links: dict[int, Link] = {}
        self._timer_scope: trio.CancelScope | None = None
        self._status: StatusChanged | None = None
        self._finished: Finished | None = None
        self._finished_event = trio.Event()
        self._renewal: trio.Event | None = None
        self._closed = False
        self._version = 0
        self._update = Update(0, state, None, None)
        self._changed = trio.Event()
        self._events_in, self._events_out = trio.open_memory_channel[ServerEvent](events_capacity)
        self.events_dropped = 0
        """Applied events discarded because the :meth:`events` channel was full."""
        self.last_resume: Resumed | None = None
        """The outcome of the latest reconnect, if any."""
        self.error: BaseException | None = None
        """Why creating a replacement session failed, if it did."""

    # --- public view ---------------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """The latest driver state."""
        return self._state

    @property
    def conversation(self) -> Conversation:
        """The latest conversation snapshot."""
        return self._state.conversation

    @property
    def session_id(self) -> str:
        """The current session id (it changes when a replacement session is created)."""
        return self._state.session_id

    @property
    def status(self) -> StatusChanged | None:
        """The latest link status."""
        return self._status

    @property
    def finished(self) -> Finished | None:
        """How the session finished, once it is over for good (no replacement coming)."""
        return self._finished

    @property
    def latest(self) -> Update:
        """The latest published snapshot."""
        return self._update

    @property
    def token_requests(self) -> int:
        """How many times the token provider was called."""
        return self._tokens.calls

    async def wait_finished(self) -> Finished:
        """Wait until the session is over; return how it finished."""
        await self._finished_event.wait()
        finished = self._finished
        if finished is None:
            raise LocalProtocolError("the session was closed before it finished")
        return finished

    def updates(self) -> _UpdateIterator:
        """Iterate over snapshots, conflated: a slow consumer only sees the latest one.

        The iteration ends after the snapshot carrying :attr:`Update.finished`, or when the
        session is closed. Each call returns an independent iterator.
        """
        return _UpdateIterator(self)

    async def next_update(self, after_version: int) -> Update | None:
        """Wait for a snapshot newer than ``after_version``; ``None`` once the session is closed."""
        while self._update.version <= after_version:
            if self._closed:
                await trio.lowlevel.checkpoint()
                return None
            await self._changed.wait()
        await trio.lowlevel.checkpoint()
        return self._update

    def events(self) -> trio.MemoryReceiveChannel[ServerEvent]:
        """Every newly applied server event, in order, through a bounded channel.

        When the channel is full the oldest event is dropped (counted in :attr:`events_dropped`):
        the reader is never blocked. The channel closes when the session is over.
        """
        return self._events_out

    # --- intents -------------------------------------------------------------------------------

    async def send(self, text: str) -> str:
        """Send a user message; return its ``client_event_id``.

        Raises :class:`.LocalProtocolError` for blank or oversized text or after the end.
        """
        return await self._send_message(SendText(text), "message")

    async def pick(self, index: int) -> str:
        """Send the ``index``-th (0-based) current suggestion; return its ``client_event_id``."""
        return await self._send_message(PickSuggestion(index), "suggestion")

    async def typing(self, started: bool) -> None:
        """Tell the server the user started (``True``) or stopped typing (throttled)."""
        await self._await_renewal()
        self._intent(SetTyping(started))

    async def end(self) -> None:
        """Leave: send ``USER_END_SESSION``; :meth:`wait_finished` then returns the end."""
        await self._await_renewal()
        self._intent(EndSession())

    def delivery_status(self, client_event_id: str) -> DeliveryStatus | None:
        """Where a sent message stands (``None`` if unknown)."""
        entry = self._state.delivery(client_event_id)
        return None if entry is None else entry.status

    async def _send_message(self, intent: SendText | PickSuggestion, what: str) -> str:
        """Feed an intent that sends a message; return the new message's ``client_event_id``."""
        await self._await_renewal()
        # An accepted message is reported as a PENDING delivery in the same step.
        for effect in self._intent(intent):
            if isinstance(effect, Delivery) and effect.status is DeliveryStatus.PENDING:
                return effect.client_event_id
        raise LocalProtocolError(f"the {what} was not accepted")  # pragma: no cover

    def _intent(self, event: Input) -> list[Effect]:
        if self._closed:
            raise LocalProtocolError("the session is closed")
        return self._feed(event)

    async def _await_renewal(self) -> None:
        """Checkpoint, first waiting for a replacement session being created, if any.

        Intents then execute without awaiting: a cancelled call has sent nothing.
        """
        renewal = self._renewal
        if renewal is not None:
            await renewal.wait()
        else:
            await trio.lowlevel.checkpoint()

    # --- the single entry point ----------------------------------------------------------------

    def _feed(self, event: Input) -> list[Effect]:
        """Step the driver and execute its effects, without awaiting (so inputs never interleave).

        Raises :class:`.LocalProtocolError` for an illegal intent (the state is then unchanged).
        """
        if self._closed:
            return []
        state, effects = step(self._state, event, self._clock())
        self._state = state
        for effect in effects:
            self._execute(effect)
        self._publish()
        return effects

    def _execute(self, effect: Effect) -> None:
        if isinstance(effect, SendFrame | OpenSocket | CloseSocket | AbortSocket):
            self._execute_socket(effect)
        elif isinstance(effect, Applied):
            self._publish_event(effect.event)
        elif isinstance(effect, WakeAt):
            if self._timer_scope is not None:
                self._timer_scope.deadline = self._trio_deadline(effect.deadline)
        elif isinstance(effect, StatusChanged):
            self._status = effect
            logger.info(
                "link %s: %s (attempt %d%s)",
                effect.status.value,
                effect.reason,
                effect.attempt,
                "" if effect.retry_in is None else f", retry in {effect.retry_in:.1f} s",
            )
        elif isinstance(effect, ProtocolViolation):
            logger.warning("protocol violation from the server: %s", effect.error)
        elif isinstance(effect, Delivery):
            logger.debug("delivery %s: %s", effect.client_event_id, effect.status.value)
        elif isinstance(effect, Resumed):
            self.last_resume = effect
            logger.info("resumed (%s) from cursor %d", effect.kind.value, effect.previous_cursor)
        elif isinstance(effect, NeedNewSession):
            logger.info("a new session is needed: %s", effect.reason.value)
            self._renewal = trio.Event()
            self._nursery.start_soon(self._renew, effect.reason)
        else:  # Finished
            logger.info("session finished: %s (%s)", effect.kind.value, effect.reason)
            self._set_finished(effect)

    def _execute_socket(self, effect: SendFrame | OpenSocket | CloseSocket | AbortSocket) -> None:
        """Start a link, or pass a frame, a close or an abort to the running one."""
        if isinstance(effect, OpenSocket):
            link = self._links[effect.generation] = Link(effect.generation)
            self._nursery.start_soon(self._run_link, link, effect)
            return
        # Effects for a link that has already ended are moot.
        current = self._links.get(effect.generation)
        if isinstance(effect, SendFrame):
            if current is None or not current.send(effect.text):
                logger.debug("dropping a frame for closed link %d", effect.generation)
        elif isinstance(effect, CloseSocket):
            if current is not None:
                current.close(effect.code, effect.reason)
        else:  # AbortSocket
            logger.info("aborting link %d: %s", effect.generation, effect.reason)
            if current is not None:
                current.abort()

    def _set_finished(self, finished: Finished) -> None:
        if self._finished is None:
            self._finished = finished
            self._finished_event.set()
            self._events_in.close()

    def _publish(self) -> None:
        update = self._update
        if (
            update.state is self._state
            and update.status is self._status
            and update.finished is self._finished
        ):
            return
        self._version += 1
        self._update = Update(self._version, self._state, self._status, self._finished)
        self._changed.set()
        self._changed = trio.Event()

    def _publish_event(self, event: ServerEvent) -> None:
        if self._finished is not None:
            return
        while True:
            try:
                self._events_in.send_nowait(event)
            except trio.WouldBlock:
                try:
                    self._events_out.receive_nowait()
                except (trio.WouldBlock, trio.ClosedResourceError):  # pragma: no cover
                    return
                self.events_dropped += 1
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                return  # nobody listens any more
            else:
                return

    # --- time ----------------------------------------------------------------------------------

    def _trio_deadline(self, deadline: float | None, floor: float = -math.inf) -> float:
        """Convert a driver deadline (in the clock's monotonic time) to trio time."""
        if deadline is None:
            return math.inf
        at = trio.current_time() + (deadline - self._clock().monotonic)
        return max(at, floor)

    async def _run_timer(self) -> None:
        """The one timer: sleep until ``state.deadline`` (moved by ``WakeAt``), feed ``WakeUp``."""
        fired_for: float | None = None
        while True:
            deadline = self._state.deadline
            floor = -math.inf
            if deadline is not None and deadline == fired_for:
                # The driver did not move its deadline on the last wake-up (e.g. the wall clock
                # lags the monotonic one): do not spin.
                floor = trio.current_time() + _MIN_REWAKE
            with trio.CancelScope(deadline=self._trio_deadline(deadline, floor)) as scope:
                self._timer_scope = scope
                await trio.sleep_forever()
            self._timer_scope = None
            fired_for = deadline
            self._feed(WakeUp())

    # --- links ---------------------------------------------------------------------------------

    async def _run_link(self, link: Link, request: OpenSocket) -> None:
        """One socket generation, from connecting to closed (see :func:`.trio_link.run_link`)."""
        context = LinkContext(
            base_url=self._base_url,
            tokens=self._tokens,
            ssl_context=self._ssl_context,
            handshake_timeout=self._state.config.connect_timeout_seconds,
            feed=self._feed,
        )
        try:
            await run_link(link, request, context)
        finally:
            self._links.pop(link.generation, None)

    # --- replacement sessions ------------------------------------------------------------------

    async def _renew(self, reason: NewSessionReason) -> None:
        """Create a replacement session and feed ``StartNewSession`` (or finish for good)."""
        renewal = self._renewal
        self._tokens.invalidate()
        try:
            session_id = await self._maker.create()
        except (MessagingError, httpx.HTTPError) as exc:
            logger.warning("could not create a replacement session (%s): %s", reason.value, exc)
            self.error = exc
            self._feed(NewSessionFailed(f"replacement session ({reason.value}): {exc}"))
        else:
            logger.info("continuing on a new session (%s)", reason.value)
            self._feed(StartNewSession(session_id))
        finally:
            self._renewal = None
            if renewal is not None:
                renewal.set()

    # --- shutdown ------------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        """Stop feeding the driver, then close the open socket politely (bounded wait)."""
        current = self._links.get(self._state.generation)
        self._close()
        if current is not None:
            await current.aclose(1000, "client closing")

    def _close(self) -> None:
        self._closed = True
        self._events_in.close()
        self._finished_event.set()
        self._changed.set()


def _default_clock() -> Now:
    return Now(trio.current_time(), time.time())


@asynccontextmanager
async def open_session(
    base_url: str,
    token_provider: TokenProvider,
    *,
    session_id: str | None = None,
    streaming: bool = False,
    platform: str = "custom",
    user_agent: str | None = None,
    config: SessionConfig | None = None,
    seed: int | None = None,
    ssl_context: ssl.SSLContext | None = None,
    clock: Clock | None = None,
    http_client: httpx.AsyncClient | None = None,
    events_capacity: int = 1024,
) -> AsyncIterator[Session]:
    """Connect a session and run it until the block exits (or an outer cancel).

    ``base_url`` is the REST base URL (``https://...``; plain ``http://`` only on loopback). With
    ``session_id=None`` a session is created first (``streaming``, ``platform``, ``user_agent``
    go to Create Session). ``ssl_context`` is used for ``wss://`` and, unless ``http_client`` is
    given, for the REST calls. ``seed`` makes backoff jitter and client event ids repeatable.

    When the driver asks for a replacement session (the server no longer knows this one:
    handshake 404/401/403, close 4001; at most ``config.max_new_sessions`` in a row), it is
    created with a fresh token. A session that expired while we were disconnected is not
    replaced: it finishes as ``ended_while_disconnected``.

    Leaving the block closes the socket (code 1000, bounded wait) and cancels every task; the
    session itself stays alive on the server and could be resumed by id.
    """
    check_transport_security(base_url)
    if events_capacity < 1:
        raise ValueError("events_capacity must be at least 1")
    read_clock = clock if clock is not None else _default_clock
    tokens = TokenCache(token_provider, lambda: read_clock().wall)
    async with _http_scope(http_client, ssl_context) as http:
        maker = _SessionMaker(base_url, tokens, http, streaming, platform, user_agent)
        if session_id is None:
            session_id = await maker.create()
        state = SessionState.new(
            session_id,
            seed=seed if seed is not None else secrets.randbits(63),
            config=config,
        )
        try:
            async with trio.open_nursery() as nursery:
                session = Session(
                    nursery=nursery,
                    state=state,
                    maker=maker,
                    ssl_context=ssl_context,
                    clock=read_clock,
                    events_capacity=events_capacity,
                )
                nursery.start_soon(session._run_timer)
                session._feed(Start())
                try:
                    yield session
                    await session._shutdown()
                finally:
                    session._close()
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The background tasks only end by cancellation: a lone exception is the caller's
            # own (or a cancellation); give it back unwrapped.
            if len(group.exceptions) == 1:
                _reraise(group.exceptions[0])
            raise


def _reraise(exc: BaseException) -> NoReturn:
    """Raise ``exc`` again without chaining the group it was unwrapped from."""
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context


@asynccontextmanager
async def _http_scope(
    client: httpx.AsyncClient | None, ssl_context: ssl.SSLContext | None
) -> AsyncIterator[httpx.AsyncClient]:
    if client is not None:
        yield client
        return
    verify: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
    async with httpx.AsyncClient(
        timeout=rest.DEFAULT_TIMEOUT, follow_redirects=False, verify=verify
    ) as owned:
        yield owned
