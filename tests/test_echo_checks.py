"""The outbox's echo checks: a persistent heap, so that a send costs O(log n) whatever is
pending, and the due checks come out in order and once."""

from __future__ import annotations

import math

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from polyai_messaging.driver import DeliveryStatus
from polyai_messaging.driver import _checks as checks_module
from polyai_messaging.driver._checks import NO_CHECKS, Check
from polyai_messaging.driver._outbox import Outbox, OutboxEntry

CHECKS = st.lists(
    st.tuples(st.integers(0, 50).map(float), st.integers(0, 10**6), st.text(max_size=3)),
    max_size=60,
)


def counting_melds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on, count the heap's melds (recursive ones included) in the returned cell."""
    melds = [0]
    real = checks_module._meld

    def counting(a: object, b: object) -> object:
        melds[0] += 1
        return real(a, b)  # type: ignore[arg-type]

    monkeypatch.setattr(checks_module, "_meld", counting)
    return melds


@given(CHECKS, st.integers(0, 60))
def test_checks_come_out_in_order_and_every_version_stays_valid(
    checks: list[Check], popped: int
) -> None:
    versions = [NO_CHECKS]
    for check in checks:
        versions.append(versions[-1].pushed(check))
    for count, version in enumerate(versions):
        assert list(version) == sorted(checks[:count])  # old versions are unchanged
        assert len(version) == count
    heap = versions[-1]
    for _ in range(popped):
        heap = heap.without_first()
    assert list(heap) == sorted(checks)[popped:]
    assert list(versions[-1].until(25.0)) == [c for c in sorted(checks) if c[0] <= 25.0]


def test_a_push_costs_log_n_however_many_are_pending(monkeypatch: pytest.MonkeyPatch) -> None:
    heap = NO_CHECKS
    for n in range(8_000):
        heap = heap.pushed((float(n % 97), n, f"c{n}"))
    melds = counting_melds(monkeypatch)
    for n in range(8_000, 8_100):
        heap = heap.pushed((float(n % 97), n, f"c{n}"))
        heap = heap.without_first()
    # A leftist heap's right spine is at most log2(n + 1) long; each meld walks it.
    assert melds[0] <= 100 * 2 * (2 * math.log2(8_100) + 2)


def test_many_pending_messages_a_send_does_not_copy_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """8,000 messages waiting for their echo, then one more: the outbox's index grows by one
    node's path, not by a copy of everything pending (the old sorted tuple was copied)."""
    outbox = Outbox()
    for n in range(8_000):
        outbox = outbox.accept(f"c{n}", f"text {n}", {})
        outbox = outbox.update(_checked(_pending(outbox, f"c{n}"), 5.0 + n))
    melds = counting_melds(monkeypatch)
    outbox = outbox.accept("new", "hello", {})
    outbox = outbox.update(_checked(_pending(outbox, "new"), 9_000.0))
    assert melds[0] <= 2 * (math.log2(8_001) + 2)
    assert outbox.next_check == 5.0


def test_a_check_moved_or_confirmed_is_never_due_and_an_unchanged_one_is_due_once() -> None:
    outbox = Outbox()
    for cid in ("a", "b", "c"):
        outbox = outbox.accept(cid, cid, {})
        outbox = outbox.update(_checked(_pending(outbox, cid), 5.0))
    a, b, c = (_pending(outbox, cid) for cid in "abc")
    outbox = outbox.update(_checked(a, 20.0))  # a's check moves later
    outbox = outbox.update(attrs.evolve(b, status=DeliveryStatus.SENT, next_check=None))
    outbox = outbox.update(attrs.evolve(c, transmissions=2))  # updated, check unchanged
    assert [e.client_event_id for e in outbox.due(10.0)] == ["c"]
    assert [e.client_event_id for e in outbox.due(20.0)] == ["a", "c"]
    assert outbox.next_check == 5.0
    assert outbox.check_times() == [5.0, 20.0]


def _pending(outbox: Outbox, client_event_id: str) -> OutboxEntry:
    entry = outbox.get(client_event_id)
    assert entry is not None
    return entry


def _checked(entry: OutboxEntry, at: float) -> OutboxEntry:
    return attrs.evolve(entry, next_check=at)
