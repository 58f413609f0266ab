"""The rules of the messages: records, streams and the marks of the transcript's end.

Each rule writes the fields of the conversation being built (see :mod:`._reducer`): a message's
:class:`~._messages.MessageRecord` in ``records``, an open stream's state in ``open_states``,
and the :class:`~._messages.Marks` as records are stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from immutables import Map

from ._conversation import END_CONVERSATION_REASON, NOTICE_MEMORY, Fields
from ._events import (
    LiveAgentMessage,
    PolyAgentMessage,
    PolyAgentMessageChunk,
    ServerEvent,
    SessionEnd,
    SystemMessage,
    UserMessageEcho,
)
from ._fact_rules import _move, _set_fact
from ._messages import (
    Marks,
    MessageRecord,
    Notice,
    Role,
    SystemHint,
    chunk_rank,
    hint_for,
)

__all__ = ["STALE"]

_NO_CHUNKS: Map[int, Any] = Map()
# Builds a MessageRecord from its nine values in order, without NamedTuple's keyword layer.
_new_record: Callable[[type[MessageRecord], tuple[Any, ...]], MessageRecord] = tuple.__new__
_new_marks: Callable[[type[Marks], tuple[Any, ...]], Marks] = tuple.__new__
_State = tuple[Any, ...]
"""A message record as the reducer handles it: a ``MessageRecord``, or an open stream's state
(its items in a plain tuple, see ``Conversation.open_states``). Read by item only."""
STALE = object()
"""``mark_last`` of a conversation being built whose marks must be recounted (see _placed)."""
_USER = Role.USER  # a global: the interpreter does not specialise reading a class attribute


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
        last = fields["mark_last"]
        marks = (last, fields["mark_breaker"], fields["mark_reply"])
        if last is not STALE and any(mark is not None and mark[1] == key for mark in marks):
            # The mark's record moves earlier, so another may now be last: recount (rare).
            fields["mark_last"] = STALE
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
    """Raise the marks (see :class:`Marks`) to ``record`` as stored, where it is greater.

    Each mark is a field of its own (``mark_last``, ``mark_breaker``, ``mark_reply``): only a
    mark that moves is written, and no ``Marks`` is built."""
    last = fields["mark_last"]
    if last is STALE:
        return  # recounted at the end of apply
    # Items, not names: see _on_chunk (the record's key, role and rank).
    key, role, rank = record[0], record[1], record[2]
    point = (rank, key)
    if last is None or point > last:
        fields["mark_last"] = point
    elif role is _USER:
        return  # the usual case for a user message: not the last, and it marks nothing else
    elif complete is False:
        breaker = fields["mark_breaker"]
        if breaker is not None and point <= breaker:
            return  # the usual case for a stream's next chunk: it raises nothing
    if role is not _USER:
        breaker = fields["mark_breaker"]
        if breaker is None or point > breaker:
            fields["mark_breaker"] = point
        if complete:
            # A sequenced message ranks by its sequence; a live one between two (x.5).
            scored = (rank if rank == int(rank) else 0, key)
            reply = fields["mark_reply"]
            if reply is None or scored > reply:
                fields["mark_reply"] = scored


def _recount(fields: Fields) -> Marks:
    """The marks counted afresh from every record."""
    marks_fields: Fields = {"mark_last": None, "mark_breaker": None, "mark_reply": None}
    for record in fields["records"].values():
        _mark(marks_fields, record, complete=True)
    for record in fields["open_states"].values():
        _mark(marks_fields, record, complete=False)
    return _new_marks(
        Marks, (marks_fields["mark_last"], marks_fields["mark_breaker"], marks_fields["mark_reply"])
    )


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
