"""Inbound server events: every ``type`` a client can receive, as attrs classes.

Each event carries the envelope (``id``, ``sequence``, ``timestamp``,
``metadata``) and a typed ``payload`` shaped exactly like the wire, so that a decoding error
names a wire path such as ``payload.chunk_index``. Optional fields the vendor's SDKs read
(protocol Appendix B) are accepted too; unknown fields are ignored. Unknown ``type`` values
become :class:`UnknownEvent`, which keeps the raw type and payload.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import attrs

from ._decoders import SHARED_BELOW
from ._errors import RemoteProtocolError

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

TYPING_STARTED = "TYPING_STATE_STARTED"
"""The wire value of a typing ``state`` (the user's or the live agent's): started typing."""
TYPING_STOPPED = "TYPING_STATE_STOPPED"
"""The wire value of a typing ``state`` (the user's or the live agent's): stopped typing."""


# --- shared shapes ---------------------------------------------------------------------------


@attrs.frozen(weakref_slot=False)
class Attachment:
    """A rich content card. Every field is optional on the wire."""

    title: str | None = None
    preview_image_url: str | None = None
    content_url: str | None = None
    content_type: str | None = None
    """``ATTACHMENT_CONTENT_TYPE_URL`` or ``ATTACHMENT_CONTENT_TYPE_IMAGE``; others are kept."""
    call_to_action_text: str | None = None


@attrs.frozen(weakref_slot=False)
class Suggestion:
    """A quick reply; picking it sends ``message_text`` as a user message."""

    message_text: str


@attrs.frozen(weakref_slot=False)
class ChatCallAction:
    """A phone call an agent message offers (SDK extension): a titled number to dial."""

    title: str | None = None
    contact_number: str | None = None


@attrs.frozen(weakref_slot=False)
class Metadata:
    """Envelope ``metadata``; ``custom`` holds the client's string pairs echoed back."""

    custom: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def client_event_id(self) -> str | None:
        """The correlation key: ``client_event_id``, else the SDKs' ``local_id``."""
        return self.custom.get("client_event_id") or self.custom.get("local_id")


@attrs.frozen(weakref_slot=False)
class Capabilities:
    """``SESSION_START.capabilities``. Absent values stay ``None``; unknown keys are kept."""

    streaming: bool | None = None
    max_message_size_bytes: int | None = None
    max_reconnect_attempts: int | None = None
    heartbeat_interval_seconds: int | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)
    """Keys the protocol does not document, with their raw JSON values."""


# --- payloads ---------------------------------------------------------------------------------


@attrs.frozen(weakref_slot=False)
class EmptyPayload:
    """Payload of events documented as ``{}``; extra keys are ignored."""


@attrs.frozen(weakref_slot=False)
class ReasonPayload:
    """Payload of LEFT / FAILED / TIMEOUT events: empty, with the SDKs' optional ``reason``."""

    reason: str | None = None


@attrs.frozen(weakref_slot=False)
class PolyAgentJoinedPayload:
    """Payload of ``POLY_AGENT_JOINED``: the agent's display name and avatar."""

    agent_name: str | None = None
    agent_avatar_url: str | None = None
    avatar_url: str | None = None
    """Fallback avatar key some deployments use (the SDKs read it)."""

    @property
    def avatar(self) -> str | None:
        return self.agent_avatar_url or self.avatar_url


@attrs.frozen(weakref_slot=False)
class AgentMessagePayload:
    """A complete PolyAI agent message (``POLY_AGENT_MESSAGE``)."""

    message_id: str
    text: str = ""
    attachments: tuple[Attachment, ...] = ()
    response_suggestions: tuple[Suggestion, ...] = ()
    end_conversation: bool = False
    """SDK extension: the agent asks the client to treat the conversation as over."""
    agent_name: str | None = None
    """SDK extension: the sending agent's display name, for this message."""
    avatar_url: str | None = None
    """SDK extension: the sending agent's avatar, for this message."""
    chat_call_actions: tuple[ChatCallAction, ...] = ()
    """SDK extension: calls offered with the message; it may carry nothing else."""


@attrs.frozen(weakref_slot=False)
class ChunkPayload:
    """One streamed fragment (``POLY_AGENT_MESSAGE_CHUNK``); ``chunk_index`` is 1-based."""

    message_id: str
    chunk_index: int
    # A fragment is a word or a few: short ones recur, and a conversation holds each chunk.
    text: str = attrs.field(default="", metadata={SHARED_BELOW: 17})
    attachments: tuple[Attachment, ...] = ()
    response_suggestions: tuple[Suggestion, ...] = ()
    is_complete: bool = False


@attrs.frozen(weakref_slot=False)
class LiveAgent:
    """A human agent's identity."""

    id: str | None = None
    name: str | None = None
    avatar_url: str | None = None


@attrs.frozen(weakref_slot=False)
class LiveAgentJoinedPayload:
    """Nested ``agent`` as documented, or the flat form the vendor SDKs also accept
    (:ref:`protocol-events`)."""

    agent: LiveAgent | None = None
    agent_id: str | None = None
    agent_name: str | None = None
    avatar_url: str | None = None

    @property
    def live_agent(self) -> LiveAgent:
        nested = self.agent or LiveAgent()
        return LiveAgent(
            id=nested.id or self.agent_id,
            name=nested.name or self.agent_name,
            avatar_url=nested.avatar_url or self.avatar_url,
        )


@attrs.frozen(weakref_slot=False)
class LiveAgentTypingPayload:
    """Payload of ``LIVE_AGENT_TYPING``."""

    state: str = TYPING_STARTED
    """A missing state means STARTED, as the SDKs do."""
    agent_id: str | None = None


@attrs.frozen(weakref_slot=False)
class LiveAgentMessagePayload:
    """A live agent's message: like an agent message, plus who sent it (flat fields)."""

    message_id: str
    text: str = ""
    agent_id: str | None = None
    agent_name: str | None = None
    avatar_url: str | None = None
    attachments: tuple[Attachment, ...] = ()
    response_suggestions: tuple[Suggestion, ...] = ()


@attrs.frozen(weakref_slot=False)
class HandoffAcceptedPayload:
    """Payload of ``HANDOFF_ACCEPTED``: documented empty; ``queue_name`` is an SDK extra."""

    queue_name: str | None = None


@attrs.frozen(weakref_slot=False)
class QueueStatusPayload:
    """All fields optional, as documented; ``position`` is an alias the vendor SDKs read."""

    queue_name: str | None = None
    position_in_queue: int | None = None
    position: int | None = None
    estimated_wait_seconds: int | None = None
    display_message: str | None = None

    @property
    def queue_position(self) -> int | None:
        return self.position_in_queue if self.position_in_queue is not None else self.position


@attrs.frozen(weakref_slot=False)
class ClientHandoffPayload:
    """Payload of ``CLIENT_HANDOFF_REQUIRED``: why, and where to send the user."""

    reason: str | None = None
    """``COMPLEX_QUERY``, ``AGENT_DECISION`` or ``POLICY`` (no prefix, unlike the other enums);
    unknown values are kept."""
    queue_name: str | None = None
    route: str | None = None


@attrs.frozen(weakref_slot=False)
class CapabilitiesPayload:
    """Payload of ``SESSION_START``: the session's capabilities."""

    capabilities: Capabilities = attrs.field(factory=Capabilities)


@attrs.frozen(weakref_slot=False)
class SessionEndPayload:
    """Payload of ``SESSION_END``."""

    reason: str | None = None
    """``REASON_USER_END``, ``REASON_USER_ABANDONED``, ``REASON_NATURAL_END`` or unknown."""


@attrs.frozen(weakref_slot=False)
class SystemMessagePayload:
    """Payload of ``SYSTEM_MESSAGE``: a notice, most often an error, with its level."""

    message: str
    level: str = "SYSTEM_MESSAGE_LEVEL_ERROR"
    """A missing level is read as ERROR (:ref:`protocol-system-messages`)."""

    @property
    def is_error(self) -> bool:
        """Error level (``SYSTEM_MESSAGE_LEVEL_ERROR`` in any case), not info or warning."""
        return self.level.upper() == "SYSTEM_MESSAGE_LEVEL_ERROR"


@attrs.frozen(weakref_slot=False)
class LanguagePayload:
    """Payload of ``LANGUAGE_CHANGED``: the new language as a BCP-47 tag."""

    language_code: str


@attrs.frozen(weakref_slot=False)
class UserMessagePayload:
    """The echo of our own user message: original text plus the server's ``message_id``."""

    text: str = ""
    message_id: str | None = None


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
