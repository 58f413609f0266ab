"""The trio adapter's shared timers: every session's alarm in one heap, run by one task that
lives only while some alarm is held."""

from __future__ import annotations

import gc

import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from polyai_messaging.trio._timers import Alarm, _Timers, alarm


def _timer_tasks() -> int:
    """The running tasks of the shared timers."""
    pending, found = [trio.lowlevel.current_root_task()], 0
    while pending:
        task = pending.pop()
        found += task.name == "polyai_messaging timers"
        pending += [child for nursery in task.child_nurseries for child in nursery.child_tasks]
    return found


async def test_alarms_fire_once_each_at_their_latest_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fired: list[tuple[str, float]] = []
    start = trio.current_time()

    def firing(name: str) -> None:
        fired.append((name, trio.current_time() - start))

    a = alarm(lambda: firing("a"))
    b = alarm(lambda: firing("b"))
    c = alarm(lambda: firing("c"))
    a.set(start + 3)
    b.set(start + 1)
    c.set(start + 2)
    b.set(start + 4)  # moved later: its first time passes without it
    c.set(None)  # disarmed
    a.set(start + 3)  # set again for the same time: still once
    await trio.sleep(5)
    assert fired == [("a", 3), ("b", 4)]
    c.set(start + 6)
    b.set(start + 7)
    await b.release()  # released: never fires again
    await trio.sleep(5)
    assert fired == [("a", 3), ("b", 4), ("c", 6)]
    assert _timer_tasks() == 1
    await a.release()
    await c.release()
    assert _timer_tasks() == 0  # gone with the last alarm


async def test_an_alarm_set_while_firing_waits_for_its_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    times: list[float] = []
    start = trio.current_time()

    def fire() -> None:
        times.append(trio.current_time() - start)
        if len(times) < 3:
            repeating.set(trio.current_time() + 2)

    repeating = alarm(fire)
    repeating.set(start + 1)
    await trio.sleep(10)
    await repeating.release()
    assert times == [1, 3, 5]


async def test_a_session_opened_after_the_last_closed_gets_a_timer_task_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fired: list[str] = []
    first = alarm(lambda: fired.append("first"))
    await first.release()
    assert _timer_tasks() == 0
    second = alarm(lambda: fired.append("second"))
    second.set(trio.current_time() + 1)
    await trio.sleep(2)
    assert fired == ["second"]
    await second.release()
    assert _timer_tasks() == 0


def test_re_arming_a_fired_alarm_allocates_nothing_the_collector_tracks() -> None:
    # A heartbeat re-arms its session's alarm once it has fired: an entry made per setting
    # lived until it came up, long enough to be promoted by the garbage collector.
    timers = _Timers()
    alarms = [Alarm(timers, lambda: None) for _ in range(50)]
    for n, each in enumerate(alarms):
        each.set(float(n))
    now = 49.0
    assert len(timers.due(now)) == 50
    gc.disable()
    try:
        before = gc.get_count()[0]
        for _ in range(20):
            now += 50.0
            for n, each in enumerate(alarms):
                each.set(now - n)
            assert len(timers.due(now)) == 50
        grown = gc.get_count()[0] - before
    finally:
        gc.enable()
    assert grown < 10


@given(
    st.lists(
        st.one_of(
            st.tuples(st.integers(0, 7), st.none() | st.integers(0, 40)),
            st.integers(0, 40),
        ),
        max_size=60,
    )
)
def test_alarms_come_up_once_each_in_time_order_at_their_latest_setting(
    steps: list[tuple[int, int | None] | int],
) -> None:
    timers = _Timers()
    alarms = [Alarm(timers, lambda: None) for _ in range(8)]
    pending: dict[int, tuple[int, int]] = {}  # alarm: (time, when it was set)
    for order, step in enumerate(steps):
        if isinstance(step, tuple):
            which, at = step
            alarms[which].set(None if at is None else float(at))
            if at is None:
                pending.pop(which, None)
            elif pending.get(which, (None,))[0] != at:
                pending[which] = (at, order)
            continue
        expected = {which for which, (at, _) in pending.items() if at <= step}
        due = timers.due(float(step))
        times = [alarm.at for alarm in due]
        assert times == [None] * len(due)  # each taken once, no longer set
        assert sorted(alarms.index(alarm) for alarm in due) == sorted(expected)
        came = [pending[alarms.index(alarm)][0] for alarm in due]
        assert came == sorted(came)  # earliest first
        for which in expected:
            del pending[which]
