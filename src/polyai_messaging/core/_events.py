"""Inbound server events: every ``type`` a client can receive, as attrs classes.

Each event carries the envelope (``id``, ``sequence``, ``timestamp``,
``metadata``) and a typed ``payload`` shaped exactly like the wire (the payload classes are in
:mod:`._payloads`, and re-exported here). Unknown ``type`` values become :class:`UnknownEvent`,
which keeps the raw type and payload.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import attrs

from ._errors import RemoteProtocolError
from ._payloads import (
    TYPING_STARTED,
    TYPING_STOPPED,
    AgentMessagePayload,
    Attachment,
    Capabilities,
    CapabilitiesPayload,
    ChatCallAction,
    ChunkPayload,
    ClientHandoffPayload,
    EmptyPayload,
    HandoffAcceptedPayload,
    LanguagePayload,
    LiveAgent,
    LiveAgentJoinedPayload,
    LiveAgentMessagePayload,
    LiveAgentTypingPayload,
    Metadata,
    PolyAgentJoinedPayload,
    QueueStatusPayload,
    ReasonPayload,
    SessionEndPayload,
    Suggestion,
    SystemMessagePayload,
    UserMessagePayload,
)

# Event and payload classes are frozen and slotted: a conversation holds every event it received,
# and a slotted instance takes a third of the memory of one with an instance dict. The generated
# decoders fill the slots directly, which is as fast as building the dict.

__all__ = [
    "ECHO_TYPES",
    "KNOWN_TYPES",
    "TYPING_STARTED",
    "TYPING_STOPPED",
    "AgentMessagePayload",
    "Attachment",
    "Capabilities",
    "CapabilitiesPayload",
    "ChatCallAction",
    "ChunkPayload",
    "ClientHandoffPayload",
    "ClientHandoffRequired",
    "EmptyPayload",
    "EventBatch",
    "HandoffAccepted",
    "HandoffAcceptedPayload",
    "HandoffFailed",
    "HandoffQueueStatus",
    "HandoffTimeout",
    "HeartbeatEcho",
    "LanguageChanged",
    "LanguagePayload",
    "LiveAgent",
    "LiveAgentJoined",
    "LiveAgentJoinedPayload",
    "LiveAgentLeft",
    "LiveAgentMessage",
    "LiveAgentMessagePayload",
    "LiveAgentTyping",
    "LiveAgentTypingPayload",
    "Metadata",
    "PolyAgentJoinRequested",
    "PolyAgentJoined",
    "PolyAgentJoinedPayload",
    "PolyAgentLeft",
    "PolyAgentMessage",
    "PolyAgentMessageChunk",
    "PolyAgentThinking",
    "PolyAgentTriggeredHandoff",
    "QueueStatusPayload",
    "ReasonPayload",
    "ServerEvent",
    "SessionEnd",
    "SessionEndPayload",
    "SessionStart",
    "Suggestion",
    "SystemMessage",
    "SystemMessagePayload",
    "UnknownEvent",
    "UserEndSessionEcho",
    "UserMessageEcho",
    "UserMessagePayload",
]

# --- events -----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True, weakref_slot=False)
class _Event:
    """Envelope fields shared by every server event (:ref:`protocol-envelope`)."""

    TYPE: ClassVar[str] = ""
    id: str | None = None
    """Unique event id, the de-duplication key. A heartbeat echo may lack it."""
    sequence: int | None = None
    """Session-wide order; ``None`` for transient events (typing, heartbeat echoes)."""
    timestamp: datetime | None = None
    """Server time, timezone-aware when the wire says so."""
    metadata: Metadata | None = None
    """Echo of the ``metadata`` the client sent with the originating event."""
    rejected: tuple[RemoteProtocolError, ...] = attrs.field(default=(), eq=False)
    """Parts of the frame that were dropped as malformed, each with the path naming it: elements
    of a batch, or of an array of objects such as ``payload.attachments[0]``. Set by the decoder,
    never read from the wire; a diagnostic, so it takes no part in equality."""


@attrs.frozen(kw_only=True, weakref_slot=False)
class PolyAgentJoined(_Event):
    """The PolyAI agent joined (in answer to our join request)."""

    TYPE: ClassVar[str] = "EVENT_TYPE_POLY_AGENT_JOINED"
    payload: PolyAgentJoinedPayload = attrs.field(factory=PolyAgentJoinedPayload)


@attrs.frozen(kw_only=True, weakref_slot=False)
class PolyAgentThinking(_Event):
    """The PolyAI agent is composing a reply (cleared by its message or first chunk)."""

    TYPE: ClassVar[str] = "EVENT_TYPE_POLY_AGENT_THINKING"
    payload: EmptyPayload = attrs.field(factory=EmptyPayload)


@attrs.frozen(kw_only=True, weakref_slot=False)
class PolyAgentMessage(_Event):
    """A complete PolyAI agent message (sessions without streaming)."""

    TYPE: ClassVar[str] = "EVENT_TYPE_POLY_AGENT_MESSAGE"
    payload: AgentMessagePayload


@attrs.frozen(kw_only=True, weakref_slot=False)
class PolyAgentMessageChunk(_Event):
    """One fragment of a streamed PolyAI agent message (streaming sessions)."""

    TYPE: ClassVar[str] = "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK"
    payload: ChunkPayload


@attrs.frozen(kw_only=True, weakref_slot=False)
class PolyAgentLeft(_Event):
    """The PolyAI agent left, usually before a handoff."""

    TYPE: ClassVar[str] = "EVENT_TYPE_POLY_AGENT_LEFT"
    payload: ReasonPayload = attrs.field(factory=ReasonPayload)


@attrs.frozen(kw_only=True, weakref_slot=False)
class PolyAgentTriggeredHandoff(_Event):
    """The PolyAI agent decided that a human should take over."""

    TYPE: ClassVar[str] = "EVENT_TYPE_POLY_AGENT_TRIGGERED_HANDOFF"
    payload: EmptyPayload = attrs.field(factory=EmptyPayload)


@attrs.frozen(kw_only=True, weakref_slot=False)
class LiveAgentJoined(_Event):
    """A human agent joined the conversation."""

    TYPE: ClassVar[str] = "EVENT_TYPE_LIVE_AGENT_JOINED"
    payload: LiveAgentJoinedPayload = attrs.field(factory=LiveAgentJoinedPayload)


@attrs.frozen(kw_only=True, weakref_slot=False)
class LiveAgentTyping(_Event):
    """The live agent started or stopped typing (transient: no sequence)."""

    TYPE: ClassVar[str] = "EVENT_TYPE_LIVE_AGENT_TYPING"
    payload: LiveAgentTypingPayload = attrs.field(factory=LiveAgentTypingPayload)


@attrs.frozen(kw_only=True, weakref_slot=False)
class LiveAgentMessage(_Event):
    """A message from the live agent."""

    TYPE: ClassVar[str] = "EVENT_TYPE_LIVE_AGENT_MESSAGE"
    payload: LiveAgentMessagePayload


@attrs.frozen(kw_only=True, weakref_slot=False)
class LiveAgentLeft(_Event):
    """The live agent left."""

    TYPE: ClassVar[str] = "EVENT_TYPE_LIVE_AGENT_LEFT"
    payload: ReasonPayload = attrs.field(factory=ReasonPayload)


@attrs.frozen(kw_only=True, weakref_slot=False)
class HandoffAccepted(_Event):
    """The live-agent system accepted the handoff; the user may now be queued."""

    TYPE: ClassVar[str] = "EVENT_TYPE_HANDOFF_ACCEPTED"
    payload: HandoffAcceptedPayload = attrs.field(factory=HandoffAcceptedPayload)


@attrs.frozen(kw_only=True, weakref_slot=False)
class HandoffQueueStatus(_Event):
    """Where the user stands in the live-agent queue (sent while waiting)."""

    TYPE: ClassVar[str] = "EVENT_TYPE_HANDOFF_QUEUE_STATUS"
    payload: QueueStatusPayload = attrs.field(factory=QueueStatusPayload)


@attrs.frozen(kw_only=True, weakref_slot=False)
class ClientHandoffRequired(_Event):
    """The server cannot hand over: the client must (another channel, a phone line)."""

    TYPE: ClassVar[str] = "EVENT_TYPE_CLIENT_HANDOFF_REQUIRED"
    payload: ClientHandoffPayload = attrs.field(factory=ClientHandoffPayload)


@attrs.frozen(kw_only=True, weakref_slot=False)
class HandoffFailed(_Event):
    """The handoff was rejected or could not be completed."""

    TYPE: ClassVar[str] = "EVENT_TYPE_HANDOFF_FAILED"
    payload: ReasonPayload = attrs.field(factory=ReasonPayload)


@attrs.frozen(kw_only=True, weakref_slot=False)
class HandoffTimeout(_Event):
    """The user waited in the queue too long."""

    TYPE: ClassVar[str] = "EVENT_TYPE_HANDOFF_TIMEOUT"
    payload: ReasonPayload = attrs.field(factory=ReasonPayload)


@attrs.frozen(kw_only=True, weakref_slot=False)
class SessionStart(_Event):
    """The session's capabilities; the first event of its history."""

    TYPE: ClassVar[str] = "EVENT_TYPE_SESSION_START"
    payload: CapabilitiesPayload = attrs.field(factory=CapabilitiesPayload)


@attrs.frozen(kw_only=True, weakref_slot=False)
class SessionEnd(_Event):
    """The session is over: nothing follows."""

    TYPE: ClassVar[str] = "EVENT_TYPE_SESSION_END"
    payload: SessionEndPayload = attrs.field(factory=SessionEndPayload)


@attrs.frozen(kw_only=True, weakref_slot=False)
class SystemMessage(_Event):
    """A system notice, most often an error caused by a client event."""

    TYPE: ClassVar[str] = "EVENT_TYPE_SYSTEM_MESSAGE"
    payload: SystemMessagePayload


@attrs.frozen(kw_only=True, weakref_slot=False)
class LanguageChanged(_Event):
    """The conversation switched language (journaled: it may come again)."""

    TYPE: ClassVar[str] = "EVENT_TYPE_LANGUAGE_CHANGED"
    payload: LanguagePayload


@attrs.frozen(kw_only=True, weakref_slot=False)
class PolyAgentJoinRequested(_Event):
    """Echo of our ``REQUEST_POLY_AGENT_JOIN``."""

    TYPE: ClassVar[str] = "EVENT_TYPE_REQUEST_POLY_AGENT_JOIN"
    payload: EmptyPayload = attrs.field(factory=EmptyPayload)


@attrs.frozen(kw_only=True, weakref_slot=False)
class UserMessageEcho(_Event):
    """Echo of a ``USER_MESSAGE`` (ours, from another socket, or replayed): a delivery receipt."""

    TYPE: ClassVar[str] = "EVENT_TYPE_USER_MESSAGE"
    payload: UserMessagePayload = attrs.field(factory=UserMessagePayload)


@attrs.frozen(kw_only=True, weakref_slot=False)
class UserEndSessionEcho(_Event):
    """Echo of our ``USER_END_SESSION`` (``SESSION_END`` follows)."""

    TYPE: ClassVar[str] = "EVENT_TYPE_USER_END_SESSION"
    payload: EmptyPayload = attrs.field(factory=EmptyPayload)


@attrs.frozen(kw_only=True, weakref_slot=False)
class HeartbeatEcho(_Event):
    """Echo of a heartbeat (usually transient: no id, no sequence)."""

    TYPE: ClassVar[str] = "EVENT_TYPE_HEARTBEAT"
    payload: EmptyPayload = attrs.field(factory=EmptyPayload)


@attrs.frozen(kw_only=True, weakref_slot=False)
class EventBatch(_Event):
    """A replay frame. ``events`` are the good inner events; ``rejected`` the bad parts.

    One malformed element does not cost the others: it is reported in ``rejected`` as a
    :class:`~polyai_messaging.core.RemoteProtocolError` whose path starts ``payload.events[i]``.
    So are the parts the inner events dropped (``payload.events[i].payload.attachments[j]``),
    which are reported by the batch alone.
    """

    TYPE: ClassVar[str] = "EVENT_TYPE_EVENT_BATCH"
    events: tuple[ServerEvent, ...] = ()


@attrs.frozen(kw_only=True, weakref_slot=False)
class UnknownEvent(_Event):
    """A ``type`` this library does not know: kept, never fatal (cf. h2 UnknownFrameReceived)."""

    type: str
    payload: Mapping[str, Any] = attrs.field(factory=dict)


ServerEvent = (
    PolyAgentJoined
    | PolyAgentThinking
    | PolyAgentMessage
    | PolyAgentMessageChunk
    | PolyAgentLeft
    | PolyAgentTriggeredHandoff
    | LiveAgentJoined
    | LiveAgentTyping
    | LiveAgentMessage
    | LiveAgentLeft
    | HandoffAccepted
    | HandoffQueueStatus
    | ClientHandoffRequired
    | HandoffFailed
    | HandoffTimeout
    | SessionStart
    | SessionEnd
    | SystemMessage
    | LanguageChanged
    | PolyAgentJoinRequested
    | UserMessageEcho
    | UserEndSessionEcho
    | HeartbeatEcho
    | EventBatch
    | UnknownEvent
)
"""Every decoded inbound event."""

KNOWN_TYPES: Mapping[str, type[Any]] = {
    cls.TYPE: cls
    for cls in (
        PolyAgentJoined,
        PolyAgentThinking,
        PolyAgentMessage,
        PolyAgentMessageChunk,
        PolyAgentLeft,
        PolyAgentTriggeredHandoff,
        LiveAgentJoined,
        LiveAgentTyping,
        LiveAgentMessage,
        LiveAgentLeft,
        HandoffAccepted,
        HandoffQueueStatus,
        ClientHandoffRequired,
        HandoffFailed,
        HandoffTimeout,
        SessionStart,
        SessionEnd,
        SystemMessage,
        LanguageChanged,
        EventBatch,
        PolyAgentJoinRequested,
        UserMessageEcho,
        UserEndSessionEcho,
        HeartbeatEcho,
    )
}
"""The 24 receivable ``type`` values (20 server types and 4 echoes), mapped to their classes."""

ECHO_TYPES = frozenset(
    {PolyAgentJoinRequested.TYPE, UserMessageEcho.TYPE, UserEndSessionEcho.TYPE, HeartbeatEcho.TYPE}
)
"""Types that are echoes of client events (:ref:`protocol-delivery`)."""
