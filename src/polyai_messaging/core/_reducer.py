"""``apply(conversation, event) -> conversation``: the pure, total fold of server events.

Rules, in the order they are applied to each event:

1. What the decoder dropped from an event (malformed batch or array elements) is recorded; a
   batch is then flattened, its inner events applied one by one, all to one copy of the
   conversation (one transaction).
2. De-duplication. A sequenced event whose ``sequence`` was already received (at most the
   cursor and in no gap) is dropped: a server gives each event one sequence, so this is exact
   and needs no index that grows with history. Any event whose ``id`` was seen recently is
   dropped too (bounded memory), which also catches transient duplicates and a recent event
   resent under another sequence. An empty ``id`` names nothing: it is treated as absent.
   The first copy of a sequence wins; a later one with another id is a server fault that the
   session driver detects as a diverged history on replay.
3. Log, cursor and gaps: every sequenced event (unknown types too) is appended to the log; the
   cursor is the highest sequence; gaps are the missing ranges below it.
4. Facts: each known type updates its facts, "latest by rank" (see :mod:`._conversation`).

Nothing here depends on arrival order except the transient parts (indicators, notices) and the
diagnostics (``duplicates_dropped``, ``protocol_errors``) and the log's order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from immutables import Map

from ._conversation import (
    END_CONVERSATION_REASON,
    NOTICE_MEMORY,
    RECENT_ID_MEMORY,
    Conversation,
    Fields,
    _BuildingConversation,
)
from ._events import (
    KNOWN_TYPES,
    ClientHandoffRequired,
    EventBatch,
    HandoffQueueStatus,
    LanguageChanged,
    LiveAgentJoined,
    LiveAgentLeft,
    LiveAgentMessage,
    LiveAgentTyping,
    PolyAgentJoined,
    PolyAgentJoinRequested,
    PolyAgentLeft,
    PolyAgentMessage,
    PolyAgentMessageChunk,
    PolyAgentThinking,
    ServerEvent,
    SessionEnd,
    SessionStart,
    SystemMessage,
    UnknownEvent,
    UserMessageEcho,
)
from ._history import BLOCK
from ._ids import IdMemory
from ._messages import (
    NO_MARKS,
    Agent,
    Marks,
    MessageRecord,
    Notice,
    Role,
    SystemHint,
    chunk_rank,
    hint_for,
)
from ._phases import PHASE_TRIGGERS, Phase, destination

__all__ = ["apply", "fold"]

_PROTOCOL_ERROR_MEMORY = 100
_NO_CHUNKS: Map[int, Any] = Map()
# Builds a MessageRecord from its eight values in order, without NamedTuple's keyword layer.
_new_record: Callable[[type[MessageRecord], tuple[Any, ...]], MessageRecord] = tuple.__new__
_new_marks: Callable[[type[Marks], tuple[Any, ...]], Marks] = tuple.__new__
_State = tuple[Any, ...]
"""A message record as the reducer handles it: a ``MessageRecord``, or an open stream's state
(its items in a plain tuple, see ``Conversation.open_states``). Read by item only."""
_USER = Role.USER  # a global: the interpreter does not specialise reading a class attribute


def fold(events: Iterable[ServerEvent], conversation: Conversation | None = None) -> Conversation:
    """Apply ``events`` in order, starting from ``conversation`` (or an empty one)."""
    state = conversation if conversation is not None else Conversation()
    for event in events:
        state = apply(state, event)
    return state


def apply(conversation: Conversation, event: ServerEvent) -> Conversation:
    """Fold one decoded server event into the conversation. Pure and total."""
    if not event.id and event.sequence is None and type(event) in _INERT:
        return conversation  # nothing to record (a heartbeat echo, say)
    # The new conversation's fields, written in place by the rules; a batch is applied to one
    # copy, as one transaction. (Conversation.fields and from_fields, inlined: once per event.)
    fields = conversation.__dict__.copy()
    _apply_into(fields, event)
    if fields["marks"] is None:  # a marked message moved earlier (see _placed)
        fields["marks"] = _recount(fields)
    new: Conversation = _BuildingConversation()
    new.__dict__ = fields
    new.__class__ = Conversation
    return new


def _apply_into(fields: Fields, event: ServerEvent) -> None:
    """Apply ``event`` to the fields of the conversation being built."""
    if event.rejected:  # the malformed parts the decoder dropped (batch or array elements)
        errors = tuple(str(error) for error in event.rejected)
        fields["protocol_errors"] = _bounded(fields["protocol_errors"], errors)
    if type(event) is EventBatch:
        for inner in event.events:
            _apply_into(fields, inner)
        return
    cls = type(event)
    sequence = event.sequence
    event_id = event.id
    cursor = fields["cursor"]
    if sequence is not None and sequence <= cursor:
        # A late event is new only if it fills a gap (and the filled set is kept for step 3).
        filled = fields["missing"].filled(sequence)
        if filled is fields["missing"]:
            fields["duplicates_dropped"] += 1
            return
    if event_id:  # an empty id names nothing
        memory = fields["id_memory"]
        seen = fields["ids_seen"]
        index = memory.index
        # IdMemory.seen and .add, inlined (once per event).
        if event_id in index and index[event_id] < seen:
            # For a sequenced event its sequence was new: the same id under another sequence.
            fields["duplicates_dropped"] += 1
            return
        ids = memory.ids
        if len(ids) == seen and seen - memory.older < RECENT_ID_MEMORY:
            ids.append(event_id)
            if ids[seen] is event_id:  # else another version took the slot first (threads)
                index[event_id] = seen
                fields["ids_seen"] = seen + 1
            else:
                _remember(fields, memory, seen, event_id)
        else:
            _remember(fields, memory, seen, event_id)
    if sequence is not None:
        # LogStore.append, inlined (once per event).
        store = fields["log_store"]
        length = fields["log_length"]
        tail = store.tail
        at = length - store.start
        if at == len(tail) and at < BLOCK:
            tail.append(event)
            if tail[at] is not event:  # another version took the slot first (threads)
                fields["log_store"] = store.extended(length, event)
        else:
            fields["log_store"] = store.extended(length, event)
        fields["log_length"] = length + 1
        if sequence > cursor:
            if sequence > cursor + 1:
                fields["missing"] = fields["missing"].appended(cursor + 1, sequence - 1)
            fields["cursor"] = sequence
        else:
            fields["missing"] = filled
        if cls is not UnknownEvent:
            fields["events_applied"] += 1
        # The sequence itself, not a float of it: the records and chunks keep their event's
        # rank, and the int is one the event holds anyway. Ints and floats compare exactly.
        rank = sequence
    else:
        # Unsequenced events are live: they rank just above everything received so far.
        rank = cursor + 0.5
    try:
        handler, trigger = _RULES[cls]
    except KeyError:  # a class the decoder does not make (a subclass, say): no rule, as before
        handler, trigger = _NO_RULE
    if handler is not None:
        handler(fields, event, rank)
    if trigger is not None:
        _phase(fields, trigger, rank)


def _remember(fields: Fields, memory: IdMemory, seen: int, event_id: str) -> None:
    """Remember ``event_id`` in a new memory: the version forked, or a generation is full."""
    memory = memory.extended(seen, event_id)
    fields["id_memory"] = memory
    fields["ids_seen"] = len(memory.ids)


def _bounded(existing: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    return (*existing, *new)[-_PROTOCOL_ERROR_MEMORY:]


def _phase(fields: Fields, trigger: str, rank: float) -> None:
    fields["phase_events"] = fields["phase_events"].set(rank, trigger)
    _move(fields, trigger, rank)


def _move(fields: Fields, trigger: str, rank: float) -> None:
    """Move the phase as ``trigger`` at ``rank`` does (without recording it as a phase event)."""
    dest = destination(trigger)
    if fields["phase"] is Phase.ENDED or dest is None:
        return
    if dest is Phase.ENDED or rank > fields["phase_rank"]:
        fields["phase"] = dest
        fields["phase_rank"] = rank


def _latest(current: tuple[float, Any] | None, rank: float, value: Any) -> tuple[float, Any]:
    if current is not None and current[0] > rank:
        return current
    return (rank, value)


# --- messages ---------------------------------------------------------------------------------


def _placed(
    fields: Fields,
    record: _State | None,
    key: str,
    role: Role,
    rank: float,
    event: ServerEvent,
) -> _State:
    """``record`` (a new one for ``key`` if none), placed at the lowest rank that carried it."""
    if record is None:
        return _new_record(
            MessageRecord, (key, role, rank, None, _NO_CHUNKS, None, None, event.timestamp, 0)
        )
    if rank < record[2]:
        marks = fields["marks"]
        if marks is not None and any(mark is not None and mark[1] == key for mark in marks):
            # The mark's record moves earlier, so another may now be last: recount (rare).
            fields["marks"] = None
        # The event that places the message also dates it, even without a timestamp (replayed
        # events may lack one; docs: protocol-batches):
        # keeping an earlier-arrived timestamp would make the result depend on arrival order.
        # (Items and a new record: ``record`` may be an open stream's state, a plain tuple.)
        key, role, _, whole, chunks, final, client_event_id, _, prefix = record
        return _new_record(
            MessageRecord,
            (key, role, rank, whole, chunks, final, client_event_id, event.timestamp, prefix),
        )
    return record


def _with_whole(
    record: _State, rank: float, event: ServerEvent, client_event_id: str | None = None
) -> _State:
    """``record`` with ``event``'s payload as the consolidated one; the lowest-ranked copy wins."""
    held = record[3]  # as held: see MessageRecord.whole
    if held is not None and chunk_rank(held) <= rank:
        return record
    key, role, placed, _, chunks, final, _, timestamp, prefix = record
    return _new_record(
        MessageRecord,
        (key, role, placed, _held(event, rank), chunks, final, client_event_id, timestamp, prefix),
    )


def _held(event: Any, rank: float) -> Any:
    """What a record holds for ``event``'s payload at ``rank`` (see ``MessageRecord.chunks``)."""
    return event if rank is event.sequence else (rank, event.payload)


def _whole(
    fields: Fields,
    key: str,
    role: Role,
    rank: float,
    event: ServerEvent,
    client_event_id: str | None = None,
) -> None:
    """Record a message that only ever arrives whole (not an agent message)."""
    records = fields["records"]
    record = records[key] if key in records else None  # noqa: SIM401 (see _on_chunk)
    if record is None:  # the usual case: built once, whole
        record = _new_record(
            MessageRecord,
            (key, role, rank, _held(event, rank), _NO_CHUNKS, None, client_event_id,
             event.timestamp, 0),
        )  # fmt: skip
    else:
        record = _placed(fields, record, key, role, rank, event)
        record = _with_whole(record, rank, event, client_event_id)
    fields["records"] = records.set(key, record)
    _mark(fields, record, complete=True)


def _agent_record(fields: Fields, message_id: str, rank: float, event: ServerEvent) -> _State:
    """The record of agent message ``message_id`` (an open stream, complete, or new), placed."""
    record: _State | None = fields["open_states"].get(message_id)
    if record is not None:  # a state: a plain tuple (see Conversation.open_states)
        if record[2] <= rank:  # its rank (an item: see _on_chunk)
            return record  # the usual case: a later chunk of an open stream
        return _placed(fields, record, record[0], Role.AGENT, rank, event)
    # The key is built only here, once per message: chunks find their stream by message_id.
    key = f"agent:{message_id}"
    return _placed(fields, fields["records"].get(key), key, Role.AGENT, rank, event)


def _store_agent(fields: Fields, record: _State, message_id: str) -> None:
    """Store an agent message's record: as an open stream's state, or complete."""
    streams = fields["open_states"]
    # A stream stays open until its final chunk is known and every chunk before it arrived.
    # (Not record.complete: items, as in _on_chunk. 3: whole, 5: final_index, 8: prefix.)
    if record[3] is None and (record[5] is None or record[8] < record[5]):
        fields["open_states"] = streams.set(message_id, record)
        _mark(fields, record, complete=False)
        return
    if message_id in streams:
        fields["open_states"] = streams.delete(message_id)
    if type(record) is not MessageRecord:  # an open stream's state: a plain tuple
        record = _new_record(MessageRecord, record)
    fields["records"] = fields["records"].set(record[0], record)
    _mark(fields, record, complete=True)


def _mark(fields: Fields, record: _State, *, complete: bool) -> None:
    """Raise the marks (see :class:`Marks`) to ``record`` as stored, where it is greater."""
    marks: Marks | None = fields["marks"]
    if marks is None:
        return  # recounted at the end of apply
    last, breaker, reply = marks
    # Items, not names: see _on_chunk (the record's key, role and rank).
    key, role, rank = record[0], record[1], record[2]
    point = (rank, key)
    if last is None or point > last:
        last = point
    elif role is _USER:
        return  # the usual case for a user message: not the last, and it marks nothing else
    elif complete is False and breaker is not None and point <= breaker:
        return  # the usual case for a stream's next chunk: it raises nothing
    if role is not _USER:
        if breaker is None or point > breaker:
            breaker = point
        if complete:
            # A sequenced message ranks by its sequence; a live one between two (x.5).
            scored = (rank if rank == int(rank) else 0, key)
            if reply is None or scored > reply:
                reply = scored
    # A new Marks only when one moved (tuple.__new__: NamedTuple's own is a Python call).
    if last is not marks[0] or breaker is not marks[1] or reply is not marks[2]:
        fields["marks"] = _new_marks(Marks, (last, breaker, reply))


def _recount(fields: Fields) -> Marks:
    """The marks counted afresh from every record."""
    marks_fields: Fields = {"marks": NO_MARKS}
    for record in fields["records"].values():
        _mark(marks_fields, record, complete=True)
    for record in fields["open_states"].values():
        _mark(marks_fields, record, complete=False)
    return marks_fields["marks"]  # type: ignore[no-any-return]


# Record keys are "<kind>:<value>" with a kind from a fixed set containing no ":", so two keys
# are equal only for the same kind and value: a server id can never hide another kind of message.


def _event_key(role: Role, event: ServerEvent, rank: float) -> str:
    """The key of a message that has no id of its own: its event's (unique) id, else its rank."""
    if event.id:
        return f"{role.value}-event:{event.id}"
    return f"{role.value}-rank:{float(rank)}"


def _on_agent_message(fields: Fields, event: PolyAgentMessage, rank: float) -> None:
    payload = event.payload
    message_id = payload.message_id
    if message_id:
        record = _agent_record(fields, message_id, rank, event)
        _store_agent(fields, _with_whole(record, rank, event), message_id)
    else:
        _whole(fields, _event_key(Role.AGENT, event, rank), Role.AGENT, rank, event)
    fields["agent_output_rank"] = max(fields["agent_output_rank"], rank)
    if payload.end_conversation:
        # An end as by a SESSION_END at this rank. It is the client's reading, not a phase
        # event the server sent, so anomalies (a later real SESSION_END) leave it out.
        _set_fact(fields, "end", rank, END_CONVERSATION_REASON)
        _move(fields, SessionEnd.TYPE, rank)


def _on_chunk(fields: Fields, event: PolyAgentMessageChunk, rank: float) -> None:
    chunk = event.payload
    index = chunk.chunk_index
    message_id = chunk.message_id
    # Chunks have no other grouping key, so even an empty message_id groups them.
    streams = fields["open_states"]
    # `in` then an item, not Map.get: a method call packs its arguments in a tuple, and `in`
    # answers the usual miss (a new chunk index, a new message) at a third of the cost.
    stored = record = streams[message_id] if message_id in streams else None  # noqa: SIM401
    if record is None:
        # _agent_record, inlined with its usual case: a new stream's state is built directly.
        key = f"agent:{message_id}"
        records = fields["records"]
        if key in records:  # the message arrived whole, or complete, before
            record = _placed(fields, records[key], key, Role.AGENT, rank, event)
        else:
            record = (key, Role.AGENT, rank, None, _NO_CHUNKS, None, None, event.timestamp, 0)
    elif record[2] > rank:  # else the usual case: an open stream's next chunk
        record = _placed(fields, record, record[0], Role.AGENT, rank, event)
    # Unpacked, not read by name: a NamedTuple field is a descriptor the interpreter does not
    # specialise, several times the cost of an item (once per chunk, nine fields).
    key, role, placed, whole, chunks, final, client_event_id, timestamp, prefix = record
    known = chunks[index] if index in chunks else None  # noqa: SIM401 (held: MessageRecord.chunks)
    # A replayed chunk index keeps the lowest-ranked copy, so arrival order is irrelevant.
    if known is None or chunk_rank(known) > rank:
        if chunk.is_complete and (final is None or index < final):
            final = index
        # A sequenced chunk's event is held for it (its rank is its sequence), a live one's pair.
        # (_held, inlined: once per chunk.)
        chunks = chunks.set(index, event if rank is event.sequence else (rank, chunk))
        if index == prefix + 1:
            prefix += 1
            # Chunks already past the hole join the prefix: each is passed over once.
            if len(chunks) > prefix:
                while prefix + 1 in chunks:
                    prefix += 1
        # A plain tuple: the stream's state (see Conversation.open_states).
        record = (key, role, placed, whole, chunks, final, client_event_id, timestamp, prefix)
    # Still open: not complete (an open stream has no whole message).
    if stored is not None and placed is stored[2] and (final is None or prefix < final):
        # The usual case, _store_agent's first branch without the marks: the stream stays
        # open at its place, so it raises no mark: it raised them when first stored, and marks
        # only rise (or are recounted from every record).
        if record is not stored:
            fields["open_states"] = streams.set(message_id, record)
    else:
        _store_agent(fields, record, message_id)
    if rank > fields["agent_output_rank"]:  # noqa: PLR1730 (max() is a call; once per chunk)
        fields["agent_output_rank"] = rank


def _on_live_message(fields: Fields, event: LiveAgentMessage, rank: float) -> None:
    message_id = event.payload.message_id
    key = f"live_agent:{message_id}" if message_id else _event_key(Role.LIVE_AGENT, event, rank)
    _whole(fields, key, Role.LIVE_AGENT, rank, event)
    fields["live_output_rank"] = max(fields["live_output_rank"], rank)


def _on_user_echo(fields: Fields, event: UserMessageEcho, rank: float) -> None:
    payload = event.payload
    client_event_id = (event.metadata.client_event_id if event.metadata else None) or None
    # Resends of one message share a client_event_id: they are one message, shown once.
    if client_event_id is not None:
        key = f"client:{client_event_id}"  # Conversation.echoes and .delivered read these
    elif payload.message_id:
        key = f"user:{payload.message_id}"
    else:
        key = _event_key(Role.USER, event, rank)
    _whole(fields, key, Role.USER, rank, event, client_event_id)


def _on_system(fields: Fields, event: SystemMessage, rank: float) -> None:
    payload = event.payload
    hint = hint_for(payload.message)
    if payload.is_error:
        # An error answers in place of the reply (e.g. "high load"): nobody is composing now.
        fields["agent_output_rank"] = max(fields["agent_output_rank"], rank)
        fields["live_output_rank"] = max(fields["live_output_rank"], rank)
        if hint is SystemHint.REJOIN:
            _set_fact(fields, "rejoin", rank, None)
    if event.sequence is None:
        notice = Notice(payload.level, payload.message, hint)
        fields["notices"] = (*fields["notices"], notice)[-NOTICE_MEMORY:]
        return
    _whole(fields, _event_key(Role.SYSTEM, event, rank), Role.SYSTEM, rank, event)


# --- facts ------------------------------------------------------------------------------------

_Handler = Callable[[Fields, Any, float], None]


def _on_agent_joined(fields: Fields, event: PolyAgentJoined, rank: float) -> None:
    agent = Agent(name=event.payload.agent_name, avatar_url=event.payload.avatar)
    _set_fact(fields, "agent", rank, agent)


def _on_thinking(fields: Fields, event: PolyAgentThinking, rank: float) -> None:
    if rank > fields["thinking_rank"]:  # noqa: PLR1730 (max() is a call; once per event)
        fields["thinking_rank"] = rank


def _on_join_requested(fields: Fields, event: PolyAgentJoinRequested, rank: float) -> None:
    _set_fact(fields, "join_requested", rank, None)


def _on_live_typing(fields: Fields, event: LiveAgentTyping, rank: float) -> None:
    fields["live_typing"] = _latest(fields["live_typing"], rank, event.payload.state)


def _set_fact(fields: Fields, name: str, rank: float, value: Any) -> None:
    facts = fields["facts"]
    fields["facts"] = facts.set(name, _latest(facts.get(name), rank, value))


def _setter(name: str, value: Callable[[Any], Any]) -> _Handler:
    def handler(fields: Fields, event: Any, rank: float) -> None:
        _set_fact(fields, name, rank, value(event))

    return handler


_HANDLERS: dict[type[Any], _Handler] = {
    PolyAgentMessage: _on_agent_message,
    PolyAgentMessageChunk: _on_chunk,
    LiveAgentMessage: _on_live_message,
    UserMessageEcho: _on_user_echo,
    SystemMessage: _on_system,
    PolyAgentJoined: _on_agent_joined,
    PolyAgentThinking: _on_thinking,
    PolyAgentJoinRequested: _on_join_requested,
    LiveAgentTyping: _on_live_typing,
    LiveAgentJoined: _setter("live_agent", lambda e: e.payload.live_agent),
    PolyAgentLeft: _setter("agent_left", lambda e: e.payload.reason),
    LiveAgentLeft: _setter("live_agent_left", lambda e: e.payload.reason),
    SessionStart: _setter("capabilities", lambda e: e.payload.capabilities),
    HandoffQueueStatus: _setter("queue", lambda e: e.payload),
    LanguageChanged: _setter("language", lambda e: e.payload.language_code),
    ClientHandoffRequired: _setter("client_handoff", lambda e: e.payload),
    SessionEnd: _setter("end", lambda e: e.payload.reason),
}

_NO_RULE: tuple[_Handler | None, str | None] = (None, None)
_RULES: dict[type[Any], tuple[_Handler | None, str | None]] = {
    cls: (_HANDLERS.get(cls), cls.TYPE if cls.TYPE in PHASE_TRIGGERS else None)
    for cls in KNOWN_TYPES.values()
}
_RULES[UnknownEvent] = _NO_RULE
"""Per event class (every one the decoder makes): its fact handler and, if it moves the phase,
its trigger (one lookup)."""

_INERT = frozenset(
    cls
    for cls, rule in _RULES.items()
    if rule == _NO_RULE and cls is not EventBatch and cls is not UnknownEvent
)
"""Event classes that record nothing unless they carry an id or a sequence."""
