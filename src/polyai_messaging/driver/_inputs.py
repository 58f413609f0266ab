"""What the session driver is told: link events, the clock, and the application's intents.

Every input is a frozen value. Link inputs carry the ``generation`` of the socket attempt they
belong to; the driver ignores inputs from any generation but the current one, so a late event
from an old socket can never disturb a newer one.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import attrs

__all__ = [
    "ConnectFailed",
    "EndSession",
    "FrameReceived",
    "HandshakeFailed",
    "Input",
    "LinkClosed",
    "LinkOpened",
    "NewSessionFailed",
    "Now",
    "PickSuggestion",
    "SendText",
    "SetTyping",
    "Start",
    "StartNewSession",
    "WakeUp",
]


@attrs.frozen
class Now:
    """Both clock readings: ``monotonic`` for timers, ``wall`` (Unix seconds) to notice sleep."""

    monotonic: float
    wall: float


@attrs.frozen
class Start:
    """Open the first connection."""


@attrs.frozen
class LinkOpened:
    """The WebSocket handshake of attempt ``generation`` succeeded."""

    generation: int


@attrs.frozen
class FrameReceived:
    """A frame arrived on attempt ``generation``. ``data`` is bytes for a binary frame."""

    generation: int
    data: str | bytes


@attrs.frozen
class LinkClosed:
    """The socket of attempt ``generation`` closed (by either side, or dropped: code 1006)."""

    generation: int
    code: int | None = None
    reason: str = ""


@attrs.frozen
class HandshakeFailed:
    """The server answered the upgrade with an HTTP error (:ref:`protocol-websocket`)."""

    generation: int
    status: int
    body: str = ""
    retry_after: float | None = None


@attrs.frozen
class ConnectFailed:
    """The connection could not be made at all (DNS, refused, TLS, timeout)."""

    generation: int
    error: str = ""


@attrs.frozen
class WakeUp:
    """The deadline the driver asked for has passed (or the machine just woke up)."""


def _custom(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen
class SendText:
    """Send a user message.

    ``custom`` is sent as the message's ``metadata.custom`` (string values; the server echoes it
    back). ``client_event_id`` is the message's correlation id: given here or as
    ``custom["client_event_id"]``, else generated.
    """

    text: str
    client_event_id: str | None = None
    custom: Mapping[str, str] = attrs.field(factory=dict, converter=_custom, hash=False)


@attrs.frozen
class PickSuggestion:
    """Send the ``index``-th (0-based) current suggestion as a user message (see
    :class:`SendText` for ``client_event_id`` and ``custom``)."""

    index: int
    client_event_id: str | None = None
    custom: Mapping[str, str] = attrs.field(factory=dict, converter=_custom, hash=False)


@attrs.frozen
class SetTyping:
    """The user started (``True``) or stopped typing."""

    started: bool


@attrs.frozen
class EndSession:
    """The user leaves: send ``USER_END_SESSION`` and close after ``SESSION_END``."""


@attrs.frozen
class StartNewSession:
    """After ``NeedNewSession``: continue on a freshly created session ``session_id``.

    Also accepted after any ``Finished``, when the application chooses to start over (a new
    conversation: only the outbox, the counters and the random stream carry over).
    """

    session_id: str


@attrs.frozen
class NewSessionFailed:
    """After ``NeedNewSession``: the replacement could not be created (``error`` says why)."""

    error: str


Input = (
    Start
    | LinkOpened
    | FrameReceived
    | LinkClosed
    | HandshakeFailed
    | ConnectFailed
    | WakeUp
    | SendText
    | PickSuggestion
    | SetTyping
    | EndSession
    | StartNewSession
    | NewSessionFailed
)
"""Everything :func:`polyai_messaging.driver.step` accepts."""
