"""The scripted agent: deterministic replies and trigger words.

One agent task runs per session and handles that session's joins and user messages strictly in
arrival order, so every script's events stay contiguous. The echo of each client event is sent
earlier, as soon as the frame arrives (see :mod:`._websocket`), so that receipts are immediate even
while a long script is still running.

Trigger words are matched case-insensitively as substrings of the user's text; see
:data:`TRIGGERS`. Anything else gets a reply that quotes the text back.

The catalogue (what it says, the trigger words) is ``_agent_catalogue``; how each line goes out
is ``_agent_messages``.
"""

from __future__ import annotations

import re
from typing import Any

import anyio

from ._agent_catalogue import (
    AGENT_ERRORS,
    CLIENT_QUEUE_NAME,
    CONVERSATION_LOST,
    CONVERSATION_NOT_FOUND,
    ERROR_TRIGGERS,
    GREETING,
    GREETING_ATTACHMENT,
    GREETING_SUGGESTIONS,
    LIVE_AGENT_AVATAR_URL,
    LIVE_AGENT_ID,
    LIVE_AGENT_NAME,
    POLY_AGENT_AVATAR_URL,
    POLY_AGENT_NAME,
    QUEUE_NAME,
)
from ._agent_messages import (
    chunk,
    live_agent_says,
    new_message_id,
    pause,
    pieces,
    reply,
    system_error,
    think,
)
from ._sessions import AgentJob, AgentPhase, Session
from ._wire import EventType

__all__ = ["run_agent"]

_ERROR_PATTERN = re.compile(r"error:([\w-]+)")


async def run_agent(session: Session) -> None:
    """Handle the session's agent jobs one by one until the session ends."""
    with session.agent_scope:
        async with session.agent_jobs:
            async for job in session.agent_jobs:
                if job.type is EventType.REQUEST_POLY_AGENT_JOIN:
                    await _join(session)
                else:
                    await _user_message(session, job)


async def _join(session: Session) -> None:
    if session.phase in (AgentPhase.POLY_AGENT, AgentPhase.LIVE_AGENT):
        return  # a second join only gets its echo (docs: protocol-emulator)
    session.phase = AgentPhase.POLY_AGENT
    session.publish(
        EventType.POLY_AGENT_JOINED,
        {"agent_name": POLY_AGENT_NAME, "agent_avatar_url": POLY_AGENT_AVATAR_URL},
    )
    await think(session)
    await reply(session, GREETING, GREETING_SUGGESTIONS, [dict(GREETING_ATTACHMENT)])


async def _user_message(session: Session, job: AgentJob) -> None:
    text = job.text.lower()
    if session.phase not in (AgentPhase.POLY_AGENT, AgentPhase.LIVE_AGENT):
        system_error(session, CONVERSATION_NOT_FOUND, job.metadata)  # docs: protocol-emulator
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
        await pause(session)
        session.publish(EventType.HANDOFF_TIMEOUT, {})
    elif "human" in text:
        await _server_handoff(session)
    elif "callback" in text:
        await _client_handoff(session)
    elif "goodbye" in text:
        await think(session)
        await reply(session, "Thanks for chatting with us. Goodbye!", ())
        session.end("REASON_NATURAL_END")
    elif "français" in text or "french" in text:
        session.publish(EventType.LANGUAGE_CHANGED, {"language_code": "fr-FR"})
        await think(session)
        await reply(
            session,
            "Bien sûr ! Je continue en français. Comment puis-je vous aider ?",
            ("Oui, merci", "Parler à un humain"),
        )
    else:
        await think(session)
        await reply(session, _echoreply(job.text), ("Tell me more", "Talk to a human"))


def _echoreply(text: str) -> str:
    words = text.split()
    summary = " ".join(words)
    if len(summary) > 80:
        summary = summary[:79] + "…"
    plural = "" if len(words) == 1 else "s"
    return f'You said: "{summary}" ({len(words)} word{plural}). What else can I do for you?'


async def _error_trigger(session: Session, name: str, job: AgentJob) -> None:
    message = ERROR_TRIGGERS.get(name)
    if message is None:
        await think(session)
        known = ", ".join(f"error:{known}" for known in ERROR_TRIGGERS)
        await reply(session, f"I don't know the error {name!r}. Try one of: {known}.", ())
        return
    if name in AGENT_ERRORS:
        await think(session)
    if name == "stream-error" and session.streaming:
        # A stream that breaks midway: some chunks, no final chunk, then the error
        # (docs: protocol-streaming).
        message_id = new_message_id()
        for index, piece in enumerate(pieces("I was about to answer that when"), start=1):
            session.publish(EventType.POLY_AGENT_MESSAGE_CHUNK, chunk(message_id, piece, index))
            await anyio.sleep(session.config.chunk_delay_seconds)
    system_error(session, message, job.metadata)
    if name in CONVERSATION_LOST:
        session.phase = AgentPhase.NOT_JOINED


def _queue_status(position: int, wait: int) -> dict[str, Any]:
    return {"queue_name": QUEUE_NAME, "position_in_queue": position, "estimated_wait_seconds": wait}


async def _handoff_until_accepted(session: Session) -> None:
    session.publish(EventType.POLY_AGENT_TRIGGERED_HANDOFF, {})
    await pause(session)
    session.publish(EventType.POLY_AGENT_LEFT, {})
    session.phase = AgentPhase.NO_AGENT
    await pause(session)
    session.publish(EventType.HANDOFF_ACCEPTED, {})
    await pause(session)


async def _server_handoff(session: Session) -> None:
    await _handoff_until_accepted(session)
    for position, wait in ((2, 120), (1, 60)):
        session.publish(EventType.HANDOFF_QUEUE_STATUS, _queue_status(position, wait))
        await pause(session)
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
    await live_agent_says(
        session, "Hi, I'm Sarah from the support team. I've read your conversation. How can I help?"
    )


async def _client_handoff(session: Session) -> None:
    session.publish(EventType.POLY_AGENT_TRIGGERED_HANDOFF, {})
    await pause(session)
    session.publish(
        EventType.CLIENT_HANDOFF_REQUIRED,
        {"reason": "COMPLEX_QUERY", "queue_name": CLIENT_QUEUE_NAME},
    )
    await pause(session)
    session.publish(EventType.POLY_AGENT_LEFT, {})
    session.phase = AgentPhase.NO_AGENT


async def _live_agent_turn(session: Session, text: str) -> None:
    if "bye" in text.lower():
        session.publish(EventType.LIVE_AGENT_LEFT, {})
        session.end("REASON_NATURAL_END")
        return
    summary = " ".join(text.split())[:80]
    await live_agent_says(session, f'Sarah here. I read: "{summary}". Let me check that for you.')
