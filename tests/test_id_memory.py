"""``IdMemory``: every version of a conversation remembers exactly the ids it remembered before."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from polyai_messaging.core import RECENT_ID_MEMORY, Conversation, ServerEvent
from polyai_messaging.core import _reducer as reducer
from polyai_messaging.core import _wire as wire


def typing_event(n: int) -> ServerEvent:
    return wire.decode_object(
        {"type": "EVENT_TYPE_LIVE_AGENT_TYPING", "id": f"t{n}", "payload": {"state": "x"}}
    )


EVENTS = [typing_event(n) for n in range(4 * RECENT_ID_MEMORY)]


def model_add(
    model: tuple[frozenset[str], frozenset[str]], event_id: str
) -> tuple[frozenset[str], frozenset[str]]:
    """The two generations of ids as they were held before (persistent sets)."""
    older, recent = model
    if event_id in older or event_id in recent:
        return model
    if len(recent) >= RECENT_ID_MEMORY:
        older, recent = recent, frozenset()
    return older, recent | {event_id}


@given(
    st.lists(
        st.tuples(st.integers(min_value=0), st.integers(0, len(EVENTS) - 1)),
        max_size=3 * RECENT_ID_MEMORY,
    )
)
def test_every_version_remembers_what_it_remembered_whatever_is_folded_later(
    operations: list[tuple[int, int]],
) -> None:
    """A model check: each event extends some earlier version (mostly the newest, sometimes an
    older one, which forks), across generations; every version's remembered ids must be what
    the two-generation model gives, and an id is a duplicate exactly when remembered."""
    versions: list[tuple[Conversation, Any]] = [(Conversation(), (frozenset(), frozenset()))]
    for pick, item in operations:
        conversation, model = versions[-1] if pick % 5 else versions[pick % len(versions)]
        event = EVENTS[item]
        was_known = event.id in model[0] or event.id in model[1]
        after = reducer.apply(conversation, event)
        assert after.duplicates_dropped - conversation.duplicates_dropped == was_known
        versions.append((after, model_add(model, event.id)))
    for conversation, (older, recent) in versions:
        assert set(conversation.older_ids) == older
        assert set(conversation.recent_ids) == recent
        assert len(conversation.recent_ids) <= RECENT_ID_MEMORY


def test_the_newest_version_extends_one_shared_memory_in_place() -> None:
    """Adding an id to the newest version copies no id until a generation fills up."""
    conversation = Conversation()
    memories = []  # held, so that no two have the same id()
    for event in EVENTS[: 3 * RECENT_ID_MEMORY]:
        conversation = reducer.apply(conversation, event)
        memories.append(conversation.id_memory)
    # one memory per generation: 3 generations of ids
    assert len({id(memory) for memory in memories}) == 3
    assert len(conversation.id_memory.ids) == 2 * RECENT_ID_MEMORY
    # a fork copies, and leaves the newest version's memory alone
    older = reducer.fold(EVENTS[:10])
    newer = reducer.apply(older, EVENTS[10])
    forked = reducer.apply(older, EVENTS[11])
    assert forked.id_memory is not older.id_memory
    assert newer.id_memory is older.id_memory
    assert set(forked.recent_ids) == {e.id for e in [*EVENTS[:10], EVENTS[11]]}
    assert set(newer.recent_ids) == {e.id for e in EVENTS[:11]}
