"""``EventLog``: a conversation's sequenced events in arrival order, persistent, O(1) to extend.

A conversation is extended one event at a time, almost always from its newest version. Every
version of a log shares one append-only :class:`LogStore` and sees only its own first items of
it: extending the newest version appends in place, and extending an older one (a fork) copies
what that version sees first. No version ever sees another change, so the log is immutable to
its users. A version is a store and a length: a conversation keeps the two as fields (a fold
then writes a length, not a new object) and its ``log`` is an :class:`EventLog` of them.

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

__all__ = ["BLOCK", "EventLog", "LogStore"]

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


class LogStore:
    """What the versions of a log share: sealed blocks, then a tail.

    A version of length ``n`` sees ``blocks[:sealed]`` and ``tail[:n - start]`` (``start`` is
    ``sealed * BLOCK``). The newest version (``n - start == len(tail)``) appends to ``tail`` in
    place while it has room; anything else makes a new store (:meth:`extended`), which shares
    the blocks list (a fork copies at most its tail). ``blocks`` may be longer than ``sealed``:
    other stores' blocks, appended in place.
    """

    __slots__ = ("blocks", "sealed", "start", "tail")

    blocks: list[tuple[ServerEvent, ...]]
    sealed: int
    start: int
    tail: list[ServerEvent]

    def __init__(self, events: Iterable[ServerEvent] = ()) -> None:
        items = list(events)
        whole = len(items) - len(items) % BLOCK
        if whole == len(items) and items:
            whole -= BLOCK  # keep a full tail rather than an empty one: it seals on next append
        self.blocks = [tuple(items[i : i + BLOCK]) for i in range(0, whole, BLOCK)]
        self.sealed = len(self.blocks)
        self.start = whole
        self.tail = items[whole:]

    @classmethod
    def _of(
        cls, blocks: list[tuple[ServerEvent, ...]], sealed: int, tail: list[ServerEvent]
    ) -> LogStore:
        store: LogStore = _new(cls)
        store.blocks = blocks
        store.sealed = sealed
        store.start = sealed * BLOCK
        store.tail = tail
        return store

    def append(self, length: int, event: ServerEvent) -> LogStore:
        """The store of the version of ``length`` events with ``event`` added: this one, extended
        in place, or a new one (the version is not the newest, or its tail is full)."""
        tail = self.tail
        at = length - self.start
        if at == len(tail) and at < BLOCK:
            tail.append(event)
            if tail[at] is event:  # else another version took the slot first (threads)
                return self
        return self.extended(length, event)

    def extended(self, length: int, event: ServerEvent) -> LogStore:
        """A new store: the version of ``length`` events, then ``event``."""
        at = length - self.start
        if at < BLOCK:
            return LogStore._of(self.blocks, self.sealed, [*self.tail[:at], event])
        blocks = _extended(self.blocks, self.sealed, tuple(self.tail[:BLOCK]))
        return LogStore._of(blocks, self.sealed + 1, [event])

    def __repr__(self) -> str:
        return f"<LogStore of {self.start + len(self.tail)} events>"


class EventLog(Sequence[ServerEvent]):
    """Events in the order they were applied. Create with ``EventLog()`` or ``EventLog(events)``."""

    __slots__ = ("_length", "_store")

    _store: LogStore
    _length: int

    def __init__(self, events: Iterable[ServerEvent] = ()) -> None:
        self._store = LogStore(events)
        self._length = self._store.start + len(self._store.tail)

    @classmethod
    def of(cls, store: LogStore, length: int) -> EventLog:
        """The version of ``length`` events of ``store``."""
        log: EventLog = _new(cls)
        log._store = store
        log._length = length
        return log

    def append(self, event: ServerEvent) -> EventLog:
        """This log with ``event`` added at the end; ``self`` is unchanged."""
        return EventLog.of(self._store.append(self._length, event), self._length + 1)

    def since(self, earlier: EventLog) -> Sequence[ServerEvent] | None:
        """The events appended after ``earlier``, if this log extends it; else ``None``."""
        if len(earlier) == 0:
            return self
        mine, theirs = self._store, earlier._store
        if theirs.blocks is not mine.blocks or theirs.sealed > mine.sealed:
            return None
        if earlier._length > self._length:
            return None
        if theirs.sealed == mine.sealed:
            if theirs.tail is not mine.tail:
                return None
        else:
            block = mine.blocks[theirs.sealed]
            seen = theirs.tail[: earlier._length - theirs.start]
            if any(a is not b for a, b in zip(seen, block, strict=False)):
                return None
        return self[len(earlier) :]

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> ServerEvent: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[ServerEvent]: ...

    def __getitem__(self, index: int | slice) -> ServerEvent | Sequence[ServerEvent]:
        if isinstance(index, slice):
            return list(self)[index]
        length = self._length
        if not -length <= index < length:
            raise IndexError("event log index out of range")
        store = self._store
        block, offset = divmod(index % length, BLOCK)
        if block < store.sealed:
            return store.blocks[block][offset]
        return store.tail[offset]

    def __iter__(self) -> Iterator[ServerEvent]:
        store = self._store
        for block in islice(store.blocks, store.sealed):
            yield from block
        yield from islice(store.tail, self._length - store.start)

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
