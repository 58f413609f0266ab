"""What the application sees of a running session: snapshots, and the stream of new events.

Snapshots (:class:`Update`) are conflated: a slow reader skips to the latest one, never queues.
New events go through an :class:`EventStream` of bounded size that drops its oldest event when
full (counted), so a reader that stops reading never blocks the session or grows its memory.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ..core import Conversation, ServerEvent
from ..driver import Finished, SessionState, StatusChanged
from ._loop import Event

__all__ = ["EventStream", "Update", "UpdateFeed", "Updates", "Waiters"]


class Waiters:
    """Wakes the tasks waiting for a change; the loop's event is made only when one waits.

    A session changes on every frame and heartbeat while, mostly, nobody waits: making (and
    dropping) an event per change was garbage for the collector, every change of every session.
    """

    __slots__ = ("_event", "_new_event")

    def __init__(self, new_event: Callable[[], Event]) -> None:
        self._new_event = new_event
        self._event: Event | None = None

    def wake(self) -> None:
        """Wake every task waiting now (a task that waits later waits for the next wake)."""
        event = self._event
        if event is not None:
            self._event = None
            event.set()

    async def wait(self) -> None:
        """Wait for the next :meth:`wake`."""
        event = self._event
        if event is None:
            event = self._event = self._new_event()
        await event.wait()


@attrs.frozen
class Update:
    """A snapshot of the session, published after every input that changed something."""

    version: int
    """Increases with every published snapshot."""
    state: SessionState
    """The driver state (conversation, outbox, counters...)."""
    status: StatusChanged | None
    """The latest link status."""
    finished: Finished | None
    """Set on the last snapshot: the session is over."""

    @property
    def conversation(self) -> Conversation:
        """The folded conversation (``state.conversation``)."""
        return self.state.conversation


class UpdateFeed:
    """The latest :class:`Update`, and the waiting for a newer one.

    A change only records what changed; the :class:`Update` is made when someone reads
    :attr:`latest`. An idle session changes on every heartbeat while, mostly, nobody looks:
    a snapshot made per change lived until the next one, long enough to be promoted by the
    garbage collector.
    """

    __slots__ = ("_changed", "_finished", "_latest", "_state", "_status", "_version", "closed")

    def __init__(self, state: SessionState, new_event: Callable[[], Event]) -> None:
        self._version = 0
        self._state = state
        self._status: StatusChanged | None = None
        self._finished: Finished | None = None
        self._latest: Update | None = None
        self._changed = Waiters(new_event)
        self.closed = False

    @property
    def latest(self) -> Update:
        """The latest published snapshot."""
        latest = self._latest
        if latest is None:
            latest = self._latest = Update(self._version, self._state, self._status, self._finished)
        return latest

    @property
    def version(self) -> int:
        """The latest snapshot's version (without making the snapshot)."""
        return self._version

    def publish(
        self, state: SessionState, status: StatusChanged | None, finished: Finished | None
    ) -> None:
        """Publish a new snapshot if anything in it changed; wake the waiters."""
        if state is self._state and status is self._status and finished is self._finished:
            return
        self._version += 1
        self._state = state
        self._status = status
        self._finished = finished
        self._latest = None
        self._changed.wake()

    def close(self) -> None:
        """No more snapshots: waiters get ``None``."""
        self.closed = True
        self._changed.wake()

    async def next(self, after_version: int) -> Update | None:
        """Wait for a snapshot newer than ``after_version``; ``None`` once the feed is closed."""
        while self._version <= after_version:
            if self.closed:
                return None
            await self._changed.wait()
        return self.latest


class Updates:
    """``async for`` over snapshots, skipping any the reader was too slow to see.

    Ends after the snapshot carrying :attr:`Update.finished`, or when the session closes.
    """

    def __init__(self, feed: UpdateFeed) -> None:
        self._feed = feed
        self._seen = 0
        self._done = False

    def __aiter__(self) -> Updates:
        return self

    async def __anext__(self) -> Update:
        if self._done:
            raise StopAsyncIteration
        update = await self._feed.next(self._seen)
        if update is None:
            self._done = True
            raise StopAsyncIteration
        self._seen = update.version
        if update.finished is not None:
            self._done = True
        return update


class EventStream:
    """Every newly applied server event, in order, in a buffer of at most ``capacity``.

    When the buffer is full the oldest event is dropped and counted in :attr:`dropped`: the
    session never waits for its reader. ``async for`` ends once the session is over and the
    buffer is empty; :meth:`drain` takes what is buffered now without waiting.
    """

    __slots__ = ("_arrived", "_buffer", "_capacity", "_head", "closed", "dropped")

    def __init__(self, capacity: int, new_event: Callable[[], Event]) -> None:
        if capacity < 1:
            raise ValueError("events_capacity must be at least 1")
        # A list read from ``_head`` on, not a deque: a deque's first block takes some 600 bytes
        # however few events it holds, in every session, while most never read their events.
        self._buffer: list[ServerEvent | None] = []
        self._head = 0
        self._capacity = capacity
        self._arrived = Waiters(new_event)
        self.closed = False
        self.dropped = 0
        """Events discarded because the buffer was full."""

    def put(self, event: ServerEvent) -> None:
        """Add an event (dropping the oldest if full); nothing once closed."""
        if self.closed:
            return
        buffer = self._buffer
        if len(buffer) - self._head >= self._capacity:
            self._take()
            self.dropped += 1
        buffer.append(event)
        self._arrived.wake()

    def close(self) -> None:
        """No more events: readers finish once they have taken what is buffered."""
        self.closed = True
        self._arrived.wake()

    def drain(self) -> list[ServerEvent]:
        """Every buffered event, oldest first, without waiting."""
        events = [event for event in self._buffer[self._head :] if event is not None]
        self._buffer.clear()
        self._head = 0
        return events

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> ServerEvent:
        while self._head == len(self._buffer):
            if self.closed:
                raise StopAsyncIteration
            await self._arrived.wait()
        return self._take()

    def _take(self) -> ServerEvent:
        """The oldest buffered event, removed (there is one)."""
        buffer, head = self._buffer, self._head
        event = buffer[head]
        buffer[head] = None
        head += 1
        if head == len(buffer):
            buffer.clear()
            head = 0
        elif head >= _COMPACT_AT and head * 2 >= len(buffer):
            del buffer[:head]  # amortised: at most once per as many events as were taken
            head = 0
        self._head = head
        assert event is not None
        return event


_COMPACT_AT = 64
"""Taken events a buffer holds (as empty slots) at most before it moves the rest down."""
