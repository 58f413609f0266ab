"""The transcript's entries and what they are built from.

:class:`Message` is what an application reads; :class:`MessageRecord` is how the conversation
holds a message while its chunks arrive (see :class:`~polyai_messaging.core.Conversation`);
:class:`Marks` tell the views where the end of the transcript is. :class:`Role`,
:class:`SystemHint` and :class:`Agent` are the vocabulary they share.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from datetime import datetime
from typing import Any, NamedTuple

import attrs
from immutables import Map

from ._events import (
    Attachment,
    ChatCallAction,
    ChunkPayload,
    ServerEvent,
    Suggestion,
)

__all__ = [
    "NO_MARKS",
    "Agent",
    "Marks",
    "Message",
    "MessageRecord",
    "Notice",
    "Role",
    "SystemHint",
    "chunk_of",
    "chunk_rank",
    "hint_for",
    "sequence_of",
    "sequence_or_none",
    "whole_pair",
]


class Role(enum.Enum):
    """Who a transcript entry is from."""

    USER = "user"
    AGENT = "agent"
    LIVE_AGENT = "live_agent"
    SYSTEM = "system"


class SystemHint(enum.Enum):
    """What a catalogue system message asks the client to do (:ref:`protocol-system-messages`)."""

    RETRY_LATER = "retry_later"
    REJOIN = "rejoin"
    START_NEW_SESSION = "start_new_session"
    RESEND = "resend"
    CONFIGURATION = "configuration"
    INVALID_CLIENT_EVENT = "invalid_client_event"
    NONE = "none"


_HINTS: tuple[tuple[str, SystemHint], ...] = (
    ("experiencing high load", SystemHint.RETRY_LATER),
    ("unable to start a conversation", SystemHint.REJOIN),
    ("having trouble responding", SystemHint.RESEND),
    ("encountered an error", SystemHint.RESEND),
    ("session not found", SystemHint.START_NEW_SESSION),
    ("unable to retrieve session", SystemHint.RETRY_LATER),
    ("connector not found", SystemHint.CONFIGURATION),
    ("conversation not found", SystemHint.REJOIN),
    ("conversation id not found", SystemHint.REJOIN),
    ("could not connect you to an agent", SystemHint.RETRY_LATER),
    ("failed to forward message to live agent", SystemHint.RESEND),
    ("handoff could not be initiated", SystemHint.CONFIGURATION),
    ("unknown event type or invalid message format", SystemHint.INVALID_CLIENT_EVENT),
    ("event type not allowed", SystemHint.INVALID_CLIENT_EVENT),
    ("message too large", SystemHint.INVALID_CLIENT_EVENT),
)


def hint_for(message: str) -> SystemHint:
    """Classify a system message text by the catalogue.

    A case-insensitive substring match, as the vendor SDKs do: the server's ``Error:`` prefix
    and any surrounding text are optional. No catalogue text contains another class's needle.
    """
    lowered = message.lower()
    for needle, hint in _HINTS:
        if needle in lowered:
            return hint
    return SystemHint.NONE


@attrs.frozen
class Agent:
    """The PolyAI agent as announced by ``POLY_AGENT_JOINED``."""

    name: str | None
    avatar_url: str | None


@attrs.frozen
class Notice:
    """A transient (unsequenced) system message, kept in arrival order."""

    level: str
    message: str
    hint: SystemHint


class _HeldRecord(NamedTuple):
    """The values a :class:`MessageRecord` holds, ``whole`` and ``chunks`` as held (see there)."""

    key: str
    role: Role
    rank: float
    whole: Any
    chunks: Map[int, Any]
    final_index: int | None
    client_event_id: str | None
    timestamp: datetime | None
    prefix: int


class MessageRecord(_HeldRecord):
    """Everything received about one message, however it arrived (whole, chunked, or both).

    A NamedTuple rather than a frozen attrs class: one is built per message event, and tuples
    are several times cheaper to create. ``rank`` is the lowest sequence of any event that
    carried the message: its place in the transcript.

    ``final_index`` is the ``chunk_index`` of the final chunk, once known. ``prefix`` is how many
    chunks, from chunk 1 on, arrived without a hole: the stream is whole once it reaches
    ``final_index`` (kept so that completeness is O(1), not a pass over the chunks).
    """

    __slots__ = ()

    @property
    def whole(self) -> tuple[float, Any] | None:
        """Rank and consolidated payload (agent/live-agent message, user echo or system
        message); the lowest-ranked copy wins when several events carry the same message.

        Built when read: the record holds the event itself when its sequence is the rank (item 3;
        see :attr:`chunks`)."""
        return whole_pair(self[3])

    @property
    def chunks(self) -> Map[int, tuple[float, ChunkPayload]]:
        """Chunks by ``chunk_index``, each with the rank of the event that carried it.

        Built when read. What the record holds in their place (its item 4) is, for a chunk with
        a sequence, the chunk's event itself, whose sequence is its rank: the conversation's log
        holds that event anyway, where a pair per chunk was 64 bytes more per chunk held.
        """
        return Map(
            {index: (chunk_rank(entry), chunk_of(entry)) for index, entry in self[4].items()}
        )

    @property
    def complete(self) -> bool:
        if self[3] is not None:
            return True
        final = self.final_index
        return final is not None and self.prefix >= final

    def _prefix(self) -> Iterator[ChunkPayload]:
        # Only the contiguous run from chunk 1 is shown: later chunks wait for the hole to fill.
        index = 1
        held = self[4]
        while (entry := held.get(index)) is not None:
            chunk = chunk_of(entry)
            yield chunk
            if chunk.is_complete:
                return
            index += 1

    def view(self, *, interrupted: bool = False) -> Message:
        """The message as a UI shows it."""
        if self[3] is not None:
            # The payload's class depends on the role (agent, live agent, user, system).
            whole = chunk_of(self[3])
            return Message(
                key=self.key,
                role=self.role,
                sequence=sequence_or_none(self.rank),
                text=str(getattr(whole, "text", None) or getattr(whole, "message", "")),
                attachments=getattr(whole, "attachments", ()),
                suggestions=getattr(whole, "response_suggestions", ()),
                complete=True,
                client_event_id=self.client_event_id,
                message_id=getattr(whole, "message_id", None),
                agent_id=getattr(whole, "agent_id", None),
                agent_name=getattr(whole, "agent_name", None),
                avatar_url=getattr(whole, "avatar_url", None),
                call_actions=getattr(whole, "chat_call_actions", ()),
                level=getattr(whole, "level", None),
                hint=hint_for(getattr(whole, "message", "")) if self.role is Role.SYSTEM else None,
                timestamp=self.timestamp,
            )
        chunks = list(self._prefix())
        return Message(
            key=self.key,
            role=self.role,
            sequence=sequence_or_none(self.rank),
            text="".join(chunk.text for chunk in chunks),
            attachments=tuple(a for chunk in chunks for a in chunk.attachments),
            suggestions=tuple(s for chunk in chunks for s in chunk.response_suggestions),
            complete=self.complete,
            interrupted=interrupted and not self.complete,
            message_id=chunk_of(next(iter(self[4].values()))).message_id,
            timestamp=self.timestamp,
        )


def whole_pair(held: Any) -> tuple[float, Any] | None:
    """:attr:`MessageRecord.whole` from what the record holds (``None``, a pair or an event)."""
    if held is None or type(held) is tuple:
        return held
    return (held.sequence, held.payload)


def chunk_rank(entry: Any) -> float:
    """The rank of a chunk or whole message as a record holds it: a ``(rank, payload)`` pair,
    or its event (whose sequence is the rank)."""
    return entry[0] if type(entry) is tuple else entry.sequence  # type: ignore[no-any-return]


def chunk_of(entry: Any) -> ChunkPayload:
    """The payload of a chunk or whole message as a record holds it (see :func:`chunk_rank`)."""
    return entry[1] if type(entry) is tuple else entry.payload  # type: ignore[no-any-return]


def sequence_of(event: ServerEvent) -> int:
    return event.sequence or 0


def sequence_or_none(rank: float) -> int | None:
    return int(rank) if rank == int(rank) else None


@attrs.frozen
class Message:
    """One transcript entry."""

    key: str
    """Identifies the message in this conversation (not the server's :attr:`message_id`).

    ``<kind>:<value>``, the kind from a fixed set, so that ids of different kinds never meet:
    ``agent:`` / ``live_agent:`` / ``user:`` + the server's ``message_id`` (an agent message
    and the chunks of the same ``message_id`` share one), ``client:`` + the
    ``client_event_id`` of our own message (resends share it), and for a message without an id
    ``<role>-event:`` + its event's id, or ``<role>-rank:`` + its rank."""
    role: Role
    sequence: int | None
    text: str
    attachments: tuple[Attachment, ...] = ()
    suggestions: tuple[Suggestion, ...] = ()
    complete: bool = True
    """False for a stream still missing chunks (shown as partial)."""
    interrupted: bool = False
    """An incomplete stream that will not be completed: a later agent, live-agent or system
    message came after it (for example ``Sorry, I encountered an error``), or the
    conversation has ended."""
    client_event_id: str | None = None
    message_id: str | None = None
    agent_id: str | None = None
    agent_name: str | None = None
    """The sender's name as the message gives it (agent and live-agent messages sent whole)."""
    avatar_url: str | None = None
    """The sender's avatar as the message gives it (as ``agent_name``)."""
    call_actions: tuple[ChatCallAction, ...] = ()
    """Phone calls the agent offers with the message (whole agent messages only)."""
    level: str | None = None
    hint: SystemHint | None = None
    timestamp: datetime | None = None


class Marks(NamedTuple):
    """Where the views that look at the end of the transcript find it, without sorting it.

    Each mark is the greatest ``(value, key)`` over a set of message records, so it is a
    function of the records alone (arrival order plays no part). The reducer raises a mark as
    it stores each record, and recounts the marks from every record in the rare case that the
    record a mark names moves earlier (a copy of it arrives at a lower rank).
    """

    last: tuple[float, str] | None
    """``(rank, key)`` of the last message in the transcript."""
    breaker: tuple[float, str] | None
    """``(rank, key)`` of the last agent, live-agent or system message (complete or not):
    every stream before it is interrupted."""
    reply: tuple[float, str] | None
    """``(sequence or 0, key)`` of the latest complete agent, live-agent or system message."""


NO_MARKS = Marks(None, None, None)
