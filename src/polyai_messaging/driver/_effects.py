"""What the session driver asks for: socket work, a wake-up time, and news for the application.

The adapter executes effects in order and decides nothing itself.
"""

from __future__ import annotations

import enum

import attrs

from ..core import RemoteProtocolError, ServerEvent

__all__ = [
    "AbortSocket",
    "Applied",
    "CloseSocket",
    "Delivery",
    "DeliveryStatus",
    "Effect",
    "FinishKind",
    "Finished",
    "LinkStatus",
    "NeedNewSession",
    "NewSessionReason",
    "OpenSocket",
    "ProtocolViolation",
    "ResumeKind",
    "Resumed",
    "SendFrame",
    "StatusChanged",
    "WakeAt",
]


class LinkStatus(enum.Enum):
    """Where the link (the WebSocket of the moment) stands."""

    IDLE = "idle"
    CONNECTING = "connecting"
    OPEN = "open"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


class DeliveryStatus(enum.Enum):
    """``pending`` until the echo is folded (``sent``), or ``failed`` (:ref:`protocol-delivery`)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class NewSessionReason(enum.Enum):
    """Why the driver asks for a replacement session."""

    SESSION_NOT_FOUND = "session_not_found"
    """Handshake 404: the session is unknown or expired."""
    AUTHENTICATION_FAILED = "authentication_failed"
    """Handshake 401/403: token invalid, expired or not matching the session."""
    SESSION_UNKNOWN = "session_unknown"
    """Close code 4001 (the vendor SDKs' "session unknown")."""


class FinishKind(enum.Enum):
    """How a session finished for good."""

    ENDED = "ended"
    """``SESSION_END`` was received (reason in :attr:`Finished.reason`)."""
    ENDED_WHILE_DISCONNECTED = "ended_while_disconnected"
    """We were silent longer than the idle timeout: the server has ended the conversation."""
    NEW_SESSION_REQUIRED = "new_session_required"
    GAVE_UP = "gave_up"
    """``max_reconnect_attempts`` consecutive reconnects failed."""
    REJECTED = "rejected"
    """The server rejected our connection parameters (handshake 400)."""


class ResumeKind(enum.Enum):
    """How a reconnect resumed the conversation."""

    RESUMED = "resumed"
    RESUMED_WITH_GAP = "resumed_with_gap"
    RESET = "reset"


@attrs.frozen
class OpenSocket:
    """Open attempt ``generation`` to ``session_id`` with ``cursor`` (0: omit it)."""

    generation: int
    session_id: str
    cursor: int


@attrs.frozen
class SendFrame:
    """Send the text frame on attempt ``generation``'s socket only."""

    generation: int
    text: str


@attrs.frozen
class CloseSocket:
    """Close cleanly, with a closing handshake."""

    generation: int
    code: int = 1000
    reason: str = ""


@attrs.frozen
class AbortSocket:
    """Drop the socket without a closing handshake (the link is dead or half-open)."""

    generation: int
    reason: str = ""


@attrs.frozen
class WakeAt:
    """Feed :class:`~polyai_messaging.driver.WakeUp` at this monotonic time (``None``: never)."""

    deadline: float | None


@attrs.frozen
class StatusChanged:
    """The link's status changed (for the application to show)."""

    status: LinkStatus
    reason: str
    """Why, in words (``"connected"``, ``"closed (1006)"``, ...)."""
    attempt: int
    """Consecutive reconnect attempts so far (0 while all is well)."""
    retry_in: float | None
    """Seconds until the next attempt, when one is scheduled."""
    generation: int
    """The socket attempt this status is about."""


@attrs.frozen
class Applied:
    """A new (non-duplicate) server event was folded into the conversation."""

    event: ServerEvent


@attrs.frozen
class ProtocolViolation:
    """The server sent something malformed; the state is unchanged apart from liveness."""

    error: RemoteProtocolError


@attrs.frozen
class Delivery:
    """A user message is ``pending``, ``sent`` (its echo was folded) or ``failed``."""

    client_event_id: str
    status: DeliveryStatus
    message_id: str | None = None
    """The server's ``message_id``, once sent."""


@attrs.frozen
class Resumed:
    """After a reconnect settled: how it resumed, the gaps it found, the cursor before."""

    kind: ResumeKind
    gaps: tuple[tuple[int, int], ...] = ()
    """Sequence ranges still missing above the previous cursor."""
    previous_cursor: int = 0
    """The cursor held when the link opened."""


@attrs.frozen
class NeedNewSession:
    """This session cannot be resumed: mint a token, create a session, and feed
    ``StartNewSession`` (or ``NewSessionFailed``). The driver emits it only when it wants a
    replacement (at most ``max_new_sessions`` in a row); the adapter always complies."""

    reason: NewSessionReason


@attrs.frozen
class Finished:
    """Terminal: nothing more will happen on this session."""

    kind: FinishKind
    reason: str | None = None


Effect = (
    OpenSocket
    | SendFrame
    | CloseSocket
    | AbortSocket
    | WakeAt
    | StatusChanged
    | Applied
    | ProtocolViolation
    | Delivery
    | Resumed
    | NeedNewSession
    | Finished
)
"""Everything :func:`polyai_messaging.driver.step` may return."""
