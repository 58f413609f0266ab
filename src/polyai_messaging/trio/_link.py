"""A link as its session holds it: the socket generation's cancel scope, its outgoing queue and
its writers.

One writer at a time writes to an open socket: a writer task, started whenever frames are
queued and gone once they are written, or the task of an intent that found the link idle, which
writes its own frames (:meth:`Link.hold`). The socket itself, from connecting to closed, is run
by :func:`._socket.run_link`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from ..runtime import QueuedClose

__all__ = ["Link"]

_WRITER: Final = f"{__name__}.Link._write"
"""The writer task's name (trio would otherwise format it at every start)."""


class Link:
    """One socket generation: its cancel scope, its outgoing queue and, while frames are queued
    on an open socket, its writer task.

    The writer runs only while there is something to write: an idle link is one task (which
    runs trio-websocket's reader itself), not three, and a plain queue rather than a memory
    channel.
    """

    __slots__ = (
        "_close_timeout", "_done", "_finished", "_inline", "_queue", "_spare", "_write_job",
        "_writer", "_writing", "_ws", "closing", "ended", "generation", "scope",
    )  # fmt: skip

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.scope = trio.CancelScope()
        self._done: trio.Event | None = None
        """Set once the link has ended; made only if someone waits for that."""
        self._finished = False
        # Unbounded: queuing must never block, because the session queues without awaiting. A
        # list the writer takes whole, not a deque, whose first block alone is some 600 bytes.
        self._queue: list[str | QueuedClose] = []
        self._spare: list[str | QueuedClose] = []
        """The list the writer hands over when it takes the queue: the two take turns, so a
        write leaves no new list behind to live until the next one (a heartbeat's)."""
        self._writer: trio.Nursery | None = None
        """Where a writer runs, while the socket is open."""
        self._ws: WebSocketConnection | None = None
        self._close_timeout = 0.0
        self._write_job: Callable[[], Awaitable[None]] | None = None
        """The writer, bound once: a writer starts per burst of frames (every heartbeat), and
        one made per start was one more object in flight each time."""
        self._writing = False
        """Whether a writer is running (a writer task, or a caller writing what it held)."""
        self._inline: trio.CancelScope | None = None
        """The shielded scope of a caller's own write while it runs (an abort cancels it)."""
        self.closing = False
        """Whether a close is queued: nothing is queued after it."""
        self.ended = False
        """Whether nothing more will be written (the writer failed, or the link has ended)."""

    def send(self, text: str) -> bool:
        """Queue a frame for the link's writer; ``False`` if the writer is gone."""
        if self.ended or self.closing:
            return False
        self._queue.append(text)
        self._write_soon()
        return True

    def close(self, code: int, reason: str) -> None:
        """Close politely after the frames already queued (or at once if the writer is gone);
        a close already queued stands."""
        if self.closing:
            return
        if self.ended:
            self.scope.cancel()
            return
        self._queue.append(QueuedClose(code, reason))
        self.closing = True
        self._write_soon()

    def abort(self) -> None:
        """Drop the socket now, without a closing handshake."""
        self.scope.cancel()
        self._stop_inline()

    def _stop_inline(self) -> None:
        if self._inline is not None:
            self._inline.cancel()

    async def aclose(self, code: int, reason: str, timeout: float) -> None:
        """:meth:`close`, then wait (at most ``timeout``) until the link has ended."""
        self.close(code, reason)
        if self._finished:
            await trio.lowlevel.checkpoint()
            return
        if self._done is None:
            self._done = trio.Event()
        with trio.move_on_after(timeout):
            await self._done.wait()

    def finished(self) -> None:
        """The link has ended: it takes no more frames, and :meth:`aclose` returns."""
        self.ended = self._finished = True
        self._writer = None
        self._stop_inline()
        # The bound writer refers back to the link: dropped, no cycle is left for the
        # garbage collector to find.
        self._write_job = self._ws = None
        if self._done is not None:
            self._done.set()

    def opened(self, nursery: trio.Nursery, ws: WebSocketConnection, close_timeout: float) -> None:
        """The socket is open: write what is queued, and what comes, in ``nursery``."""
        self._writer = nursery
        self._ws = ws
        self._close_timeout = close_timeout
        self._write_job = self._write
        self._write_soon()

    def reading_ended(self) -> None:
        """The socket is closed: no writer is started any more, and a caller's write stops."""
        self._writer = None
        self._stop_inline()

    def hold(self) -> bool:
        """If the link is open and idle (no writer running, nothing queued), hold the frames
        queued from now on for the caller to write with :meth:`write_held`, which it must then
        await (it does so right after feeding an intent); ``False`` (nothing held) otherwise.

        A writer task per burst of frames was a task started and three scheduler rounds before
        the frame was written, on every message's round trip.
        """
        if self._writer is None or self._writing or self._queue or self.ended or self.closing:
            return False
        self._writing = True
        return True

    async def write_held(self) -> None:
        """Write the frames queued since :meth:`hold`, in this task, up to a queued close (the
        writer task closes); frames queued meanwhile go to a writer task after them.

        The write is shielded from the caller's cancellation (delivered at its next checkpoint),
        since a frame cut short would break the framing of the whole socket; an abort of the
        link cancels it. It waits only while the socket's buffer is full. Yields once at least.
        """
        batch, ws = self._queue, self._ws
        if not batch or ws is None or self.ended or self.scope.cancel_called:
            self._writing = False
            self._write_soon()
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        self._queue, self._spare = self._spare, batch
        written = 0
        self._inline = scope = trio.CancelScope(shield=True)
        with scope:
            try:
                for item in batch:
                    if isinstance(item, QueuedClose):
                        self._queue[:0] = batch[written:]  # the writer task closes, in order
                        break
                    await ws.send_message(item)
                    written += 1
            except ConnectionClosed:
                self.ended = True
            except BaseException:
                self.ended = True  # cancelled by an abort: what is queued is never written
                raise
            finally:
                batch.clear()
                self._inline = None
                self._writing = False
        if not self.ended:
            self._write_soon()
        if not written:
            await trio.lowlevel.cancel_shielded_checkpoint()

    def _write_soon(self) -> None:
        writer, job = self._writer, self._write_job
        if writer is not None and job is not None and not self._writing and self._queue:
            self._writing = True
            writer.start_soon(job, name=_WRITER)

    async def _write(self) -> None:
        """The link's only writer: frames in order, then at most one close; it returns when
        the queue is empty (the next frame starts another)."""
        ws = self._ws
        close_timeout = self._close_timeout
        assert ws is not None
        try:
            while self._queue:
                batch, self._queue = self._queue, self._spare
                self._spare = batch
                for item in batch:
                    if isinstance(item, QueuedClose):
                        self.ended = True
                        with trio.move_on_after(close_timeout):
                            await ws.aclose(item.code, item.reason)
                        self.scope.cancel()
                        return
                    try:
                        await ws.send_message(item)
                    except ConnectionClosed:
                        self.ended = True
                        return
                batch.clear()
        except BaseException:
            self.ended = True  # cancelled: what is still queued is never written
            raise
        finally:
            self._spare.clear()  # what was taken and not written never will be
            self._writing = False
