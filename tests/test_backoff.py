"""Reconnect backoff (protocol §15): 1 s doubling to a 30 s cap, jitter that applies at the cap."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polyai_messaging.driver._backoff import Backoff, draw


def test_nominal_delays_without_jitter() -> None:
    backoff = Backoff(jitter=0.0)
    assert [backoff.delay(n, 0.5) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


@given(st.integers(1, 10_000), st.floats(0.0, 1.0, exclude_max=True))
def test_delay_bounds(attempt: int, unit: float) -> None:
    backoff = Backoff()
    nominal = min(30.0, 2.0 ** min(attempt - 1, 62))
    delay = backoff.delay(attempt, unit)
    assert 0.8 * nominal <= delay <= nominal <= 30.0


def test_jitter_still_applies_at_the_cap() -> None:
    backoff = Backoff()
    delays = {backoff.delay(50, draw(1, k)) for k in range(20)}
    assert len(delays) == 20
    assert all(24.0 <= d <= 30.0 for d in delays)


def test_attempt_is_one_based() -> None:
    with pytest.raises(ValueError, match="1-based"):
        Backoff().delay(0, 0.5)


@pytest.mark.parametrize("jitter", [-0.1, 1.5])
def test_jitter_validated(jitter: float) -> None:
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=jitter)


def test_draw_is_pure_and_seeded() -> None:
    assert draw(3, 5) == draw(3, 5)
    assert draw(3, 5) != draw(4, 5)
    assert draw(3, 5) != draw(3, 6)
    assert all(0.0 <= draw(9, k) < 1.0 for k in range(100))
