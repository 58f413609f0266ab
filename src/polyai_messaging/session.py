"""The sans-I/O session driver: ``step(state, input, now) -> (state, effects)``.

Everything a client does on a connection is decided here, without I/O: when to join, when to
heartbeat, when a silent link is dead, when and where to reconnect, what to resend, when the
session is over. The adapter feeds :mod:`.inputs` and executes :mod:`.effects`; the state
answers one question about time, :attr:`SessionState.deadline`.

Illegal application intents (blank or oversized text, anything after the end) raise
:class:`~polyai_messaging.errors.LocalProtocolError` and leave the state as it was.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import attrs

from .backoff import Backoff, draw
from .commands import ClientCommand, Heartbeat, RequestPolyAgentJoin, UserEndSession, UserMessage
from .commands import UserTyping as UserTypingCommand
from .conversation import Conversation, SystemHint, hint_for
from .effects import (
    AbortSocket,
    Applied,
    CloseSocket,
    Delivery,
    DeliveryStatus,
    Effect,
    Finished,
    FinishKind,
    LinkStatus,
    NeedNewSession,
    NewSessionReason,
    OpenSocket,
    ProtocolViolation,
    Resumed,
    ResumeKind,
    SendFrame,
    StatusChanged,
    WakeAt,
)
from .errors import LocalProtocolError, RemoteProtocolError
from .events import (
    TYPING_STARTED,
    TYPING_STOPPED,
    EventBatch,
    LiveAgentTyping,
    PolyAgentJoinRequested,
    PolyAgentThinking,
    ServerEvent,
    SystemMessage,
    UserMessageEcho,
)
from .inputs import (
    ConnectFailed,
    EndSession,
    FrameReceived,
    HandshakeFailed,
    Input,
    LinkClosed,
    LinkOpened,
    NewSessionFailed,
    Now,
    PickSuggestion,
    SendText,
    SetTyping,
    Start,
    StartNewSession,
    WakeUp,
)
from .outbox import OutboxEntry, check_delay
from .reducer import apply
from .wire import decode, encode, encoded_size

__all__ = ["Counters", "SessionConfig", "SessionState", "step"]

_REJOIN_HINTS = frozenset({SystemHint.REJOIN})
_EXPIRED_REASON = "idle timeout passed while disconnected"
_INDICATOR_EVENTS = frozenset({PolyAgentThinking, LiveAgentTyping})


@attrs.frozen
class SessionConfig:
    """Tunables. Defaults follow the protocol and the vendor SDKs."""

    default_heartbeat_seconds: float = 30.0
    """Used when SESSION_START gives no (or a negative) interval; 0 from the server disables."""
    liveness_grace_seconds: float = 10.0
    """A link with no inbound frame for interval + grace is dead."""
    replay_quiet_seconds: float = 0.5
    """After the last batch frame, this much quiet means the replay has settled."""
    stability_window_seconds: float = 10.0
    """A link that stayed up this long resets the backoff."""
    default_max_reconnect_attempts: int = 10
    """Until SESSION_START says otherwise; 0 means no cap."""
    max_join_retries: int = 3
    typing_throttle_seconds: float = 3.0
    indicator_timeout_seconds: float = 10.0
    """An agent-thinking or live-typing indicator with no follow-up expires after this."""
    idle_timeout_seconds: float = 600.0
    sleep_jump_seconds: float = 30.0
    """Wall-clock advancing this much more than monotonic time means the machine slept."""
    connect_timeout_seconds: float = 15.0
    """A handshake that has not completed by then counts as a failed attempt."""
    max_new_sessions: int = 3
    """Replacement sessions asked for in a row (handshake 401/404, close 4001) before giving
    up; the count restarts when a link opens. 0: never ask, finish instead."""
    end_timeout_seconds: float = 5.0
    """After USER_END_SESSION, how long to wait for SESSION_END before closing anyway."""
    resend_check_seconds: float = 5.0
    max_resends: int = 3
    default_max_message_bytes: int = 131072
    backoff: Backoff = attrs.field(factory=Backoff)


@attrs.frozen
class Counters:
    """Observability counters, cumulative over the life of the state."""

    reconnects: int = 0
    resumes: int = 0
    gaps: int = 0
    duplicates_dropped: int = 0
    resends: int = 0
    protocol_violations: int = 0


@attrs.frozen
class SessionState:
    """Everything the driver knows. Create with :meth:`new`; advance with :func:`step`."""

    session_id: str = attrs.field(repr=False)
    config: SessionConfig = SessionConfig()
    seed: int = 0
    conversation: Conversation = attrs.field(factory=Conversation, repr=False)
    link: LinkStatus = LinkStatus.IDLE
    generation: int = 0
    attempt: int = 0
    reconnect_at: float | None = None
    connecting_since: float | None = None
    opened_at: float | None = None
    last_inbound: float | None = None
    next_heartbeat: float | None = None
    settled: bool = False
    settle_at: float | None = None
    cursor_at_open: int = 0
    was_connected: bool = False
    reset_seen: bool = False
    join_retries: int = 0
    outbox: tuple[OutboxEntry, ...] = ()
    typing_sent: tuple[bool, float] | None = None
    indicator_since: float | None = None
    last_sent_wall: float | None = None
    last_sent_monotonic: float | None = None
    last_now: Now | None = None
    draws: int = 0
    end_requested_at: float | None = None
    finished: Finished | None = None
    renewing: bool = False
    """NeedNewSession was emitted; waiting for StartNewSession or NewSessionFailed."""
    new_sessions_in_a_row: int = 0
    counters: Counters = Counters()

    @classmethod
    def new(
        cls, session_id: str, *, seed: int = 0, config: SessionConfig | None = None
    ) -> SessionState:
        return cls(session_id=session_id, seed=seed, config=config or SessionConfig())

    # --- derived values -----------------------------------------------------------------

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between heartbeats; 0 means disabled (protocol §14)."""
        caps = self.conversation.capabilities
        value = caps.heartbeat_interval_seconds if caps else None
        if value is None or value < 0:
            return self.config.default_heartbeat_seconds
        return float(value)

    @property
    def max_message_bytes(self) -> int:
        caps = self.conversation.capabilities
        value = caps.max_message_size_bytes if caps else None
        return value if value and value > 0 else self.config.default_max_message_bytes

    @property
    def max_reconnect_attempts(self) -> int:
        caps = self.conversation.capabilities
        value = caps.max_reconnect_attempts if caps else None
        if value is None or value < 0:
            return self.config.default_max_reconnect_attempts
        return value

    @property
    def liveness_deadline(self) -> float | None:
        interval = self.heartbeat_interval
        if self.link is not LinkStatus.OPEN or interval <= 0 or self.last_inbound is None:
            return None
        return self.last_inbound + interval + self.config.liveness_grace_seconds

    @property
    def deadline(self) -> float | None:
        """The monotonic time at which the driver must next be woken (``None``: no timer)."""
        candidates: list[float | None] = [self.indicator_since_deadline]
        if self.link is LinkStatus.RECONNECTING:
            candidates.append(self.reconnect_at)
        if self.link is LinkStatus.CONNECTING and self.connecting_since is not None:
            candidates.append(self.connecting_since + self.config.connect_timeout_seconds)
        if self.link is LinkStatus.OPEN:
            candidates += [self.next_heartbeat, self.liveness_deadline]
            if not self.settled:
                candidates.append(self.settle_at)
            else:
                candidates += [e.next_check for e in self.outbox if e.awaiting_echo]
            if self.end_requested_at is not None:
                candidates.append(self.end_requested_at + self.config.end_timeout_seconds)
        elif self.finished is None and not self.renewing and self.last_sent_monotonic is not None:
            candidates.append(self.last_sent_monotonic + self.config.idle_timeout_seconds)
        present = [c for c in candidates if c is not None]
        return min(present) if present else None

    @property
    def indicator_since_deadline(self) -> float | None:
        if self.indicator_since is None:
            return None
        return self.indicator_since + self.config.indicator_timeout_seconds

    def delivery(self, client_event_id: str) -> OutboxEntry | None:
        for entry in self.outbox:
            if entry.client_event_id == client_event_id:
                return entry
        return None


class _Turn:
    """One step's work in progress: the evolving state and the effects so far."""

    def __init__(self, state: SessionState, now: Now) -> None:
        self.state = state
        self.now = now
        self.effects: list[Effect] = []

    @property
    def t(self) -> float:
        return self.now.monotonic

    def update(self, **changes: Any) -> None:
        self.state = attrs.evolve(self.state, **changes)

    def count(self, **increments: int) -> None:
        counters = self.state.counters
        self.update(
            counters=attrs.evolve(
                counters, **{k: getattr(counters, k) + v for k, v in increments.items()}
            )
        )

    def emit(self, effect: Effect) -> None:
        self.effects.append(effect)

    def status(self, status: LinkStatus, reason: str, retry_in: float | None = None) -> None:
        s = self.state
        self.emit(StatusChanged(status, reason, s.attempt, retry_in, s.generation))

    def send(self, command: ClientCommand) -> None:
        s = self.state
        self.emit(SendFrame(s.generation, encode(command)))
        self.update(last_sent_wall=self.now.wall, last_sent_monotonic=self.t)


def step(state: SessionState, event: Input, now: Now) -> tuple[SessionState, list[Effect]]:
    """Advance the driver by one input. Pure: same arguments, same result."""
    turn = _Turn(state, now)
    before = state.deadline
    _notice_sleep(turn)
    _HANDLERS[type(event)](turn, event)
    turn.update(last_now=now)
    if turn.state.deadline != before:
        turn.emit(WakeAt(turn.state.deadline))
    return turn.state, turn.effects


# --- link lifecycle ---------------------------------------------------------------------------


def _on_start(turn: _Turn, _: Start) -> None:
    if turn.state.finished is not None:
        raise LocalProtocolError("the session is over; start a new one")
    if turn.state.link is not LinkStatus.IDLE:
        return
    _open(turn, "starting")


def _open(turn: _Turn, reason: str) -> None:
    s = turn.state
    turn.update(
        generation=s.generation + 1,
        link=LinkStatus.CONNECTING,
        connecting_since=turn.t,
        reconnect_at=None,
        cursor_at_open=s.conversation.cursor,
        reset_seen=False,
    )
    turn.status(LinkStatus.CONNECTING, reason)
    turn.emit(OpenSocket(turn.state.generation, s.session_id, s.conversation.cursor))


def _current(turn: _Turn, generation: int, *links: LinkStatus) -> bool:
    s = turn.state
    return generation == s.generation and s.link in links


def _on_opened(turn: _Turn, event: LinkOpened) -> None:
    if not _current(turn, event.generation, LinkStatus.CONNECTING):
        return
    s = turn.state
    interval = s.heartbeat_interval
    turn.update(
        link=LinkStatus.OPEN,
        opened_at=turn.t,
        last_inbound=turn.t,
        next_heartbeat=turn.t + interval if interval > 0 else None,
        settled=False,
        settle_at=turn.t + s.config.replay_quiet_seconds,
        conversation=s.conversation.without_indicators(),
        indicator_since=None,
    )
    turn.update(new_sessions_in_a_row=0)
    if s.last_sent_wall is None:
        # The server's idle clock starts with the connection, even before we send anything.
        turn.update(last_sent_wall=turn.now.wall, last_sent_monotonic=turn.t)
    turn.status(LinkStatus.OPEN, "connected")


def _on_frame(turn: _Turn, event: FrameReceived) -> None:
    if not _current(turn, event.generation, LinkStatus.OPEN):
        return
    turn.update(last_inbound=turn.t)
    if isinstance(event.data, bytes):
        _violation(turn, RemoteProtocolError("binary frames are not part of the protocol"))
        return
    try:
        decoded = decode(event.data)
    except RemoteProtocolError as error:
        _violation(turn, error)
        return
    is_batch = isinstance(decoded, EventBatch)
    inner: tuple[ServerEvent, ...] = (decoded,)
    if isinstance(decoded, EventBatch):
        inner = decoded.events
        for rejected in decoded.rejected:
            _violation(turn, rejected)
    interval = turn.state.heartbeat_interval
    for item in inner:
        _fold(turn, item)
    s = turn.state
    if s.heartbeat_interval != interval and s.link is LinkStatus.OPEN:
        # SESSION_START announced a different interval: reschedule (0 disables, §14).
        interval = s.heartbeat_interval
        turn.update(next_heartbeat=turn.t + interval if interval > 0 else None)
        s = turn.state
    if not s.settled:
        if is_batch:
            turn.update(settle_at=turn.t + s.config.replay_quiet_seconds)
        else:
            _settle(turn)
    if turn.state.conversation.ended and turn.state.finished is None:
        _finish(turn, FinishKind.ENDED, turn.state.conversation.end_reason, close=True)


def _violation(turn: _Turn, error: RemoteProtocolError) -> None:
    turn.count(protocol_violations=1)
    turn.emit(ProtocolViolation(error))


def _fold(turn: _Turn, event: ServerEvent) -> None:
    s = turn.state
    conversation = s.conversation
    if not s.settled and event.sequence is not None and event.sequence <= s.cursor_at_open:
        known = conversation.journal.get(event.sequence)
        if known is not None and known.id != event.id:
            # The server's history no longer matches ours: it is the source of truth.
            conversation = Conversation()
            turn.update(reset_seen=True)
    after = apply(conversation, event)
    if after.duplicates_dropped > conversation.duplicates_dropped:
        turn.count(duplicates_dropped=1)
        turn.update(conversation=after)
        return
    turn.update(conversation=after)
    turn.emit(Applied(event))
    _react(turn, event)


def _react(turn: _Turn, event: ServerEvent) -> None:
    s = turn.state
    if type(event) is UserMessageEcho:
        _confirm_deliveries(turn)
    elif (
        type(event) is SystemMessage
        and s.settled
        and event.payload.level.endswith("ERROR")
        and hint_for(event.payload.message) in _REJOIN_HINTS
        and s.join_retries < s.config.max_join_retries
        and not s.conversation.ended
    ):
        turn.update(join_retries=s.join_retries + 1)
        turn.send(RequestPolyAgentJoin())
    conversation = turn.state.conversation
    if not (conversation.agent_thinking or conversation.live_agent_typing):
        turn.update(indicator_since=None)
    elif type(event) in _INDICATOR_EVENTS or turn.state.indicator_since is None:
        turn.update(indicator_since=turn.t)


def _settle(turn: _Turn) -> None:
    turn.update(settled=True, settle_at=None)
    s = turn.state
    conversation = s.conversation
    journal = conversation.journal.values()
    if not conversation.agent_joined and not any(
        type(e) is PolyAgentJoinRequested for e in journal
    ):
        turn.send(RequestPolyAgentJoin())
    if s.was_connected:
        new_gaps = tuple(g for g in conversation.gaps if g[0] > s.cursor_at_open)
        if s.reset_seen:
            kind = ResumeKind.RESET
        elif new_gaps:
            kind = ResumeKind.RESUMED_WITH_GAP
        else:
            kind = ResumeKind.RESUMED
        turn.count(resumes=1, gaps=len(new_gaps))
        turn.emit(Resumed(kind, new_gaps, s.cursor_at_open))
    turn.update(was_connected=True)
    _confirm_deliveries(turn)
    for entry in turn.state.outbox:
        # The previous link may have lost the frame: resend now, if budget remains. Otherwise
        # the pending check fails it on time, not early.
        if entry.status is DeliveryStatus.PENDING and entry.transmissions <= s.config.max_resends:
            _transmit(turn, entry.client_event_id)
    if turn.state.end_requested_at is not None and not turn.state.conversation.ended:
        turn.send(UserEndSession())


def _on_closed(turn: _Turn, event: LinkClosed) -> None:
    if not _current(turn, event.generation, LinkStatus.CONNECTING, LinkStatus.OPEN):
        return
    s = turn.state
    if s.conversation.ended:
        _finish(turn, FinishKind.ENDED, s.conversation.end_reason, close=False)
    elif event.code == 4001:
        _need_new_session(turn, NewSessionReason.SESSION_UNKNOWN)
    else:
        _schedule_reconnect(turn, f"closed ({event.code})")


def _on_handshake_failed(turn: _Turn, event: HandshakeFailed) -> None:
    if not _current(turn, event.generation, LinkStatus.CONNECTING):
        return
    if event.status == 404:
        _need_new_session(turn, NewSessionReason.SESSION_NOT_FOUND)
    elif event.status in (401, 403):
        _need_new_session(turn, NewSessionReason.AUTHENTICATION_FAILED)
    elif event.status == 400:
        _finish(turn, FinishKind.REJECTED, "invalid connection parameters", close=False)
    else:
        floor = (event.retry_after or 0.0) if event.status == 429 else 0.0
        _schedule_reconnect(turn, f"handshake refused ({event.status})", floor)


def _on_connect_failed(turn: _Turn, event: ConnectFailed) -> None:
    if _current(turn, event.generation, LinkStatus.CONNECTING):
        _schedule_reconnect(turn, "connection failed")


def _schedule_reconnect(turn: _Turn, reason: str, floor: float = 0.0) -> None:
    s = turn.state
    if _idle_expired(turn):
        _expired_while_disconnected(turn)
        return
    attempt = s.attempt
    if s.opened_at is not None and turn.t - s.opened_at >= s.config.stability_window_seconds:
        attempt = 0
    attempt += 1
    cap = s.max_reconnect_attempts
    if cap and attempt > cap:
        turn.update(attempt=attempt - 1)
        _finish(turn, FinishKind.GAVE_UP, f"{cap} reconnect attempts failed", close=False)
        return
    delay = max(s.config.backoff.delay(attempt, draw(s.seed, s.draws)), floor)
    turn.update(
        attempt=attempt,
        draws=s.draws + 1,
        link=LinkStatus.RECONNECTING,
        reconnect_at=turn.t + delay,
        opened_at=None,
        next_heartbeat=None,
        settled=False,
        settle_at=None,
        conversation=s.conversation.without_indicators(),
        indicator_since=None,
    )
    turn.count(reconnects=1)
    turn.status(LinkStatus.RECONNECTING, reason, retry_in=delay)


def _idle_expired(turn: _Turn) -> bool:
    s = turn.state
    if s.last_sent_wall is None or s.last_sent_monotonic is None:
        return False
    # Wall time sees a sleep, monotonic time sees a wall clock stepped back; either suffices.
    # (The deadline is monotonic, so a wake-up at it must find the session expired.)
    elapsed = max(turn.now.wall - s.last_sent_wall, turn.t - s.last_sent_monotonic)
    return elapsed >= s.config.idle_timeout_seconds


def _expired_while_disconnected(turn: _Turn) -> None:
    # The conversation is over: a replacement would be a different conversation, so the
    # application decides (it may feed StartNewSession with a session of its own).
    _finish(turn, FinishKind.ENDED_WHILE_DISCONNECTED, _EXPIRED_REASON, close=False)


def _need_new_session(turn: _Turn, reason: NewSessionReason) -> None:
    if reason is NewSessionReason.SESSION_NOT_FOUND and _idle_expired(turn):
        _expired_while_disconnected(turn)
        return
    s = turn.state
    limit = s.config.max_new_sessions
    if s.new_sessions_in_a_row >= limit:
        note = f"{reason.value}; {limit} replacement sessions in a row did not connect"
        _finish(turn, FinishKind.NEW_SESSION_REQUIRED, note, close=False)
        return
    _stand_down(turn, reason.value)
    turn.update(renewing=True, new_sessions_in_a_row=s.new_sessions_in_a_row + 1)
    turn.emit(NeedNewSession(reason))


def _on_new_session_failed(turn: _Turn, event: NewSessionFailed) -> None:
    if turn.state.renewing:
        _finish(turn, FinishKind.NEW_SESSION_REQUIRED, event.error, close=False)


def _finish(turn: _Turn, kind: FinishKind, reason: str | None, *, close: bool) -> None:
    s = turn.state
    if close and s.link is LinkStatus.OPEN:
        turn.emit(CloseSocket(s.generation, 1000, "session ended"))
    _stand_down(turn, reason or kind.value)
    turn.update(finished=Finished(kind, reason), renewing=False)
    turn.emit(Finished(kind, reason))


def _stand_down(turn: _Turn, reason: str) -> None:
    """No link, no timers; messages still pending are failed, visibly (never lost silently)."""
    s = turn.state
    outbox = []
    for entry in s.outbox:
        if entry.status is DeliveryStatus.PENDING:
            turn.emit(Delivery(entry.client_event_id, DeliveryStatus.FAILED))
            outbox.append(attrs.evolve(entry, status=DeliveryStatus.FAILED, next_check=None))
        else:
            outbox.append(entry)
    turn.update(
        link=LinkStatus.CLOSED,
        reconnect_at=None,
        connecting_since=None,
        next_heartbeat=None,
        settle_at=None,
        end_requested_at=None,
        indicator_since=None,
        outbox=tuple(outbox),
    )
    turn.status(LinkStatus.CLOSED, reason)


def _on_start_new_session(turn: _Turn, event: StartNewSession) -> None:
    s = turn.state
    restartable = s.finished is not None and s.finished.kind in (
        FinishKind.NEW_SESSION_REQUIRED,
        FinishKind.ENDED_WHILE_DISCONNECTED,
    )
    if not (s.renewing or restartable):
        raise LocalProtocolError("a new session is only needed after NeedNewSession")
    turn.state = SessionState(
        session_id=event.session_id,
        config=s.config,
        seed=s.seed,
        draws=s.draws,
        generation=s.generation,
        outbox=s.outbox,
        counters=s.counters,
        new_sessions_in_a_row=s.new_sessions_in_a_row,
    )
    _open(turn, "new session")


# --- time -------------------------------------------------------------------------------------


def _notice_sleep(turn: _Turn) -> None:
    s = turn.state
    last = s.last_now
    if last is None:
        return
    jump = (turn.now.wall - last.wall) - (turn.now.monotonic - last.monotonic)
    if jump < s.config.sleep_jump_seconds or s.link is not LinkStatus.OPEN:
        return
    # The machine slept: the socket may be long dead. Probe now and give it one grace period.
    turn.send(Heartbeat())
    turn.update(last_inbound=turn.t - s.heartbeat_interval)


def _on_wake(turn: _Turn, _: WakeUp) -> None:
    s = turn.state
    t = turn.t
    if s.indicator_since_deadline is not None and s.indicator_since_deadline <= t:
        turn.update(conversation=s.conversation.without_indicators(), indicator_since=None)
    if s.link is LinkStatus.RECONNECTING and _idle_expired(turn):
        _expired_while_disconnected(turn)
        return
    if s.link is LinkStatus.RECONNECTING and s.reconnect_at is not None and s.reconnect_at <= t:
        _open(turn, "reconnecting")
        return
    connecting = s.connecting_since
    if s.link is LinkStatus.CONNECTING and connecting is not None:
        if connecting + s.config.connect_timeout_seconds <= t:
            turn.emit(AbortSocket(s.generation, "handshake timed out"))
            _schedule_reconnect(turn, "handshake timed out")
        return
    if s.link is not LinkStatus.OPEN:
        idle = s.finished is None and not s.renewing and s.link is not LinkStatus.IDLE
        if idle and _idle_expired(turn):
            _expired_while_disconnected(turn)
        return
    liveness = s.liveness_deadline
    if liveness is not None and liveness <= t:
        turn.emit(AbortSocket(s.generation, "no inbound frame within heartbeat interval + grace"))
        _schedule_reconnect(turn, "link silent")
        return
    if not s.settled and s.settle_at is not None and s.settle_at <= t:
        _settle(turn)
    if turn.state.next_heartbeat is not None and turn.state.next_heartbeat <= t:
        turn.send(Heartbeat())
        interval = turn.state.heartbeat_interval
        turn.update(next_heartbeat=t + interval if interval > 0 else None)
    if turn.state.settled:
        for entry in turn.state.outbox:
            if entry.awaiting_echo and entry.next_check is not None and entry.next_check <= t:
                _transmit(turn, entry.client_event_id)
    ended = turn.state.end_requested_at
    if ended is not None and ended + s.config.end_timeout_seconds <= t:
        _finish(turn, FinishKind.ENDED, "user ended (no SESSION_END received)", close=True)


# --- outbox -----------------------------------------------------------------------------------


def _replace_entry(turn: _Turn, client_event_id: str, **changes: Any) -> OutboxEntry:
    outbox = list(turn.state.outbox)
    for index, entry in enumerate(outbox):
        if entry.client_event_id == client_event_id:
            outbox[index] = attrs.evolve(entry, **changes)
            turn.update(outbox=tuple(outbox))
            return outbox[index]
    raise KeyError(client_event_id)


def _transmit(turn: _Turn, client_event_id: str) -> None:
    """Send (or resend) one entry, or fail it when its resends are used up."""
    s = turn.state
    entry = s.delivery(client_event_id)
    if entry is None or entry.status is not DeliveryStatus.PENDING:
        return
    if entry.transmissions > s.config.max_resends:
        _replace_entry(turn, client_event_id, status=DeliveryStatus.FAILED, next_check=None)
        turn.emit(Delivery(client_event_id, DeliveryStatus.FAILED))
        return
    transmissions = entry.transmissions + 1
    if entry.transmissions:
        turn.count(resends=1)
    turn.send(UserMessage(text=entry.text, client_event_id=client_event_id))
    _replace_entry(
        turn,
        client_event_id,
        transmissions=transmissions,
        next_check=turn.t + check_delay(transmissions, s.config.resend_check_seconds),
    )


def _confirm_deliveries(turn: _Turn) -> None:
    conversation = turn.state.conversation
    for entry in turn.state.outbox:
        # A late echo still proves delivery: a FAILED message that reached the server is SENT.
        if entry.status is DeliveryStatus.SENT:
            continue
        message = conversation.delivered(entry.client_event_id)
        if message is not None:
            _replace_entry(
                turn,
                entry.client_event_id,
                status=DeliveryStatus.SENT,
                next_check=None,
                message_id=message.message_id,
            )
            turn.emit(Delivery(entry.client_event_id, DeliveryStatus.SENT, message.message_id))


# --- application intents ----------------------------------------------------------------------


def _ensure_open_session(turn: _Turn) -> None:
    s = turn.state
    if s.finished is not None or s.conversation.ended or s.end_requested_at is not None:
        raise LocalProtocolError("the session has ended; nothing more can be sent")


def _on_send_text(turn: _Turn, event: SendText) -> None:
    _ensure_open_session(turn)
    s = turn.state
    if not event.text.strip():
        raise LocalProtocolError("a message cannot be blank")
    client_event_id = event.client_event_id
    if client_event_id is None:
        client_event_id = str(uuid.UUID(int=int(draw(s.seed, s.draws) * 2**128), version=4))
        turn.update(draws=s.draws + 1)
    if s.delivery(client_event_id) is not None:
        raise LocalProtocolError("client_event_id already used in this session")
    size = encoded_size(UserMessage(text=event.text, client_event_id=client_event_id))
    if size > s.max_message_bytes:
        raise LocalProtocolError(
            f"message is {size} bytes encoded; the session allows {s.max_message_bytes}"
        )
    entry = OutboxEntry(client_event_id=client_event_id, text=event.text)
    turn.update(outbox=(*turn.state.outbox, entry))
    turn.emit(Delivery(client_event_id, DeliveryStatus.PENDING))
    if turn.state.link is LinkStatus.OPEN and turn.state.settled:
        _transmit(turn, client_event_id)


def _on_pick(turn: _Turn, event: PickSuggestion) -> None:
    suggestions = turn.state.conversation.suggestions
    if not 0 <= event.index < len(suggestions):
        raise LocalProtocolError(f"no suggestion number {event.index + 1}")
    _on_send_text(turn, SendText(suggestions[event.index].message_text))


def _on_typing(turn: _Turn, event: SetTyping) -> None:
    _ensure_open_session(turn)
    s = turn.state
    if s.link is not LinkStatus.OPEN:
        return
    last = s.typing_sent
    if event.started:
        if last is not None and last[0] and turn.t - last[1] < s.config.typing_throttle_seconds:
            return
        turn.send(UserTypingCommand(state=TYPING_STARTED))
    else:
        if last is None or not last[0]:
            return
        turn.send(UserTypingCommand(state=TYPING_STOPPED))
    turn.update(typing_sent=(event.started, turn.t))


def _on_end(turn: _Turn, _: EndSession) -> None:
    _ensure_open_session(turn)
    turn.update(end_requested_at=turn.t)
    if turn.state.link is LinkStatus.OPEN and turn.state.settled:
        turn.send(UserEndSession())


_HANDLERS: dict[type[Any], Callable[[_Turn, Any], None]] = {
    Start: _on_start,
    LinkOpened: _on_opened,
    FrameReceived: _on_frame,
    LinkClosed: _on_closed,
    HandshakeFailed: _on_handshake_failed,
    ConnectFailed: _on_connect_failed,
    WakeUp: _on_wake,
    SendText: _on_send_text,
    PickSuggestion: _on_pick,
    SetTyping: _on_typing,
    EndSession: _on_end,
    StartNewSession: _on_start_new_session,
    NewSessionFailed: _on_new_session_failed,
}
