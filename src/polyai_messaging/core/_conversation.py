"""The immutable conversation: the folded server history and the views built from it.

A :class:`Conversation` is only ever produced by :func:`polyai_messaging.core.apply`. It is
built on persistent structures (``immutables.Map``, a HAMT, for what is looked up by key; an
:class:`~._history.EventLog` for the sequenced events), so applying one event costs the same at
50,000 events of history as at 500: nothing is copied whole. Ordered views (``transcript``,
``timeline``, ``journal``) are built when asked for, not on every event.

"Latest wins" facts (agent, queue status, language, ...) are ranked by ``sequence``; an event
without a sequence ranks just above everything received before it. That makes every fact a
function of the *set* of events, so any arrival order folds to the same conversation.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, NamedTuple

import attrs
from immutables import Map

from ._events import (
    Attachment,
    Capabilities,
    ChatCallAction,
    ChunkPayload,
    ClientHandoffPayload,
    LiveAgent,
    QueueStatusPayload,
    ServerEvent,
    Suggestion,
)
from ._gaps import Gaps
from ._history import EventLog
from ._phases import Phase, UnexpectedPhaseEvent, is_expected, next_phase

__all__ = [
    "END_CONVERSATION_REASON",
    "RECENT_ID_MEMORY",
    "Agent",
    "Conversation",
    "Fields",
    "Marks",
    "Message",
    "MessageRecord",
    "Notice",
    "Role",
    "SystemHint",
    "chunk_of",
    "chunk_rank",
    "hint_for",
    "whole_pair",
]

RECENT_ID_MEMORY = 256
"""Event ids are remembered for de-duplication in two generations of this many (512 at most).

Duplicates come from overlapping replays and fan-out, within a batch or two of the original, so
this is ample; a generation this small also keeps the map's nodes narrow, which makes adding an
id about a third cheaper than at 512. Sequenced events are also de-duplicated exactly by their
sequence, whatever their age."""

END_CONVERSATION_REASON = "end_conversation"
"""``end_reason`` of a conversation ended by an agent message with ``end_conversation: true``.

Such a message ends the conversation as a ``SESSION_END`` at its sequence would. The reason is
latest by sequence like every ``SESSION_END`` reason, so a ``SESSION_END`` the server sends
after it (the usual order) gives its own reason. Lowercase: it is not a wire value."""

NOTICE_MEMORY = 100
"""How many transient system notices are kept."""


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
                sequence=_seq(self.rank),
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
            sequence=_seq(self.rank),
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


def _sequence_of(event: ServerEvent) -> int:
    return event.sequence or 0


def _seq(rank: float) -> int | None:
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

_EMPTY_MAP: Map[Any, Any] = Map()
_NO_GAPS = Gaps()
_NEVER = float("-inf")
_BREAKERS = frozenset({Role.AGENT, Role.LIVE_AGENT, Role.SYSTEM})
_new_object = object.__new__
_set_attribute = object.__setattr__

Fields = dict[str, Any]
"""A conversation's field values by name."""


@attrs.frozen(slots=False)
class Conversation:
    """The folded state of one session's server history. Create with ``Conversation()``.

    Public attributes are facts; properties are views computed on demand.
    """

    # Keep fewer than 30 fields: CPython 3.11 shares the keys of instance dicts only up to 29
    # attributes, and copying an unshared dict (once per event) makes ``apply`` 5% slower.
    # Facts that change rarely therefore live together in ``facts``.

    log: EventLog = attrs.field(factory=EventLog, eq=False, repr=False)
    """Every sequenced event (unknown types included), in the order it was applied. Arrival
    order is not a fact of the conversation, so it takes no part in equality."""
    recent_ids: Map[str, None] = _EMPTY_MAP
    older_ids: Map[str, None] = _EMPTY_MAP
    cursor: int = 0
    """Highest sequence received: the resume cursor."""
    missing: Gaps = _NO_GAPS
    """Missing sequence ranges below the cursor (persistent: see :attr:`gaps` for a tuple)."""
    events_applied: int = 0
    """Distinct known-type events with a sequence."""
    records: Map[str, MessageRecord] = _EMPTY_MAP
    """Messages by key (see :attr:`Message.key`)."""
    open_streams: Map[str, MessageRecord] = _EMPTY_MAP
    """Streams still being assembled, by ``message_id``; each moves to ``records`` once, when
    complete. Kept apart so that a chunk updates this small map rather than the one that grows
    with history, and finds its stream without building its key."""
    echoes: Map[str, str] = _EMPTY_MAP
    """``client_event_id`` of each echoed user message, to its record key."""
    phase_events: Map[float, str] = _EMPTY_MAP
    """Phase-changing event types by rank, kept to explain the phase (anomalies)."""
    phase: Phase = Phase.CONNECTING
    phase_rank: float = -1.0
    facts: Map[str, tuple[float, Any]] = _EMPTY_MAP
    """Latest-wins facts by name, each ``(rank, value)`` from its highest-ranked event:
    ``agent`` (:class:`Agent`), ``live_agent`` (:class:`LiveAgent`), ``agent_left`` and
    ``live_agent_left`` (the departure's reason), ``capabilities``, ``queue``, ``language``,
    ``client_handoff``, ``end`` (the reason), ``join_requested`` (an echo of our join request)
    and ``rejoin`` (an error-level system message asking to rejoin); the views read them."""
    thinking_rank: float = -1.0
    agent_output_rank: float = -1.0
    live_typing: tuple[float, str] | None = None
    live_output_rank: float = -1.0
    notices: tuple[Notice, ...] = ()
    """Transient system messages in arrival order (the last 100)."""
    marks: Marks = attrs.field(default=NO_MARKS, eq=False, repr=False)
    """Derived from :attr:`records` and :attr:`open_streams`, kept so that the views of the
    transcript's end (:attr:`streams`, :attr:`suggestions`, :meth:`reply_complete`) cost the
    same at any length of history."""
    duplicates_dropped: int = 0
    protocol_errors: tuple[str, ...] = ()
    """Descriptions of rejected input (malformed batch or array elements); bounded."""

    def fields(self) -> Fields:
        """A copy of the field values, for the reducer to build the next conversation from."""
        return self.__dict__.copy()

    @classmethod
    def from_fields(cls, fields: Fields) -> Conversation:
        """The conversation with exactly these field values (as returned by :meth:`fields`)."""
        # attrs.evolve re-runs __init__ over ~30 fields; this runs once per event.
        if cls is not Conversation:
            new = _new_object(cls)
            _set_attribute(new, "__dict__", fields)
            return new
        building: Conversation = _BuildingConversation()
        building.__dict__ = fields
        building.__class__ = Conversation
        return building

    # --- views ------------------------------------------------------------------------------

    def _fact(self, name: str) -> Any:
        entry = self.facts.get(name)
        return None if entry is None else entry[1]

    def _rank(self, name: str) -> float:
        entry = self.facts.get(name)
        return _NEVER if entry is None else entry[0]

    @property
    def agent(self) -> Agent | None:
        """The PolyAI agent the latest ``POLY_AGENT_JOINED`` announced (present or not)."""
        return self._fact("agent")  # type: ignore[no-any-return]

    @property
    def live_agent(self) -> LiveAgent | None:
        """The live agent the latest ``LIVE_AGENT_JOINED`` announced (present or not)."""
        return self._fact("live_agent")  # type: ignore[no-any-return]

    @property
    def agent_present(self) -> bool:
        """The PolyAI agent joined and has not left since (by rank; a tie counts as gone)."""
        return self._rank("agent") > self._rank("agent_left")

    @property
    def live_agent_present(self) -> bool:
        """A live agent joined and has not left since (by rank; a tie counts as gone)."""
        return self._rank("live_agent") > self._rank("live_agent_left")

    @property
    def agent_left_reason(self) -> str | None:
        """The reason given by the latest ``POLY_AGENT_LEFT``, if any."""
        return self._fact("agent_left")  # type: ignore[no-any-return]

    @property
    def live_agent_left_reason(self) -> str | None:
        """The reason given by the latest ``LIVE_AGENT_LEFT``, if any."""
        return self._fact("live_agent_left")  # type: ignore[no-any-return]

    @property
    def capabilities(self) -> Capabilities | None:
        return self._fact("capabilities")  # type: ignore[no-any-return]

    @property
    def queue(self) -> QueueStatusPayload | None:
        return self._fact("queue")  # type: ignore[no-any-return]

    @property
    def language(self) -> str | None:
        return self._fact("language")  # type: ignore[no-any-return]

    @property
    def client_handoff(self) -> ClientHandoffPayload | None:
        return self._fact("client_handoff")  # type: ignore[no-any-return]

    @property
    def ended(self) -> bool:
        return self.phase is Phase.ENDED

    @property
    def end_reason(self) -> str | None:
        return self._fact("end")  # type: ignore[no-any-return]

    @property
    def agent_thinking(self) -> bool:
        """The PolyAI agent is composing (cleared by its next message or chunk, or an error)."""
        return self.thinking_rank > self.agent_output_rank

    @property
    def live_agent_typing(self) -> bool:
        """The live agent is typing (cleared by STOPPED or its next message)."""
        typing = self.live_typing
        return (
            typing is not None
            and typing[1] == "TYPING_STATE_STARTED"
            and (typing[0] > self.live_output_rank)
        )

    @property
    def gaps(self) -> tuple[tuple[int, int], ...]:
        """Missing sequence ranges ``(first, last)`` below the cursor, ascending: O(n)."""
        return tuple(self.missing)

    def event_at(self, sequence: int) -> ServerEvent | None:
        """The event held at ``sequence``, if any.

        O(1) when the history arrived in order (the usual case: each event sits at its
        sequence's place in :attr:`log`). Otherwise the log is searched outward from that place:
        an event that arrived late (a gap filled) moves each one after it by one place, so the
        search costs how far the event moved, not the length of the history.
        """
        log = self.log
        if not log or not 0 < sequence <= self.cursor:
            return None
        if self.missing.filled(sequence) is not self.missing:
            return None  # in a gap
        length = len(log)
        index = min(max(sequence - (log[0].sequence or 0), 0), length - 1)
        for distance in range(max(index + 1, length - index)):
            for place in (index - distance, index + distance):
                if 0 <= place < length and log[place].sequence == sequence:
                    return log[place]
        return None

    def first_gap_after(self, sequence: int) -> tuple[int, int] | None:
        """The lowest missing range whose first sequence is above ``sequence``: O(log n)."""
        return next(self.missing.after(sequence), None)

    def gaps_after(self, sequence: int) -> tuple[tuple[int, int], ...]:
        """The missing ranges whose first sequence is above ``sequence``: O(log n + found)."""
        return tuple(self.missing.after(sequence))

    @property
    def journal(self) -> Map[int, ServerEvent]:
        """Every sequenced event by sequence (built from :attr:`log` when asked: O(n))."""
        return Map({e.sequence: e for e in self.log if e.sequence is not None})

    @property
    def timeline(self) -> tuple[ServerEvent, ...]:
        """Every sequenced event in sequence order."""
        return tuple(sorted(self.log, key=_sequence_of))

    def record(self, key: str) -> MessageRecord | None:
        """The message record for ``key``, complete or still streaming."""
        found = self.records.get(key)
        if found is None:  # few streams are open at a time
            found = next((r for r in self.open_streams.values() if r.key == key), None)
        return found

    def _sorted_records(self) -> list[MessageRecord]:
        everything = [*self.records.values(), *self.open_streams.values()]
        return sorted(everything, key=lambda r: (r.rank, r.key))

    @property
    def transcript(self) -> tuple[Message, ...]:
        """Messages in display order (by sequence), streams included, partial ones too."""
        records = self._sorted_records()
        # A stream followed by any later agent, live-agent or system message is interrupted;
        # once the conversation has ended, every incomplete stream is.
        breaks = (i for i, record in enumerate(records) if record.role in _BREAKERS)
        last_break = len(records) if self.ended else max(breaks, default=-1)
        return tuple(
            record.view(interrupted=index < last_break) for index, record in enumerate(records)
        )

    @property
    def streams(self) -> tuple[Message, ...]:
        """Streams still missing chunks, interrupted ones included (each flagged)."""
        # Incomplete messages are exactly the open streams, few at any time: the transcript
        # (every message, sorted) is not built. A stream is interrupted as in it.
        breaker = self.marks.breaker
        ended = self.ended
        return tuple(
            record.view(interrupted=ended or (breaker is not None and breaker > point))
            for point, record in sorted(
                ((record.rank, record.key), record) for record in self.open_streams.values()
            )
        )

    @property
    def streaming(self) -> tuple[Message, ...]:
        """Streams still arriving: incomplete and not interrupted."""
        return tuple(m for m in self.streams if not m.interrupted)

    @property
    def suggestions(self) -> tuple[Suggestion, ...]:
        """Quick replies of the last message, if an agent sent it."""
        last = self.marks.last
        record = None if last is None else self.record(last[1])
        if record is None or record.role not in (Role.AGENT, Role.LIVE_AGENT):
            return ()
        return record.view().suggestions

    @property
    def agent_joined(self) -> bool:
        """Whether any ``POLY_AGENT_JOINED`` was received (:ref:`protocol-join`)."""
        return "agent" in self.facts

    @property
    def busy(self) -> bool:
        """Whether a reply is on its way: the agent is thinking, a live agent is typing, or a
        reply is still streaming."""
        return bool(self.agent_thinking or self.live_agent_typing or self.streaming)

    def reply_complete(self, client_event_id: str | None = None) -> bool:
        """Whether the reply to our message ``client_event_id`` (``None``: the greeting) is
        complete: a whole agent, live-agent or system message came after the message's echo,
        and nobody is typing, composing or streaming."""
        if self.busy:
            return False
        after = -1
        if client_event_id is not None:
            mine = self.delivered(client_event_id)
            if mine is None or mine.sequence is None:
                return False
            after = mine.sequence
        reply = self.marks.reply
        return reply is not None and reply[0] > after

    @property
    def join_requested(self) -> bool:
        """Whether the echo of a ``REQUEST_POLY_AGENT_JOIN`` of ours was received."""
        return "join_requested" in self.facts

    @property
    def join_needed(self) -> bool:
        """Whether to send ``REQUEST_POLY_AGENT_JOIN``: nothing says a join happened or was
        asked for (no ``POLY_AGENT_JOINED``, no echo of our request), or an error-level system
        message asking to rejoin ranks after the latest of both."""
        latest = max(self._rank("agent"), self._rank("join_requested"))
        return latest == _NEVER or self._rank("rejoin") > latest

    def delivered(self, client_event_id: str) -> Message | None:
        """The echoed user message with this ``client_event_id``, if its echo was folded."""
        key = self.echoes.get(client_event_id)
        record = None if key is None else self.record(key)
        return None if record is None else record.view()

    @property
    def anomalies(self) -> tuple[UnexpectedPhaseEvent, ...]:
        """Phase-changing events that arrived in a phase the table does not expect.

        Derived from the events in sequence order, so it does not depend on arrival order.
        """
        found: list[UnexpectedPhaseEvent] = []
        phase = Phase.CONNECTING
        for rank in sorted(self.phase_events.keys()):
            trigger = self.phase_events[rank]
            if not is_expected(phase, trigger):
                found.append(UnexpectedPhaseEvent(_seq(rank), trigger, phase))
            phase = next_phase(phase, trigger)
        return tuple(found)

    def without_indicators(self) -> Conversation:
        """The same conversation with the thinking/typing indicators cleared (on resume, expiry)."""
        fields = self.fields()
        fields.update(thinking_rank=-1.0, live_typing=None)
        return Conversation.from_fields(fields)

    def summary(self) -> Mapping[str, Any]:
        """A small dict for logs: phase, cursor, counts. Never contains secrets."""
        return {
            "phase": self.phase.value,
            "cursor": self.cursor,
            "gaps": len(self.missing),
            "events": self.events_applied,
            "messages": len(self.records) + len(self.open_streams),
        }


class _BuildingConversation(Conversation):
    """A conversation being built: frozen ``Conversation`` refuses attribute stores, this
    same-layout subclass takes them, then becomes a ``Conversation`` by ``__class__``
    assignment. Cheaper than ``object.__setattr__`` calls, once per event."""

    __slots__ = ()
    __init__ = object.__init__
    # Both, or every store goes through a Python-level lookup on the class.
    __setattr__ = object.__setattr__
    __delattr__ = object.__delattr__
