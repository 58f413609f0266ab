"""``EventLog``: a conversation's sequenced events in arrival order, persistent, O(1) to extend.

A conversation is extended one event at a time, and almost always from its newest version. So
every version of a log shares one append-only list and sees only the first ``len(version)``
items of it: extending the newest version appends in place, and extending an older one (a fork)
copies its items first. No version ever sees another change, so the log is immutable to its
users, and appending costs the same at 50,000 events as at 5: a persistent map keyed by
sequence would copy a path of nodes, and touch every child of each, on every event.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, overload

from .events import ServerEvent

__all__ = ["EventLog"]

_new = object.__new__


class EventLog(Sequence[ServerEvent]):
    """Events in the order they were applied. Create with ``EventLog()`` or ``EventLog(events)``."""

    __slots__ = ("_events", "_length")

    _events: list[ServerEvent]
    _length: int

    def __init__(self, events: Iterable[ServerEvent] = ()) -> None:
        self._events = list(events)
        self._length = len(self._events)

    def append(self, event: ServerEvent) -> EventLog:
        """This log with ``event`` added at the end; ``self`` is unchanged."""
        events = self._events
        length = self._length
        if len(events) == length:
            events.append(event)
            # The slot is ours unless another version of this log took it first (threads).
            if events[length] is not event:
                events = [*events[:length], event]
        else:
            events = [*events[:length], event]
        log: EventLog = _new(EventLog)
        log._events = events
        log._length = length + 1
        return log

    def since(self, earlier: EventLog) -> Sequence[ServerEvent] | None:
        """The events appended after ``earlier``, if this log extends it; else ``None``."""
        if earlier._events is self._events and earlier._length <= self._length:
            return self._events[earlier._length : self._length]
        if earlier._length == 0:
            return self
        return None

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> ServerEvent: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[ServerEvent]: ...

    def __getitem__(self, index: int | slice) -> ServerEvent | Sequence[ServerEvent]:
        if isinstance(index, slice):
            return self._events[: self._length][index]
        if not -self._length <= index < self._length:
            raise IndexError("event log index out of range")
        return self._events[index % self._length]

    def __iter__(self) -> Iterator[ServerEvent]:
        return islice(self._events, self._length)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EventLog):
            return NotImplemented
        return self._length == other._length and all(
            a == b for a, b in zip(self, other, strict=True)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<EventLog of {self._length} events>"

    def __reduce__(self) -> tuple[Any, ...]:
        # Only this version's events: the shared list may hold other versions' too.
        return (EventLog, (list(self),))
