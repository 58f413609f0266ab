"""The scripted agent: deterministic replies and trigger words.

One agent task runs per session and handles that session's joins and user messages strictly in
arrival order, so every script's events stay contiguous. The echo of each client event is sent
earlier, as soon as the frame arrives (see :mod:`._websocket`), so that receipts are immediate even
while a long script is still running.

Trigger words are matched case-insensitively as substrings of the user's text; see
:data:`TRIGGERS`. Anything else gets a reply that quotes the text back.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import anyio

from ._sessions import AgentJob, AgentPhase, Session
from ._wire import SYSTEM_LEVEL_ERROR, EventType

__all__ = ["ERROR_TRIGGERS", "TRIGGERS", "run_agent"]

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
_AGENT_ERRORS = frozenset({"high-load", "unable-to-start", "trouble-responding", "stream-error"})
# After these the conversation is gone, so REQUEST_POLY_AGENT_JOIN works again, as the
# catalogue advises (docs: protocol-system-messages).
_CONVERSATION_LOST = frozenset(
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

_ERROR_PATTERN = re.compile(r"error:([\w-]+)")
_WORD_BOUNDARY = re.compile(r"(?<=\s)(?=\S)")


async def run_agent(session: Session) -> None:
    """Handle the session's agent jobs one by one until the session ends."""
    with session.agent_scope:
        async with session.agent_jobs:
            async for job in session.agent_jobs:
                if job.type is EventType.REQUEST_POLY_AGENT_JOIN:
                    await _join(session)
                else:
                    await _user_message(session, job)


async def _pause(session: Session) -> None:
    await anyio.sleep(session.config.reply_delay_seconds)


async def _join(session: Session) -> None:
    if session.phase in (AgentPhase.POLY_AGENT, AgentPhase.LIVE_AGENT):
        return  # a second join only gets its echo (docs: protocol-emulator)
    session.phase = AgentPhase.POLY_AGENT
    session.publish(
        EventType.POLY_AGENT_JOINED,
        {"agent_name": POLY_AGENT_NAME, "agent_avatar_url": POLY_AGENT_AVATAR_URL},
    )
    await _think(session)
    await _reply(session, GREETING, GREETING_SUGGESTIONS, [dict(GREETING_ATTACHMENT)])


async def _user_message(session: Session, job: AgentJob) -> None:
    text = job.text.lower()
    if session.phase not in (AgentPhase.POLY_AGENT, AgentPhase.LIVE_AGENT):
        _system_error(session, CONVERSATION_NOT_FOUND, job.metadata)  # docs: protocol-emulator
        return
    error = _ERROR_PATTERN.search(text)
    if error is not None:
        await _error_trigger(session, error.group(1), job)
    elif session.phase is AgentPhase.LIVE_AGENT:
        await _live_agent_turn(session, job.text)
    elif "handoff fail" in text:
        await _handoff_until_accepted(session)
        session.publish(EventType.HANDOFF_FAILED, {})
    elif "handoff timeout" in text:
        await _handoff_until_accepted(session)
        session.publish(EventType.HANDOFF_QUEUE_STATUS, _queue_status(1, 60))
        await _pause(session)
        session.publish(EventType.HANDOFF_TIMEOUT, {})
    elif "human" in text:
        await _server_handoff(session)
    elif "callback" in text:
        await _client_handoff(session)
    elif "goodbye" in text:
        await _think(session)
        await _reply(session, "Thanks for chatting with us. Goodbye!", ())
        session.end("REASON_NATURAL_END")
    elif "français" in text or "french" in text:
        session.publish(EventType.LANGUAGE_CHANGED, {"language_code": "fr-FR"})
        await _think(session)
        await _reply(
            session,
            "Bien sûr ! Je continue en français. Comment puis-je vous aider ?",
            ("Oui, merci", "Parler à un humain"),
        )
    else:
        await _think(session)
        await _reply(session, _echo_reply(job.text), ("Tell me more", "Talk to a human"))


def _echo_reply(text: str) -> str:
    words = text.split()
    summary = " ".join(words)
    if len(summary) > 80:
        summary = summary[:79] + "…"
    plural = "" if len(words) == 1 else "s"
    return f'You said: "{summary}" ({len(words)} word{plural}). What else can I do for you?'


async def _think(session: Session) -> None:
    session.publish(EventType.POLY_AGENT_THINKING, {})
    await _pause(session)


def _system_error(session: Session, message: str, metadata: dict[str, Any] | None) -> None:
    # Agent, session and handoff errors are journaled at ERROR level (docs: protocol-emulator).
    session.publish(
        EventType.SYSTEM_MESSAGE,
        {"level": SYSTEM_LEVEL_ERROR, "message": message},
        metadata=metadata,
    )


async def _error_trigger(session: Session, name: str, job: AgentJob) -> None:
    message = ERROR_TRIGGERS.get(name)
    if message is None:
        await _think(session)
        known = ", ".join(f"error:{known}" for known in ERROR_TRIGGERS)
        await _reply(session, f"I don't know the error {name!r}. Try one of: {known}.", ())
        return
    if name in _AGENT_ERRORS:
        await _think(session)
    if name == "stream-error" and session.streaming:
        # A stream that breaks midway: some chunks, no final chunk, then the error
        # (docs: protocol-streaming).
        message_id = _message_id()
        for index, piece in enumerate(_pieces("I was about to answer that when"), start=1):
            session.publish(EventType.POLY_AGENT_MESSAGE_CHUNK, _chunk(message_id, piece, index))
            await anyio.sleep(session.config.chunk_delay_seconds)
    _system_error(session, message, job.metadata)
    if name in _CONVERSATION_LOST:
        session.phase = AgentPhase.NOT_JOINED


def _message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def _pieces(text: str, words_per_chunk: int = 3) -> list[str]:
    """``text`` cut after every few words; the pieces concatenate back to ``text`` exactly."""
    words = _WORD_BOUNDARY.split(text) if text else []
    return [
        "".join(words[start : start + words_per_chunk])
        for start in range(0, len(words), words_per_chunk)
    ]


def _chunk(
    message_id: str,
    text: str,
    index: int,
    *,
    attachments: Sequence[dict[str, Any]] = (),
    suggestions: Sequence[str] = (),
    complete: bool = False,
) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "text": text,
        "attachments": list(attachments),
        "response_suggestions": [{"message_text": s} for s in suggestions],
        "chunk_index": index,
        "is_complete": complete,
    }


async def _reply(
    session: Session,
    text: str,
    suggestions: Sequence[str],
    attachments: Sequence[dict[str, Any]] = (),
) -> None:
    """One PolyAI reply: a message, or in streaming sessions a chunk series
    (:ref:`protocol-streaming`)."""
    message_id = _message_id()
    if not session.streaming:
        session.publish(
            EventType.POLY_AGENT_MESSAGE,
            {
                "message_id": message_id,
                "text": text,
                "attachments": list(attachments),
                "response_suggestions": [{"message_text": s} for s in suggestions],
            },
        )
        return
    # Attachments ride on the first chunk; the suggestions on a final chunk with empty text,
    # which the protocol allows and clients must handle (docs: protocol-streaming).
    for index, piece in enumerate(_pieces(text), start=1):
        extra = attachments if index == 1 else ()
        session.publish(
            EventType.POLY_AGENT_MESSAGE_CHUNK, _chunk(message_id, piece, index, attachments=extra)
        )
        await anyio.sleep(session.config.chunk_delay_seconds)
    final = len(_pieces(text)) + 1
    session.publish(
        EventType.POLY_AGENT_MESSAGE_CHUNK,
        _chunk(message_id, "", final, suggestions=suggestions, complete=True),
    )


def _queue_status(position: int, wait: int) -> dict[str, Any]:
    return {"queue_name": QUEUE_NAME, "position_in_queue": position, "estimated_wait_seconds": wait}


async def _handoff_until_accepted(session: Session) -> None:
    session.publish(EventType.POLY_AGENT_TRIGGERED_HANDOFF, {})
    await _pause(session)
    session.publish(EventType.POLY_AGENT_LEFT, {})
    session.phase = AgentPhase.NO_AGENT
    await _pause(session)
    session.publish(EventType.HANDOFF_ACCEPTED, {})
    await _pause(session)


async def _server_handoff(session: Session) -> None:
    await _handoff_until_accepted(session)
    for position, wait in ((2, 120), (1, 60)):
        session.publish(EventType.HANDOFF_QUEUE_STATUS, _queue_status(position, wait))
        await _pause(session)
    session.publish(
        EventType.LIVE_AGENT_JOINED,
        {
            "agent": {
                "id": LIVE_AGENT_ID,
                "name": LIVE_AGENT_NAME,
                "avatar_url": LIVE_AGENT_AVATAR_URL,
            }
        },
    )
    session.phase = AgentPhase.LIVE_AGENT
    await _live_agent_says(
        session, "Hi, I'm Sarah from the support team. I've read your conversation. How can I help?"
    )


async def _client_handoff(session: Session) -> None:
    session.publish(EventType.POLY_AGENT_TRIGGERED_HANDOFF, {})
    await _pause(session)
    session.publish(
        EventType.CLIENT_HANDOFF_REQUIRED,
        {"reason": "COMPLEX_QUERY", "queue_name": CLIENT_QUEUE_NAME},
    )
    await _pause(session)
    session.publish(EventType.POLY_AGENT_LEFT, {})
    session.phase = AgentPhase.NO_AGENT


async def _live_agent_turn(session: Session, text: str) -> None:
    if "bye" in text.lower():
        session.publish(EventType.LIVE_AGENT_LEFT, {})
        session.end("REASON_NATURAL_END")
        return
    summary = " ".join(text.split())[:80]
    await _live_agent_says(session, f'Sarah here. I read: "{summary}". Let me check that for you.')


async def _live_agent_says(session: Session, text: str) -> None:
    # Typing is transient (sequence null, not journaled). STOPPED follows the message so that
    # typing STARTED is immediately followed by the message it announced.
    typing = {"state": "TYPING_STATE_STARTED", "agent_id": LIVE_AGENT_ID}
    session.publish(EventType.LIVE_AGENT_TYPING, typing, transient=True)
    await _pause(session)
    session.publish(
        EventType.LIVE_AGENT_MESSAGE,
        {
            "message_id": _message_id(),
            "agent_id": LIVE_AGENT_ID,
            "text": text,
            "attachments": [],
            "response_suggestions": [],
        },
    )
    stopped = {"state": "TYPING_STATE_STOPPED", "agent_id": LIVE_AGENT_ID}
    session.publish(EventType.LIVE_AGENT_TYPING, stopped, transient=True)
