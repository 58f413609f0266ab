"""The timers of every session on one trio run: one system task sleeping until the earliest.

Trio has no ``call_at``: a timer is a task sleeping in a cancel scope. One such task per session
held a task, its coroutines and a cancel scope a cycle for every idle session, and every one of
those objects was walked by each full collection of the garbage collector. Here every session of
the run has an :class:`Alarm` in one heap, and one task (a system task, since no session's
nursery outlives the others) sleeps until the earliest, runs the alarms due, and sleeps again.
It runs only while some session is open, and is gone when the last one has closed.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable

import trio

__all__ = ["Alarm", "alarm"]


class Alarm:
    """One session's timer: ``fire`` is called (in the context the alarm was made in) once
    the trio time set with :meth:`set` has come."""

    __slots__ = ("_context", "_fire", "_timers", "at", "index")

    def __init__(self, timers: _Timers, fire: Callable[[], object]) -> None:
        self._timers = timers
        self._fire: Callable[[], object] | None = fire
        self._context = contextvars.copy_context()
        self.at: float | None = None
        """When it fires next, in trio time (``None``: not set)."""
        self.index = -1
        """Where it sits in the timers' heap (-1: not in it)."""

    def set(self, at: float | None) -> None:
        """Fire at ``at`` (trio time) rather than when it was set for; ``None``: never."""
        if at == self.at:
            return
        self.at = at
        if self._fire is not None:
            self._timers.place(self)

    async def release(self) -> None:
        """Never fire again; the last alarm of the run waits until the timers' task is gone."""
        if self._fire is not None:
            self._fire = None
            self.at = None
            self._timers.place(self)
            await self._timers.release()

    def _run(self) -> None:
        fire = self._fire
        if fire is not None:
            self._context.run(fire)


class _Timers:
    """The heap of alarms and the task that runs them (see the module docstring).

    The heap holds the alarms themselves, each knowing its place, so that setting one moves
    it in place: a heartbeat re-arms its session's alarm, and an entry made per setting
    (``heapq``'s tuples) lived until it came up, long enough to be promoted by the garbage
    collector, for every heartbeat of every session.
    """

    def __init__(self) -> None:
        self._heap: list[Alarm] = []
        self._alarms = 0
        self._sleep: trio.CancelScope | None = None
        self._gone: trio.Event | None = None

    def add(self, fire: Callable[[], object]) -> Alarm:
        self._alarms += 1
        if self._gone is None:
            self._gone = trio.Event()
            trio.lowlevel.spawn_system_task(self._run, name="polyai_messaging timers")
        return Alarm(self, fire)

    def place(self, alarm: Alarm) -> None:
        """Move ``alarm`` to where its time (``alarm.at``) puts it, or out if it has none."""
        heap = self._heap
        at = alarm.at
        index = alarm.index
        if at is None:
            if index >= 0:
                self._remove(index)
            return
        if index < 0:
            alarm.index = len(heap)
            heap.append(alarm)
            self._up(alarm.index)
        else:
            self._up(index)
            self._down(alarm.index)
        sleep = self._sleep
        if sleep is not None and at < sleep.deadline:
            sleep.deadline = at

    def _remove(self, index: int) -> None:
        heap = self._heap
        heap[index].index = -1
        last = heap.pop()
        if index < len(heap):
            heap[index] = last
            last.index = index
            self._up(index)
            self._down(last.index)

    def _up(self, index: int) -> None:
        heap = self._heap
        alarm = heap[index]
        at = alarm.at
        assert at is not None
        while index:
            parent = (index - 1) >> 1
            above = heap[parent]
            if above.at <= at:  # type: ignore[operator]
                break
            heap[index] = above
            above.index = index
            index = parent
        heap[index] = alarm
        alarm.index = index

    def _down(self, index: int) -> None:
        heap = self._heap
        size = len(heap)
        alarm = heap[index]
        at = alarm.at
        assert at is not None
        while True:
            child = 2 * index + 1
            if child >= size:
                break
            right = child + 1
            if right < size and heap[right].at < heap[child].at:  # type: ignore[operator]
                child = right
            below = heap[child]
            if at <= below.at:  # type: ignore[operator]
                break
            heap[index] = below
            below.index = index
            index = child
        heap[index] = alarm
        alarm.index = index

    async def release(self) -> None:
        self._alarms -= 1
        gone = self._gone
        if self._alarms or gone is None:
            return
        _TIMERS.set(_Timers())  # a session opened from now on starts a task of its own
        if self._sleep is not None:
            self._sleep.cancel()
        with trio.CancelScope(shield=True):
            await gone.wait()

    async def _run(self) -> None:
        heap = self._heap
        try:
            while self._alarms:
                first = heap[0].at if heap else None
                with trio.CancelScope(deadline=math.inf if first is None else first) as sleep:
                    self._sleep = sleep
                    await trio.sleep_forever()
                self._sleep = None
                now = trio.current_time()
                due: list[Alarm] = []
                while heap and heap[0].at <= now:  # type: ignore[operator]
                    alarm = heap[0]
                    self._remove(0)
                    alarm.at = None
                    due.append(alarm)
                for alarm in due:  # an alarm set again meanwhile waits for the next round
                    alarm._run()
        finally:
            for alarm in heap:
                alarm.index = -1
            heap.clear()
            gone, self._gone = self._gone, None
            if gone is not None:
                gone.set()


_TIMERS: trio.lowlevel.RunVar[_Timers] = trio.lowlevel.RunVar("polyai_messaging_timers")


def alarm(fire: Callable[[], object]) -> Alarm:
    """A new alarm of the running trio run, calling ``fire`` (which must not raise) when due;
    release it (:meth:`Alarm.release`) when done."""
    try:
        timers = _TIMERS.get()
    except LookupError:
        timers = _Timers()
        _TIMERS.set(timers)
    return timers.add(fire)
