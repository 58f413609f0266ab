"""``apply(conversation, event) -> conversation``: the pure, total fold of server events.

Rules, in the order they are applied to each event:

1. A batch is flattened: its inner events are applied one by one, its rejected elements recorded.
2. De-duplication. A sequenced event whose ``id`` or ``sequence`` is already journaled is
   dropped. A transient event whose ``id`` was seen recently is dropped (bounded memory).
3. Journal, cursor and gaps: every sequenced event (unknown types too) is journaled; the cursor
   is the highest sequence; gaps are the missing ranges below it.
4. Facts: each known type updates its facts, "latest by rank" (see :mod:`.conversation`).

Nothing here depends on arrival order except the transient parts (indicators, notices) and the
diagnostics (``duplicates_dropped``, ``protocol_errors``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs
from immutables import Map

from .conversation import (
    NOTICE_MEMORY,
    TRANSIENT_ID_MEMORY,
    Agent,
    Conversation,
    MessageRecord,
    Notice,
    Role,
    hint_for,
)
from .events import (
    ClientHandoffRequired,
    EventBatch,
    HandoffQueueStatus,
    LanguageChanged,
    LiveAgentJoined,
    LiveAgentMessage,
    LiveAgentTyping,
    PolyAgentJoined,
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
from .phases import PHASE_TRIGGERS, Phase, destination

__all__ = ["apply", "fold"]

_PROTOCOL_ERROR_MEMORY = 100


def fold(events: Iterable[ServerEvent], conversation: Conversation | None = None) -> Conversation:
    """Apply ``events`` in order, starting from ``conversation`` (or an empty one)."""
    state = conversation if conversation is not None else Conversation()
    for event in events:
        state = apply(state, event)
    return state


def apply(conversation: Conversation, event: ServerEvent) -> Conversation:
    """Fold one decoded server event into the conversation. Pure and total."""
    if type(event) is EventBatch:
        return _apply_batch(conversation, event)
    sequence = event.sequence
    event_id = event.id
    changes: dict[str, Any] = {}
    if sequence is not None:
        journal = conversation.journal
        if sequence in journal:
            return _duplicate(conversation, event, journal[sequence].id)
        if event_id is not None and event_id in conversation.ids:
            return _duplicate(conversation, event, event_id)
        changes["journal"] = journal.set(sequence, event)
        if event_id is not None:
            changes["ids"] = conversation.ids.set(event_id, sequence)
        cursor = conversation.cursor
        if sequence > cursor:
            if sequence > cursor + 1 and cursor >= 0:
                changes["gaps"] = (*conversation.gaps, (max(cursor + 1, 1), sequence - 1))
            changes["cursor"] = sequence
        elif conversation.gaps:
            changes["gaps"] = _fill(conversation.gaps, sequence)
        if type(event) is not UnknownEvent:
            changes["events_applied"] = conversation.events_applied + 1
        rank = float(sequence)
    else:
        if event_id is not None:
            recent = conversation.recent_transient_ids
            if event_id in recent or event_id in conversation.older_transient_ids:
                return _duplicate(conversation, event, None)
            if len(recent) >= TRANSIENT_ID_MEMORY:
                changes["older_transient_ids"] = recent
                recent = Map()
            changes["recent_transient_ids"] = recent.set(event_id, None)
        # Unsequenced events are live: they rank just above everything received so far.
        rank = conversation.cursor + 0.5
    handler = _HANDLERS.get(type(event))
    if handler is not None:
        handler(conversation, event, rank, changes)
    kind = getattr(event, "TYPE", None)
    if kind in PHASE_TRIGGERS:
        _phase(conversation, kind, rank, changes)
    return conversation._replace(**changes)


def _apply_batch(conversation: Conversation, batch: EventBatch) -> Conversation:
    state = conversation
    if batch.rejected:
        state = _record_errors(state, (str(error) for error in batch.rejected))
    for inner in batch.events:
        state = apply(state, inner)
    return state


def _duplicate(
    conversation: Conversation, event: ServerEvent, known_id: str | None
) -> Conversation:
    changes: dict[str, Any] = {"duplicates_dropped": conversation.duplicates_dropped + 1}
    if event.sequence is not None and known_id != event.id:
        changes["protocol_errors"] = _bounded(
            conversation.protocol_errors,
            (f"conflicting duplicate: id {event.id!r} at sequence {event.sequence}",),
        )
    return conversation._replace(**changes)


def _record_errors(conversation: Conversation, errors: Iterable[str]) -> Conversation:
    return conversation._replace(
        protocol_errors=_bounded(conversation.protocol_errors, tuple(errors))
    )


def _bounded(existing: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    return (*existing, *new)[-_PROTOCOL_ERROR_MEMORY:]


def _fill(gaps: tuple[tuple[int, int], ...], sequence: int) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for first, last in gaps:
        if first <= sequence <= last:
            if first < sequence:
                out.append((first, sequence - 1))
            if sequence < last:
                out.append((sequence + 1, last))
        else:
            out.append((first, last))
    return tuple(out)


def _phase(conversation: Conversation, trigger: str, rank: float, changes: dict[str, Any]) -> None:
    changes["phase_events"] = conversation.phase_events.set(rank, trigger)
    dest = destination(trigger)
    if conversation.phase is Phase.ENDED or dest is None:
        return
    if dest is Phase.ENDED or rank > conversation.phase_rank:
        changes["phase"] = dest
        changes["phase_rank"] = rank


def _latest(current: tuple[float, Any] | None, rank: float, value: Any) -> tuple[float, Any] | None:
    if current is not None and current[0] > rank:
        return current
    return (rank, value)


# --- handlers: one per event type that carries facts ------------------------------------------

_Handler = Callable[[Conversation, Any, float, dict[str, Any]], None]


def _record(
    conversation: Conversation,
    changes: dict[str, Any],
    key: str,
    role: Role,
    rank: float,
    update: Callable[[MessageRecord], MessageRecord],
    event: ServerEvent,
) -> MessageRecord:
    records = changes.get("records", conversation.records)
    record = records.get(key)
    if record is None:
        record = MessageRecord(key=key, role=role, rank=rank, timestamp=event.timestamp)
    elif rank < record.rank:
        record = attrs.evolve(record, rank=rank, timestamp=event.timestamp or record.timestamp)
    record = update(record)
    changes["records"] = records.set(key, record)
    return record


def _set_whole(payload: Any, rank: float, **extra: Any) -> Callable[[MessageRecord], MessageRecord]:
    def update(record: MessageRecord) -> MessageRecord:
        if record.whole is not None and record.whole[0] <= rank:
            return record
        return attrs.evolve(record, whole=(rank, payload), **extra)

    return update


def _event_key(event: ServerEvent, rank: float) -> str:
    if event.id is not None:
        return f"event:{event.id}"
    return f"rank:{rank}"


def _on_agent_message(
    conversation: Conversation, event: PolyAgentMessage, rank: float, changes: dict[str, Any]
) -> None:
    payload = event.payload
    _record(
        conversation,
        changes,
        payload.message_id,
        Role.AGENT,
        rank,
        _set_whole(payload, rank),
        event,
    )
    changes["agent_output_rank"] = max(conversation.agent_output_rank, rank)


def _on_chunk(
    conversation: Conversation, event: PolyAgentMessageChunk, rank: float, changes: dict[str, Any]
) -> None:
    chunk = event.payload

    def add(record: MessageRecord) -> MessageRecord:
        known = record.chunks.get(chunk.chunk_index)
        # A replayed chunk index keeps the lowest-ranked copy, so arrival order is irrelevant.
        if known is not None and known[0] <= rank:
            return record
        final = record.final_index
        if chunk.is_complete and (final is None or chunk.chunk_index < final):
            final = chunk.chunk_index
        return attrs.evolve(
            record, chunks=record.chunks.set(chunk.chunk_index, (rank, chunk)), final_index=final
        )

    _record(conversation, changes, chunk.message_id, Role.AGENT, rank, add, event)
    changes["agent_output_rank"] = max(conversation.agent_output_rank, rank)


def _on_live_message(
    conversation: Conversation, event: LiveAgentMessage, rank: float, changes: dict[str, Any]
) -> None:
    payload = event.payload
    _record(
        conversation,
        changes,
        payload.message_id,
        Role.LIVE_AGENT,
        rank,
        _set_whole(payload, rank),
        event,
    )
    changes["live_output_rank"] = max(conversation.live_output_rank, rank)


def _on_user_echo(
    conversation: Conversation, event: UserMessageEcho, rank: float, changes: dict[str, Any]
) -> None:
    payload = event.payload
    client_event_id = event.metadata.client_event_id if event.metadata else None
    # Resends of one message share a client_event_id: they are one message, shown once.
    if client_event_id is not None:
        key = f"client:{client_event_id}"
    else:
        key = payload.message_id or _event_key(event, rank)
    _record(
        conversation,
        changes,
        key,
        Role.USER,
        rank,
        _set_whole(payload, rank, client_event_id=client_event_id),
        event,
    )
    if client_event_id is not None and client_event_id not in conversation.echoes:
        changes["echoes"] = conversation.echoes.set(client_event_id, key)


def _on_system(
    conversation: Conversation, event: SystemMessage, rank: float, changes: dict[str, Any]
) -> None:
    payload = event.payload
    if event.sequence is None:
        notice = Notice(payload.level, payload.message, hint_for(payload.message))
        changes["notices"] = (*conversation.notices, notice)[-NOTICE_MEMORY:]
        return
    _record(
        conversation,
        changes,
        _event_key(event, rank),
        Role.SYSTEM,
        rank,
        _set_whole(payload, rank),
        event,
    )


def _on_agent_joined(
    conversation: Conversation, event: PolyAgentJoined, rank: float, changes: dict[str, Any]
) -> None:
    agent = Agent(name=event.payload.agent_name, avatar_url=event.payload.avatar)
    changes["agent_info"] = _latest(conversation.agent_info, rank, agent)


def _on_live_joined(
    conversation: Conversation, event: LiveAgentJoined, rank: float, changes: dict[str, Any]
) -> None:
    live = event.payload.live_agent
    changes["live_agent_info"] = _latest(conversation.live_agent_info, rank, live)


def _on_live_typing(
    conversation: Conversation, event: LiveAgentTyping, rank: float, changes: dict[str, Any]
) -> None:
    changes["live_typing"] = _latest(conversation.live_typing, rank, event.payload.state)


def _on_thinking(
    conversation: Conversation, event: PolyAgentThinking, rank: float, changes: dict[str, Any]
) -> None:
    changes["thinking_rank"] = max(conversation.thinking_rank, rank)


def _setter(field: str, value: Callable[[Any], Any]) -> _Handler:
    def handler(
        conversation: Conversation, event: Any, rank: float, changes: dict[str, Any]
    ) -> None:
        changes[field] = _latest(getattr(conversation, field), rank, value(event))

    return handler


_HANDLERS: dict[type[Any], _Handler] = {
    PolyAgentMessage: _on_agent_message,
    PolyAgentMessageChunk: _on_chunk,
    LiveAgentMessage: _on_live_message,
    UserMessageEcho: _on_user_echo,
    SystemMessage: _on_system,
    PolyAgentJoined: _on_agent_joined,
    LiveAgentJoined: _on_live_joined,
    LiveAgentTyping: _on_live_typing,
    PolyAgentThinking: _on_thinking,
    SessionStart: _setter("capabilities_info", lambda e: e.payload.capabilities),
    HandoffQueueStatus: _setter("queue_info", lambda e: e.payload),
    LanguageChanged: _setter("language_info", lambda e: e.payload.language_code),
    ClientHandoffRequired: _setter("client_handoff_info", lambda e: e.payload),
    SessionEnd: _setter("end_info", lambda e: e.payload.reason),
}
