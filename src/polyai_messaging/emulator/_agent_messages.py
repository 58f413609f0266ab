"""How the agents' lines go out: a PolyAI reply whole or streamed in chunks, a live agent's line
between typing notices, an error notice, and the pauses a person would make between them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

import anyio

from ._agent_catalogue import LIVE_AGENT_ID
from ._sessions import Session
from ._wire import SYSTEM_LEVEL_ERROR, EventType

__all__ = [
    "chunk",
    "live_agent_says",
    "new_message_id",
    "pause",
    "pieces",
    "reply",
    "system_error",
    "think",
]

_WORD_BOUNDARY = re.compile(r"(?<=\s)(?=\S)")


async def pause(session: Session) -> None:
    """Wait as long as the agent pauses between two of its events."""
    await anyio.sleep(session.config.reply_delay_seconds)


async def think(session: Session) -> None:
    """``POLY_AGENT_THINKING``, then a pause."""
    session.publish(EventType.POLY_AGENT_THINKING, {})
    await pause(session)


def system_error(session: Session, message: str, metadata: dict[str, Any] | None) -> None:
    """A ``SYSTEM_MESSAGE`` at error level carrying ``message``."""
    # Agent, session and handoff errors are journaled at ERROR level (docs: protocol-emulator).
    session.publish(
        EventType.SYSTEM_MESSAGE,
        {"level": SYSTEM_LEVEL_ERROR, "message": message},
        metadata=metadata,
    )


def new_message_id() -> str:
    """A fresh id for one message (or one chunk series)."""
    return f"msg_{uuid.uuid4().hex}"


def pieces(text: str, words_per_chunk: int = 3) -> list[str]:
    """``text`` cut after every few words; the pieces concatenate back to ``text`` exactly."""
    words = _WORD_BOUNDARY.split(text) if text else []
    return [
        "".join(words[start : start + words_per_chunk])
        for start in range(0, len(words), words_per_chunk)
    ]


def chunk(
    message_id: str,
    text: str,
    index: int,
    *,
    attachments: Sequence[dict[str, Any]] = (),
    suggestions: Sequence[str] = (),
    complete: bool = False,
) -> dict[str, Any]:
    """The payload of one ``POLY_AGENT_MESSAGE_CHUNK``."""
    return {
        "message_id": message_id,
        "text": text,
        "attachments": list(attachments),
        "response_suggestions": [{"message_text": s} for s in suggestions],
        "chunk_index": index,
        "is_complete": complete,
    }


async def reply(
    session: Session,
    text: str,
    suggestions: Sequence[str],
    attachments: Sequence[dict[str, Any]] = (),
) -> None:
    """One PolyAI reply: a message, or in streaming sessions a chunk series
    (:ref:`protocol-streaming`)."""
    message_id = new_message_id()
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
    for index, piece in enumerate(pieces(text), start=1):
        extra = attachments if index == 1 else ()
        session.publish(
            EventType.POLY_AGENT_MESSAGE_CHUNK, chunk(message_id, piece, index, attachments=extra)
        )
        await anyio.sleep(session.config.chunk_delay_seconds)
    final = len(pieces(text)) + 1
    session.publish(
        EventType.POLY_AGENT_MESSAGE_CHUNK,
        chunk(message_id, "", final, suggestions=suggestions, complete=True),
    )


async def live_agent_says(session: Session, text: str) -> None:
    # Typing is transient (sequence null, not journaled). STOPPED follows the message so that
    # typing STARTED is immediately followed by the message it announced.
    typing = {"state": "TYPING_STATE_STARTED", "agent_id": LIVE_AGENT_ID}
    session.publish(EventType.LIVE_AGENT_TYPING, typing, transient=True)
    await pause(session)
    session.publish(
        EventType.LIVE_AGENT_MESSAGE,
        {
            "message_id": new_message_id(),
            "agent_id": LIVE_AGENT_ID,
            "text": text,
            "attachments": [],
            "response_suggestions": [],
        },
    )
    stopped = {"state": "TYPING_STATE_STOPPED", "agent_id": LIVE_AGENT_ID}
    session.publish(EventType.LIVE_AGENT_TYPING, stopped, transient=True)
