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
import heapq
import math
from collections.abc import Callable
from itertools import count
from typing import Any

import trio

__all__ = ["Alarm", "alarm"]


class Alarm:
    """One session's timer: ``fire`` is called (in the context the alarm was made in) once
    the trio time set with :meth:`set` has come."""

    __slots__ = ("_context", "_fire", "_spare", "_timers", "at")

    def __init__(self, timers: _Timers, fire: Callable[[], object]) -> None:
        self._timers = timers
        self._fire: Callable[[], object] | None = fire
        self._context = contextvars.copy_context()
        self._spare: _Entry | None = None
        """A heap entry of this alarm's that has come up, to be used for its next setting."""
        self.at: float | None = None
        """When it fires next, in trio time (``None``: not set)."""

    def set(self, at: float | None) -> None:
        """Fire at ``at`` (trio time) rather than when it was set for; ``None``: never."""
        if at == self.at:
            return
        self.at = at
        if at is not None and self._fire is not None:
            self._timers.push(at, self)

    async def release(self) -> None:
        """Never fire again; the last alarm of the run waits until the timers' task is gone."""
        if self._fire is not None:
            self._fire = None
            self.at = None
            self._spare = None  # it refers back to the alarm
            await self._timers.release()

    def _run(self) -> None:
        fire = self._fire
        if fire is not None:
            self._context.run(fire)


_Entry = list[Any]
"""``[at, order, alarm]``: a heap entry, ordered by time, then by when it was pushed."""


class _Timers:
    """The heap of alarms and the task that runs them (see the module docstring).

    An alarm set again leaves its former entry in the heap; when that entry comes up it is
    skipped, as the alarm is no longer set for that time. An entry that has come up is kept by
    its alarm for its next setting: a heartbeat re-arms its session's alarm once it has fired,
    and an entry made per setting lived until it came up, long enough to be promoted by the
    garbage collector, for every heartbeat of every session.
    """

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._order = count()
        self._alarms = 0
        self._sleep: trio.CancelScope | None = None
        self._gone: trio.Event | None = None

    def add(self, fire: Callable[[], object]) -> Alarm:
        self._alarms += 1
        if self._gone is None:
            self._gone = trio.Event()
            trio.lowlevel.spawn_system_task(self._run, name="polyai_messaging timers")
        return Alarm(self, fire)

    def push(self, at: float, alarm: Alarm) -> None:
        entry = alarm._spare
        if entry is None:
            entry = [at, next(self._order), alarm]
        else:
            alarm._spare = None
            entry[0] = at
            entry[1] = next(self._order)
        heapq.heappush(self._heap, entry)
        sleep = self._sleep
        if sleep is not None and at < sleep.deadline:
            sleep.deadline = at

    def due(self, now: float) -> list[Alarm]:
        """Take the alarms due at ``now`` out of the heap, earliest first."""
        heap = self._heap
        due: list[Alarm] = []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            at, _, alarm = entry
            if alarm._fire is not None:
                alarm._spare = entry
            if alarm.at == at:
                alarm.at = None
                due.append(alarm)
        return due

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
                with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as sleep:
                    self._sleep = sleep
                    await trio.sleep_forever()
                self._sleep = None
                for alarm in self.due(trio.current_time()):
                    alarm._run()  # an alarm set again meanwhile waits for the next round
        finally:
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
