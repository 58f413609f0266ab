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


async def test_moving_an_alarm_allocates_nothing_the_collector_tracks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A heartbeat re-arms its session's alarm: an entry made per setting lived until it came
    # up, long enough to be promoted by the garbage collector, for every session.
    start = trio.current_time()
    alarms = [alarm(lambda: None) for _ in range(50)]
    for n, each in enumerate(alarms):
        each.set(start + 100 + n)
    gc.disable()
    try:
        before = gc.get_count()[0]
        for step in range(1, 21):
            for n, each in enumerate(alarms):
                each.set(start + 100 + (n * 7 + step * 13) % 50)
        grown = gc.get_count()[0] - before
    finally:
        gc.enable()
    assert grown < 10
    for each in alarms:
        await each.release()


@given(st.lists(st.tuples(st.integers(0, 7), st.none() | st.integers(0, 40)), max_size=60))
def test_alarms_come_up_in_time_order_at_their_latest_setting(
    settings_: list[tuple[int, int | None]],
) -> None:
    timers = _Timers()
    alarms = [Alarm(timers, lambda: None) for _ in range(8)]
    latest: dict[int, int | None] = {}
    for which, at in settings_:
        alarms[which].set(None if at is None else float(at))
        latest[which] = at
    heap = timers._heap
    assert all(entry.index == place for place, entry in enumerate(heap))
    assert sorted(id(entry) for entry in heap) == sorted(
        id(alarms[which]) for which, at in latest.items() if at is not None
    )
    popped = []
    while heap:
        first = heap[0]
        timers._remove(0)
        assert first.index == -1
        popped.append(first.at)
    assert popped == sorted(at for at in latest.values() if at is not None)
