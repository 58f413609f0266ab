"""The trio link's writers: an intent's caller writes its own frames on an idle link
(``Link.hold``, ``Link.write_held``), the writer task writes the rest, one at a time, in order.

A stand-in for trio-websocket's connection records what is written and can hold a write open
(a socket whose buffer is full), so each test decides when a write ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, WebSocketConnection

from polyai_messaging.trio._link import Link

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """Only trio, here."""
    return "trio"


class Socket:
    """Records each message and close; a write waits while :attr:`gate` is set and unset."""

    def __init__(self) -> None:
        self.written: list[Any] = []
        self.gate: trio.Event | None = None
        self.broken = False

    async def send_message(self, text: str) -> None:
        await trio.lowlevel.checkpoint()  # trio-websocket's lock
        if self.broken:
            raise ConnectionClosed(None)
        if self.gate is not None:
            await self.gate.wait()
        self.written.append(text)

    async def aclose(self, code: int, reason: str) -> None:
        await trio.lowlevel.checkpoint()
        self.written.append(("close", code))

    def release(self) -> None:
        """Let the write that waits (and every later one) through."""
        assert self.gate is not None
        gate, self.gate = self.gate, None
        gate.set()


def opened(nursery: trio.Nursery, socket: Socket) -> Link:
    link = Link(1)
    link.opened(nursery, cast("WebSocketConnection", socket), 1.0)
    return link


@contextmanager
def task_starts() -> Iterator[list[str]]:
    """The names (last part) of the tasks started in the block."""
    starts: list[str] = []

    class Spawns(trio.abc.Instrument):
        def task_spawned(self, task: trio.lowlevel.Task) -> None:
            starts.append(task.name.rsplit(".", 1)[-1])

    instrument = Spawns()
    trio.lowlevel.add_instrument(instrument)
    try:
        yield starts
    finally:
        trio.lowlevel.remove_instrument(instrument)


async def test_a_held_frame_is_written_by_its_caller_without_a_task() -> None:
    socket = Socket()
    async with trio.open_nursery() as nursery:
        link = opened(nursery, socket)
        with task_starts() as starts:
            assert link.hold()
            assert link.send("a")
            await link.write_held()
        assert socket.written == ["a"]
        assert starts == []
        assert link.hold()  # idle again
        await link.write_held()


async def test_frames_queued_during_a_callers_write_follow_it_in_order() -> None:
    socket = Socket()
    async with trio.open_nursery() as nursery:
        link = opened(nursery, socket)
        socket.gate = trio.Event()
        assert link.hold()
        link.send("a")
        link.send("b")
        nursery.start_soon(link.write_held)
        await trio.testing.wait_all_tasks_blocked()
        # The caller writes "a" (held open): later frames queue, nobody else may write.
        assert link.send("c")
        assert not link.hold()
        link.send("d")
        socket.release()
        await trio.testing.wait_all_tasks_blocked()
        assert socket.written == ["a", "b", "c", "d"]
        # And behind a writer task: a caller that finds it running holds nothing.
        socket.gate = trio.Event()
        link.send("e")
        await trio.testing.wait_all_tasks_blocked()
        assert not link.hold()
        link.send("f")
        socket.release()
        await trio.testing.wait_all_tasks_blocked()
        assert socket.written == ["a", "b", "c", "d", "e", "f"]


async def test_a_cancelled_caller_finishes_its_write_first() -> None:
    socket = Socket()
    async with trio.open_nursery() as nursery:
        link = opened(nursery, socket)
        socket.gate = trio.Event()
        assert link.hold()
        link.send("a")
        steps: list[str] = []

        async def cancel_mid_write(scope: trio.CancelScope) -> None:
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
            steps.append("still writing")  # the cancellation did not cut the write short
            socket.release()

        with trio.CancelScope() as scope:
            nursery.start_soon(cancel_mid_write, scope)
            await link.write_held()
            steps.append("written")
            await trio.lowlevel.checkpoint()
            steps.append("not reached")
        assert scope.cancelled_caught
        assert steps == ["still writing", "written"]
        assert socket.written == ["a"]
        assert not link.ended
        assert link.send("b")  # the link goes on
        await trio.testing.wait_all_tasks_blocked()
        assert socket.written == ["a", "b"]


async def test_an_abort_stops_a_callers_write_and_what_is_queued() -> None:
    socket = Socket()
    async with trio.open_nursery() as nursery:
        link = opened(nursery, socket)
        socket.gate = trio.Event()
        assert link.hold()
        link.send("a")
        link.send("b")

        async def abort_mid_write() -> None:
            await trio.testing.wait_all_tasks_blocked()
            link.send("c")
            link.abort()

        nursery.start_soon(abort_mid_write)
        await link.write_held()  # returns: the abort is the link's, not the caller's
        assert link.ended
        assert not link.send("d")
        await trio.testing.wait_all_tasks_blocked()
        assert socket.written == []


async def test_a_write_error_ends_the_link_and_the_caller_goes_on() -> None:
    socket = Socket()
    socket.broken = True
    async with trio.open_nursery() as nursery:
        link = opened(nursery, socket)
        assert link.hold()
        link.send("a")
        await link.write_held()
        assert link.ended
        assert not link.send("b")
        assert not link.hold()
        await trio.testing.wait_all_tasks_blocked()
        assert socket.written == []


async def test_a_close_queued_by_the_intent_is_left_to_the_writer_task() -> None:
    socket = Socket()
    async with trio.open_nursery() as nursery:
        link = opened(nursery, socket)
        with task_starts() as starts:
            assert link.hold()
            link.send("bye")
            link.close(1000, "client closing")
            await link.write_held()
            assert socket.written == ["bye"]  # the caller does not wait for the close
            await trio.testing.wait_all_tasks_blocked()
        assert socket.written == ["bye", ("close", 1000)]
        assert starts == ["_write"]


async def test_nothing_is_held_on_a_link_not_open_or_closing() -> None:
    assert not Link(1).hold()  # not open yet
    socket = Socket()
    async with trio.open_nursery() as nursery:
        link = opened(nursery, socket)
        link.close(1000, "client closing")
        assert not link.hold()
        await trio.testing.wait_all_tasks_blocked()
        link.reading_ended()
        assert not link.hold()
