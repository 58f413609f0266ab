"""What the scripted agent says, and the trigger words that make it do something else.

:data:`TRIGGERS` lists every trigger word for people (the CLI prints it); :data:`ERROR_TRIGGERS`
maps each ``error:<name>`` to the exact catalogue string it produces.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "AGENT_ERRORS",
    "CLIENT_QUEUE_NAME",
    "CONVERSATION_LOST",
    "CONVERSATION_NOT_FOUND",
    "ERROR_TRIGGERS",
    "GREETING",
    "GREETING_ATTACHMENT",
    "GREETING_SUGGESTIONS",
    "LIVE_AGENT_AVATAR_URL",
    "LIVE_AGENT_ID",
    "LIVE_AGENT_NAME",
    "POLY_AGENT_AVATAR_URL",
    "POLY_AGENT_NAME",
    "QUEUE_NAME",
    "TRIGGERS",
]

POLY_AGENT_NAME = "Ada"
POLY_AGENT_AVATAR_URL = "https://example.com/avatars/ada.png"
LIVE_AGENT_ID = "agent_42"
LIVE_AGENT_NAME = "Sarah"
LIVE_AGENT_AVATAR_URL = "https://example.com/avatars/sarah.png"
QUEUE_NAME = "General Support"
CLIENT_QUEUE_NAME = "Support Queue"

GREETING = "Hi, I'm Ada, the PolyAI demo agent. How can I help you today?"
GREETING_SUGGESTIONS = (
    "I have a question about my order",
    "I need to make a booking",
    "Talk to a human",
)
GREETING_ATTACHMENT: Mapping[str, str] = MappingProxyType(
    {
        "title": "Our locations",
        "preview_image_url": "https://example.com/thumb.png",
        "content_url": "https://example.com/locations",
        "content_type": "ATTACHMENT_CONTENT_TYPE_URL",
        "call_to_action_text": "View locations",
    }
)
CONVERSATION_NOT_FOUND = "Error: Conversation not found"

ERROR_TRIGGERS: Mapping[str, str] = MappingProxyType(
    {
        "high-load": "Our system is experiencing high load. Please try again in a moment.",
        "unable-to-start": (
            "Sorry, I'm unable to start a conversation right now. Please try again later."
        ),
        "trouble-responding": "Sorry, I'm having trouble responding right now. Please try again.",
        "stream-error": "Sorry, I encountered an error. Please try again.",
        "session-not-found": "Error: Session not found",
        "unable-to-retrieve": "Error: Unable to retrieve session",
        "connector-not-found": "Error: Connector not found",
        "conversation-not-found": CONVERSATION_NOT_FOUND,
        "conversation-id-not-found": "Error: Conversation ID not found in session",
        "handoff-connect": "Sorry, we could not connect you to an agent. Please try again.",
        "forward-failed": "Failed to forward message to live agent",
        "handoff-not-initiated": "Sorry, handoff could not be initiated.",
    }
)
"""``error:<name>`` trigger name -> the exact catalogue string it produces
(:ref:`protocol-system-messages`)."""

# Agent-side errors come after THINKING, like a reply that failed.
AGENT_ERRORS = frozenset({"high-load", "unable-to-start", "trouble-responding", "stream-error"})
# After these the conversation is gone, so REQUEST_POLY_AGENT_JOIN works again, as the
# catalogue advises (docs: protocol-system-messages).
CONVERSATION_LOST = frozenset(
    {"unable-to-start", "conversation-not-found", "conversation-id-not-found"}
)

TRIGGERS: Mapping[str, str] = MappingProxyType(
    {
        "human": (
            "server-managed handoff: TRIGGERED_HANDOFF, POLY_AGENT_LEFT, HANDOFF_ACCEPTED, queue "
            "status (position 2, then 1), LIVE_AGENT_JOINED (Sarah), her greeting"
        ),
        "callback": (
            "client-managed handoff: TRIGGERED_HANDOFF, CLIENT_HANDOFF_REQUIRED (COMPLEX_QUERY), "
            "POLY_AGENT_LEFT"
        ),
        "handoff fail": "handoff that fails: ... HANDOFF_ACCEPTED, HANDOFF_FAILED",
        "handoff timeout": "handoff that times out: ... HANDOFF_QUEUE_STATUS, HANDOFF_TIMEOUT",
        "français": "LANGUAGE_CHANGED (fr-FR), then a reply in French",
        "french": "same as 'français'",
        "goodbye": "a farewell, then SESSION_END (REASON_NATURAL_END) and a close with 1000",
        "bye": "to the live agent: LIVE_AGENT_LEFT, then SESSION_END (REASON_NATURAL_END)",
        **{
            f"error:{name}": f"SYSTEM_MESSAGE error {message!r}"
            for name, message in ERROR_TRIGGERS.items()
        },
    }
)
"""Trigger word -> what it makes the agent do. Anything else gets a reply quoting the text."""
