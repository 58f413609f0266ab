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

from collections.abc import Callable, Mapping
from typing import Any

import attrs
from immutables import Map

from ._events import (
    Capabilities,
    ClientHandoffPayload,
    LiveAgent,
    QueueStatusPayload,
    ServerEvent,
    Suggestion,
)
from ._gaps import Gaps
from ._history import EventLog, LogStore
from ._ids import RECENT_ID_MEMORY, IdMemory
from ._messages import (
    Agent,
    Marks,
    Message,
    MessageRecord,
    Notice,
    Role,
    sequence_of,
    sequence_or_none,
)
from ._phases import Phase, UnexpectedPhaseEvent, is_expected, next_phase

__all__ = ["END_CONVERSATION_REASON", "RECENT_ID_MEMORY", "Conversation", "Fields"]

END_CONVERSATION_REASON = "end_conversation"
"""``end_reason`` of a conversation ended by an agent message with ``end_conversation: true``.

Such a message ends the conversation as a ``SESSION_END`` at its sequence would. The reason is
latest by sequence like every ``SESSION_END`` reason, so a ``SESSION_END`` the server sends
after it (the usual order) gives its own reason. Lowercase: it is not a wire value."""

NOTICE_MEMORY = 100
"""How many transient system notices are kept."""


_EMPTY_MAP: Map[Any, Any] = Map()
_NO_GAPS = Gaps()
_NEVER = float("-inf")
_BREAKERS = frozenset({Role.AGENT, Role.LIVE_AGENT, Role.SYSTEM})
_ECHO_KEY = "client:"
"""The kind of record key of our own messages, by ``client_event_id`` (see :attr:`Message.key`)."""
_ECHO_KEY_LENGTH = len(_ECHO_KEY)
_new_object = object.__new__
_new_record: Callable[[type[MessageRecord], tuple[Any, ...]], MessageRecord] = tuple.__new__
_new_marks: Callable[[type[Marks], tuple[Any, ...]], Marks] = tuple.__new__
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

    log_store: LogStore = attrs.field(factory=LogStore, eq=False, repr=False)
    """The events of :attr:`log`, shared with other versions of this conversation: this one
    holds the first :attr:`log_length`."""
    log_length: int = attrs.field(default=0, eq=False, repr=False)
    """How many of :attr:`log_store`'s events this version holds."""
    id_memory: IdMemory = attrs.field(factory=IdMemory, eq=False, repr=False)
    """The ids of recent events, shared with other versions of this conversation: this one
    remembers the first :attr:`ids_seen` (see :attr:`recent_ids`). De-duplication
    bookkeeping, not a fact of the conversation: no part of equality."""
    ids_seen: int = attrs.field(default=0, eq=False, repr=False)
    """How many of :attr:`id_memory`'s ids this version remembers."""
    cursor: int = 0
    """Highest sequence received: the resume cursor."""
    missing: Gaps = _NO_GAPS
    """Missing sequence ranges below the cursor (persistent: see :attr:`gaps` for a tuple)."""
    events_applied: int = 0
    """Distinct known-type events with a sequence."""
    records: Map[str, MessageRecord] = _EMPTY_MAP
    """Messages by key (see :attr:`Message.key`)."""
    open_states: Map[str, tuple[Any, ...]] = _EMPTY_MAP
    """Streams still being assembled, by ``message_id``, each as the items of its record in a
    plain tuple (see :attr:`open_streams`); each moves to ``records`` once, when complete.
    Kept apart so that a chunk updates this small map rather than the one that grows with
    history, and finds its stream without building its key. Plain tuples, as a stream's is
    rebuilt per chunk: a ``MessageRecord`` (a tuple subclass) costs several times as much."""
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
    mark_last: tuple[float, str] | None = attrs.field(default=None, eq=False, repr=False)
    """:attr:`Marks.last` of :attr:`marks` (the marks are kept as three fields: a fold then
    writes the one that moved, and builds no ``Marks``)."""
    mark_breaker: tuple[float, str] | None = attrs.field(default=None, eq=False, repr=False)
    """:attr:`Marks.breaker` of :attr:`marks`."""
    mark_reply: tuple[float, str] | None = attrs.field(default=None, eq=False, repr=False)
    """:attr:`Marks.reply` of :attr:`marks`."""
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

    @property
    def marks(self) -> Marks:
        """Derived from :attr:`records` and :attr:`open_states`, kept so that the views of the
        transcript's end (:attr:`streams`, :attr:`suggestions`, :meth:`reply_complete`) cost the
        same at any length of history."""
        return _new_marks(Marks, (self.mark_last, self.mark_breaker, self.mark_reply))

    @property
    def log(self) -> EventLog:
        """Every sequenced event (unknown types included), in the order it was applied. Arrival
        order is not a fact of the conversation, so it takes no part in equality."""
        return EventLog.of(self.log_store, self.log_length)

    @property
    def open_streams(self) -> Map[str, MessageRecord]:
        """Streams still being assembled, by ``message_id`` (built when read: few are open)."""
        return Map({key: _as_record(state) for key, state in self.open_states.items()})

    def _open_records(self) -> list[MessageRecord]:
        return [_as_record(state) for state in self.open_states.values()]

    @property
    def echoes(self) -> Map[str, str]:
        """``client_event_id`` of each echoed user message, to its record key.

        Built when read (O(n)) from the records' keys: an echo's key is ``client:`` and its
        ``client_event_id``, and only an echo makes such a key."""
        return Map(
            {key[_ECHO_KEY_LENGTH:]: key for key in self.records if key.startswith(_ECHO_KEY)}
        )

    @property
    def recent_ids(self) -> Map[str, None]:
        """Ids of the newer generation of remembered event ids (built when read)."""
        return Map(dict.fromkeys(self.id_memory.generations(self.ids_seen)[1]))

    @property
    def older_ids(self) -> Map[str, None]:
        """Ids of the older generation of remembered event ids (built when read)."""
        return Map(dict.fromkeys(self.id_memory.generations(self.ids_seen)[0]))

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
        return tuple(sorted(self.log, key=sequence_of))

    def record(self, key: str) -> MessageRecord | None:
        """The message record for ``key``, complete or still streaming."""
        found = self.records.get(key)
        if found is None:  # few streams are open at a time
            state = next((s for s in self.open_states.values() if s[0] == key), None)
            found = None if state is None else _as_record(state)
        return found

    def _sorted_records(self) -> list[MessageRecord]:
        everything = [*self.records.values(), *self._open_records()]
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
        breaker = self.mark_breaker
        ended = self.ended
        return tuple(
            record.view(interrupted=ended or (breaker is not None and breaker > point))
            for point, record in sorted(
                ((record.rank, record.key), record) for record in self._open_records()
            )
        )

    @property
    def streaming(self) -> tuple[Message, ...]:
        """Streams still arriving: incomplete and not interrupted."""
        return tuple(m for m in self.streams if not m.interrupted)

    @property
    def suggestions(self) -> tuple[Suggestion, ...]:
        """Quick replies of the last message, if an agent sent it."""
        last = self.mark_last
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
        reply = self.mark_reply
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
        # Only an echo with this client_event_id makes a record of this key.
        record = self.record(f"{_ECHO_KEY}{client_event_id}")
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
                found.append(UnexpectedPhaseEvent(sequence_or_none(rank), trigger, phase))
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
            "messages": len(self.records) + len(self.open_states),
        }


def _as_record(state: tuple[Any, ...]) -> MessageRecord:
    """The record of an open stream's state (see :attr:`Conversation.open_states`)."""
    if type(state) is MessageRecord:
        return state
    return _new_record(MessageRecord, state)


class _BuildingConversation(Conversation):
    """A conversation being built: frozen ``Conversation`` refuses attribute stores, this
    same-layout subclass takes them, then becomes a ``Conversation`` by ``__class__``
    assignment. Cheaper than ``object.__setattr__`` calls, once per event."""

    __slots__ = ()
    __init__ = object.__init__
    # Both, or every store goes through a Python-level lookup on the class.
    __setattr__ = object.__setattr__
    __delattr__ = object.__delattr__
