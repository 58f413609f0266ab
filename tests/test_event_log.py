"""``EventLog``: every version keeps its contents, whatever is appended to which version."""

from __future__ import annotations

import pickle
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polyai_messaging.core import Conversation, ServerEvent
from polyai_messaging.core import _reducer as reducer
from polyai_messaging.core import _wire as wire
from polyai_messaging.core._history import BLOCK, EventLog


def event(n: int) -> ServerEvent:
    return wire.decode_object(
        {"type": "EVENT_TYPE_POLY_AGENT_THINKING", "id": f"e{n}", "sequence": n}
    )


EVENTS = [event(n) for n in range(40)]


@given(
    st.integers(0, 2 * BLOCK + 1),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 39)), max_size=3 * BLOCK),
)
def test_every_version_keeps_its_events_whatever_is_appended_later(
    start: int, operations: list[tuple[int, int]]
) -> None:
    """A model check: each operation extends some earlier version (mostly the newest, sometimes
    an older one, which forks), across sealed blocks, and every version must still hold exactly
    what it held; ``since`` finds what a later version added to an earlier one."""
    first = [EVENTS[n % 40] for n in range(start)]
    versions: list[tuple[EventLog, list[ServerEvent]]] = [(EventLog(first), first)]
    for pick, item in operations:
        log, expected = versions[-1] if pick % 5 else versions[pick % len(versions)]
        versions.append((log.append(EVENTS[item]), [*expected, EVENTS[item]]))
    for log, expected in versions:
        assert list(log) == expected
        assert len(log) == len(expected)
        assert [log[i] for i in range(-len(log), len(log))] == expected + expected
        assert list(log[1:70]) == expected[1:70]
    newest, newest_expected = versions[-1]
    for log, expected in versions:
        added = newest.since(log)
        if added is not None:  # only when ``newest`` extends ``log``
            assert newest_expected[: len(expected)] == expected
            assert list(added) == newest_expected[len(expected) :]


def test_since_follows_a_line_across_sealed_blocks() -> None:
    log = EventLog()
    lineage = [log]
    for n in range(3 * BLOCK + 5):
        log = log.append(EVENTS[n % 40])
        lineage.append(log)
    for n, earlier in enumerate(lineage):
        assert len(log.since(earlier) or ()) == len(log) - n


def test_since_gives_what_was_appended_to_the_same_line() -> None:
    start = EventLog().append(EVENTS[0])
    later = start.append(EVENTS[1]).append(EVENTS[2])
    assert list(later.since(start) or ()) == EVENTS[1:3]
    assert list(later.since(later) or ()) == []
    assert list(later.since(EventLog()) or ()) == EVENTS[:3]
    fork = start.append(EVENTS[9])
    assert later.since(fork) is None  # a fork: not an extension of ``fork``
    assert list(fork) == [EVENTS[0], EVENTS[9]]


def test_a_long_log_pickles_flat_and_compares_by_content() -> None:
    log = EventLog()
    for n in range(20_000):
        log = log.append(EVENTS[n % 40])
    copy = pickle.loads(pickle.dumps(log))
    assert copy == log
    assert copy != log.append(EVENTS[0])
    assert repr(log) == "<EventLog of 20000 events>"
    with pytest.raises(TypeError):
        hash(log)
    with pytest.raises(IndexError):
        log[20_000]


def test_concurrent_appends_to_one_version_never_mix() -> None:
    base = EventLog([EVENTS[0]])
    results: dict[int, EventLog] = {}
    barrier = threading.Barrier(8)

    def extend(worker: int) -> None:
        barrier.wait()
        log = base
        for _ in range(200):
            log = log.append(EVENTS[worker])
        results[worker] = log

    threads = [threading.Thread(target=extend, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert list(base) == [EVENTS[0]]
    for worker, log in results.items():
        assert list(log) == [EVENTS[0]] + [EVENTS[worker]] * 200


def test_a_fold_writes_the_log_in_place_and_makes_no_log_object() -> None:
    """Folding the newest conversation appends to the store its versions share: a new store only
    when a block seals (or a version forks), so a fold builds no log object of its own."""
    conversation = Conversation()
    stores = []
    for n in range(1, 3 * BLOCK + 1):
        conversation = reducer.apply(conversation, event(n))
        stores.append(conversation.log_store)
    assert len({id(store) for store in stores}) == 3  # one per block: the first, two seals
    assert list(conversation.log) == [event(n) for n in range(1, 3 * BLOCK + 1)]
    older = reducer.fold([event(n) for n in range(1, 5)])
    newer = reducer.apply(older, event(5))
    forked = reducer.apply(older, event(9))
    assert newer.log_store is older.log_store
    assert forked.log_store is not older.log_store
    assert [e.sequence for e in older.log] == [1, 2, 3, 4]
    assert [e.sequence for e in newer.log] == [1, 2, 3, 4, 5]
    assert [e.sequence for e in forked.log] == [1, 2, 3, 4, 9]
    assert newer.log.since(older.log) == [event(5)]
    assert forked.log.since(newer.log) is None
