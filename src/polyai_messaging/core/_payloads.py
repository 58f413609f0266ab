"""The shapes inside server events: payloads, and the objects they share.

Each payload is shaped exactly like the wire (see :mod:`._events`, which puts them in events),
so that a decoding error names a wire path such as ``payload.chunk_index``. Optional fields the
vendor's SDKs read (protocol Appendix B) are accepted too; unknown fields are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ._decoders import SHARED_BELOW

# Payload classes are frozen and slotted, as events are (see :mod:`._events`).

__all__ = [
    "TYPING_STARTED",
    "TYPING_STOPPED",
    "AgentMessagePayload",
    "Attachment",
    "Capabilities",
    "CapabilitiesPayload",
    "ChatCallAction",
    "ChunkPayload",
    "ClientHandoffPayload",
    "EmptyPayload",
    "HandoffAcceptedPayload",
    "LanguagePayload",
    "LiveAgent",
    "LiveAgentJoinedPayload",
    "LiveAgentMessagePayload",
    "LiveAgentTypingPayload",
    "Metadata",
    "PolyAgentJoinedPayload",
    "QueueStatusPayload",
    "ReasonPayload",
    "SessionEndPayload",
    "Suggestion",
    "SystemMessagePayload",
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
