"""The driver's immutable state: :class:`SessionConfig`, :class:`Counters`, :class:`SessionState`.

Plain values and what can be derived from them (limits negotiated in SESSION_START, the next
deadline); nothing here changes a state. :func:`polyai_messaging.driver.step` is the only
thing that advances one.
"""

from __future__ import annotations

import attrs

from ..core import Capabilities, Conversation, ServerEvent
from ._backoff import Backoff
from ._effects import Finished, LinkStatus
from ._inputs import Now
from ._outbox import Outbox, OutboxEntry

__all__ = [
    "DEADLINE_CACHE",
    "UNKNOWN",
    "Counters",
    "SessionConfig",
    "SessionState",
    "heartbeat_interval",
]

DEADLINE_CACHE = "_deadline_cache"
"""Where a :class:`SessionState` keeps its :attr:`~SessionState.deadline` once worked out."""


class _Unknown:
    """The type of :data:`UNKNOWN`: copied or pickled, it stays the one object."""

    __slots__ = ()

    def __reduce__(self) -> str:
        return "UNKNOWN"

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()
"""A deadline not worked out yet."""


_set = object.__setattr__

ReplayLog = tuple[ServerEvent, "ReplayLog"] | None
"""An immutable linked list (newest first): O(1) to extend, never copied."""


@attrs.frozen
class SessionConfig:
    """Tunables. Defaults follow the protocol and the vendor SDKs."""

    default_heartbeat_seconds: float = 30.0
    """Used when SESSION_START gives no (or a negative) interval; 0 from the server disables."""
    liveness_grace_seconds: float = 10.0
    """A link with no inbound frame for interval + grace is dead."""
    replay_quiet_seconds: float = 0.5
    """After a batch frame, this much quiet (or twice the time the first batch took to come,
    if longer) means the replay has settled; a non-batch frame settles it at once."""
    replay_timeout_seconds: float = 5.0
    """A link that delivered no frame at all this long after opening is taken to have no
    replay coming (a server outside the protocol): the replay settles without one."""
    stability_window_seconds: float = 10.0
    """A link that stayed up this long resets the backoff."""
    default_max_reconnect_attempts: int = 10
    """Until SESSION_START says otherwise; 0 means no cap."""
    max_join_retries: int = 3
    """Join requests repeated (after errors asking for one) before the agent joins."""
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
    """How long after a transmission its echo is awaited before delivery is verified."""
    max_resends: int = 3
    close_timeout_seconds: float = 2.0
    """A closing handshake we started that has not completed by then is cut short."""
    gap_repair_seconds: float = 2.0
    """A gap in the history still open this long (events lost, not just late) is filled by
    resuming from before it."""
    default_max_message_bytes: int = 131072
    backoff: Backoff = attrs.field(factory=Backoff)
    websocket_compression: bool = False
    """Offer permessage-deflate where the adapter's WebSocket library can (``websockets``, on
    asyncio; trio-websocket never compresses). Off by default: the frames are small JSON, and a
    compressed connection holds zlib's buffers (about 56 KiB) for its whole life."""


@attrs.frozen
class Counters:
    """Observability counters, cumulative over the life of the state."""

    reconnects: int = 0
    resumes: int = 0
    gaps: int = 0
    duplicates_dropped: int = 0
    resends: int = 0
    protocol_violations: int = 0


@attrs.frozen(slots=False)
class SessionState:
    """Everything the driver knows. Create with :meth:`new`; advance with :func:`.step`."""

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
    replay_latency: float | None = None
    """How long after the open the first frame of this link's replay arrived."""
    closing_at: float | None = None
    """When we started closing the open link to resume it at once."""
    closing_reason: str = ""
    gap_seen_at: float | None = None
    """When a gap a resume could fill was first seen on the settled link."""
    holes_through: int = 0
    """Gaps at or below this sequence survived a replay that covered them: the server has no
    such events, so they are not asked for again."""
    cursor_at_open: int = 0
    was_connected: bool = False
    reset_seen: bool = False
    replay_log: ReplayLog = None
    """Events the current replay delivered, newest first, until it settles: a reset is
    rebuilt from them (so what the server re-sent before diverging is kept)."""
    joins_sent: int = 0
    """Join requests sent in this session."""
    join_retries: int = 0
    """Join requests repeated since the agent last joined (the budget is per episode)."""
    join_unconfirmed: bool = False
    """We asked the agent to join and have seen neither the request's echo nor the agent join:
    without a replay to prove it lost, the request is not repeated."""
    outbox: Outbox = attrs.field(factory=Outbox)
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

    def __attrs_post_init__(self) -> None:
        # The fields' dict, rebuilt at its smallest with the deadline cache's slot in it:
        # filled one attribute at a time, it had grown to twice the size (1,584 bytes, not
        # 832). ``Turn.update`` copies it, so every later state of the session is as small;
        # and it never removes a key, so none grows again.
        _set(self, "__dict__", {**self.__dict__, DEADLINE_CACHE: UNKNOWN})

    @classmethod
    def new(
        cls, session_id: str, *, seed: int = 0, config: SessionConfig | None = None
    ) -> SessionState:
        if config is None:  # the default config, one for every session (it is immutable)
            return cls(session_id=session_id, seed=seed)
        return cls(session_id=session_id, seed=seed, config=config)

    # --- derived values -----------------------------------------------------------------

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between heartbeats; 0 means disabled (:ref:`protocol-heartbeat`)."""
        return heartbeat_interval(self.conversation.capabilities, self.config)

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
        # A step reads it before and after, and the runtime again (and the next step's "before"
        # is this state's "after"): a state is immutable, so it is worked out once. The cache
        # sits in the instance's ``__dict__``, which ``Turn.update`` copies with it unknown.
        cached = self.__dict__[DEADLINE_CACHE]
        if cached is not UNKNOWN:
            return cached  # type: ignore[no-any-return]
        deadline = self._deadline()
        self.__dict__[DEADLINE_CACHE] = deadline
        return deadline

    def _deadline(self) -> float | None:
        # The earliest of the candidates that apply, compared as they come rather than gathered
        # in a list: this runs on nearly every step.
        config = self.config
        since = self.indicator_since
        deadline = None if since is None else since + config.indicator_timeout_seconds
        link = self.link
        if link is LinkStatus.OPEN and self.closing_at is not None:
            # Closing, a wake-up handles only the close timeout (the link is aborted then, live
            # or silent): a liveness or end deadline before it would wake the runtime for
            # nothing, again and again, until the close completes.
            closes = self.closing_at + config.close_timeout_seconds
            return closes if deadline is None or closes < deadline else deadline
        if link is LinkStatus.OPEN:
            at = self.next_heartbeat
            if at is not None and (deadline is None or at < deadline):
                deadline = at
            if self.last_inbound is not None:
                interval = heartbeat_interval(self.conversation.capabilities, config)
                if interval > 0:
                    at = self.last_inbound + interval + config.liveness_grace_seconds
                    if deadline is None or at < deadline:
                        deadline = at
            if not self.settled:
                at = self.settle_at
            else:
                first = self.outbox.checks.first
                at = None if first is None else first[0]
                if self.gap_seen_at is not None:
                    gap = self.gap_seen_at + config.gap_repair_seconds
                    at = gap if at is None or gap < at else at
            if at is not None and (deadline is None or at < deadline):
                deadline = at
            if self.end_requested_at is not None:
                at = self.end_requested_at + config.end_timeout_seconds
                if deadline is None or at < deadline:
                    deadline = at
            return deadline
        at = None
        if link is LinkStatus.RECONNECTING:
            at = self.reconnect_at
        elif link is LinkStatus.CONNECTING and self.connecting_since is not None:
            at = self.connecting_since + config.connect_timeout_seconds
        if at is not None and (deadline is None or at < deadline):
            deadline = at
        if self.finished is None and not self.renewing and self.last_sent_monotonic is not None:
            at = self.last_sent_monotonic + config.idle_timeout_seconds
            if deadline is None or at < deadline:
                deadline = at
        return deadline

    @property
    def indicator_since_deadline(self) -> float | None:
        if self.indicator_since is None:
            return None
        return self.indicator_since + self.config.indicator_timeout_seconds

    def delivery(self, client_event_id: str) -> OutboxEntry | None:
        """The message with this id, pending or among the recently finished ones."""
        return self.outbox.get(client_event_id)


def heartbeat_interval(capabilities: Capabilities | None, config: SessionConfig) -> float:
    """Seconds between heartbeats under these capabilities; 0 means disabled."""
    value = capabilities.heartbeat_interval_seconds if capabilities else None
    if value is None or value < 0:
        return config.default_heartbeat_seconds
    return float(value)
