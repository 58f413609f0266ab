"""Reconnect backoff: 1 s doubling to a 30 s cap, with full jitter (a uniform draw below the
nominal delay), which still applies at the cap."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polyai_messaging.driver._backoff import Backoff, draw, random_bits


def nominal(attempt: int) -> float:
    """The protocol's schedule: 1 s, doubling, capped at 30 s."""
    return min(30.0, 2.0 ** min(attempt - 1, 62))


def busiest_window_share(times: list[float], width: float) -> float:
    """The largest share of ``times`` inside any window of ``width`` seconds."""
    ordered = sorted(times)
    start, most = 0, 0
    for end, time in enumerate(ordered):
        while time - ordered[start] >= width:
            start += 1
        most = max(most, end - start + 1)
    return most / len(ordered)


def test_nominal_delays_without_jitter() -> None:
    backoff = Backoff(jitter=0.0)
    assert [backoff.delay(n, 0.5) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


@given(st.integers(1, 10_000), st.floats(0.0, 1.0, exclude_max=True))
def test_delay_never_exceeds_the_schedule(attempt: int, unit: float) -> None:
    delay = Backoff().delay(attempt, unit)
    assert 0.0 < delay <= nominal(attempt) <= 30.0


@pytest.mark.parametrize("attempt", [1, 2, 5, 6, 50])
def test_full_jitter_spans_the_whole_delay(attempt: int) -> None:
    """Any wait from (almost) nothing up to the nominal delay, uniformly: the draw scales it."""
    backoff = Backoff()
    assert backoff.delay(attempt, 0.0) == nominal(attempt)
    assert backoff.delay(attempt, 0.5) == pytest.approx(nominal(attempt) / 2)
    assert backoff.delay(attempt, 0.999) == pytest.approx(nominal(attempt) / 1000)


def test_a_fleet_dropped_at_once_spreads_its_first_reconnects() -> None:
    """1,000 clients that lost the same server at the same instant: no 100 ms holds more than
    15% of their first attempts, and each one is back within the first second."""
    first = [Backoff().delay(1, draw(seed, 0)) for seed in range(1000)]
    assert max(first) <= 1.0
    assert busiest_window_share(first, 0.1) <= 0.15


def test_jitter_still_applies_at_the_cap() -> None:
    backoff = Backoff()
    delays = {backoff.delay(50, draw(1, k)) for k in range(20)}
    assert len(delays) == 20
    assert all(0.0 < d <= 30.0 for d in delays)


def test_partial_jitter_only_shortens_by_its_fraction() -> None:
    backoff = Backoff(jitter=0.2)
    assert backoff.delay(3, 0.0) == 4.0
    assert backoff.delay(3, 0.5) == pytest.approx(3.6)


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


@pytest.mark.parametrize("bits", [1, 53, 128, 130, 512])
def test_random_bits_are_pure_and_as_wide_as_asked(bits: int) -> None:
    values = [random_bits(5, k, bits) for k in range(64)]
    assert values == [random_bits(5, k, bits) for k in range(64)]
    assert all(0 <= value < 1 << bits for value in values)
    assert max(values).bit_length() > bits - 8 or bits == 1
    with pytest.raises(ValueError, match="bits"):
        random_bits(5, 0, 513)
