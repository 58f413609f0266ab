"""``EventLog``: a conversation's sequenced events in arrival order, persistent, O(1) to extend.

A conversation is extended one event at a time, almost always from its newest version. Every
version of a log shares one append-only list and sees only its own first items of it: extending
the newest version appends in place, and extending an older one (a fork) copies what that
version sees first. No version ever sees another change, so the log is immutable to its users.

Full blocks of :data:`BLOCK` events are sealed into tuples, so a fork copies at most one block
and one reference per block, not the whole history. A persistent map keyed by sequence, by
contrast, copies a path of nodes on every event and touches every child of each: at 50,000
events that was the whole growth of the per-event cost with history.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, overload

from ._events import ServerEvent

__all__ = ["BLOCK", "EventLog"]

_new = object.__new__


BLOCK = 64
"""Events per sealed block."""


def _extended(items: list[Any], length: int, item: Any) -> list[Any]:
    """``items[:length] + [item]``, in place when ``items`` has exactly ``length`` items."""
    if len(items) == length:
        items.append(item)
        # The slot is ours unless another version took it first (threads): then copy.
        if items[length] is item:
            return items
    return [*items[:length], item]


class EventLog(Sequence[ServerEvent]):
    """Events in the order they were applied. Create with ``EventLog()`` or ``EventLog(events)``."""

    __slots__ = ("_blocks", "_sealed", "_tail", "_tail_length")

    _blocks: list[tuple[ServerEvent, ...]]
    _sealed: int
    _tail: list[ServerEvent]
    _tail_length: int

    def __init__(self, events: Iterable[ServerEvent] = ()) -> None:
        items = list(events)
        whole = len(items) - len(items) % BLOCK
        if whole == len(items) and items:
            whole -= BLOCK  # keep a full tail rather than an empty one: it seals on next append
        self._blocks = [tuple(items[i : i + BLOCK]) for i in range(0, whole, BLOCK)]
        self._sealed = len(self._blocks)
        self._tail = items[whole:]
        self._tail_length = len(self._tail)

    def append(self, event: ServerEvent) -> EventLog:
        """This log with ``event`` added at the end; ``self`` is unchanged."""
        tail, length = self._tail, self._tail_length
        # The usual case (once per event): this is the newest version, its tail not full.
        if length < BLOCK and len(tail) == length:
            tail.append(event)
            if tail[length] is event:  # else another version took the slot first (threads)
                log: EventLog = _new(EventLog)
                log._blocks = self._blocks
                log._sealed = self._sealed
                log._tail = tail
                log._tail_length = length + 1
                return log
        return self._forked(event)

    def _forked(self, event: ServerEvent) -> EventLog:
        """:meth:`append` when this version's tail is full or not the newest."""
        blocks, sealed = self._blocks, self._sealed
        tail, length = self._tail, self._tail_length
        if length < BLOCK:
            tail = [*tail[:length], event]
            length += 1
        else:
            blocks = _extended(blocks, sealed, tuple(tail[:BLOCK]))
            sealed += 1
            tail, length = [event], 1
        log: EventLog = _new(EventLog)
        log._blocks = blocks
        log._sealed = sealed
        log._tail = tail
        log._tail_length = length
        return log

    def since(self, earlier: EventLog) -> Sequence[ServerEvent] | None:
        """The events appended after ``earlier``, if this log extends it; else ``None``."""
        if len(earlier) == 0:
            return self
        if earlier._blocks is not self._blocks or earlier._sealed > self._sealed:
            return None
        if earlier._sealed == self._sealed:
            if earlier._tail is not self._tail or earlier._tail_length > self._tail_length:
                return None
        else:
            block = self._blocks[earlier._sealed]
            if any(
                a is not b
                for a, b in zip(earlier._tail[: earlier._tail_length], block, strict=False)
            ):
                return None
        return self[len(earlier) :]

    def __len__(self) -> int:
        return self._sealed * BLOCK + self._tail_length

    @overload
    def __getitem__(self, index: int) -> ServerEvent: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[ServerEvent]: ...

    def __getitem__(self, index: int | slice) -> ServerEvent | Sequence[ServerEvent]:
        if isinstance(index, slice):
            return list(self)[index]
        length = len(self)
        if not -length <= index < length:
            raise IndexError("event log index out of range")
        block, offset = divmod(index % length, BLOCK)
        if block < self._sealed:
            return self._blocks[block][offset]
        return self._tail[offset]

    def __iter__(self) -> Iterator[ServerEvent]:
        for block in islice(self._blocks, self._sealed):
            yield from block
        yield from islice(self._tail, self._tail_length)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EventLog):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<EventLog of {len(self)} events>"

    def __reduce__(self) -> tuple[Any, ...]:
        # Only this version's events: the shared lists may hold other versions' too.
        return (EventLog, (list(self),))
