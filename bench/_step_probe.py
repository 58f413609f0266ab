"""Diagnostic: what one message costs the driver and the engine, counted rather than timed.

A message's round trip is two steps: the ``send`` intent and its echo frame. Run after the
process has idled, with the processor's caches cold, a step costs in proportion to how much
code it runs and how many objects it makes, so this counts, for each of the two steps (the
mean over ``--exchanges`` exchanges on a session that already holds ``--history`` messages,
each answered by the agent):

* ``calls``: Python function calls (``sys.setprofile``'s ``call`` events) and C functions
  called from Python (``c_call``);
* ``code``: distinct Python code objects run (a rough measure of the step's code footprint);
* ``allocs``: calls into CPython's object allocator (objects and their buffers; an object
  taken from a free list, as small tuples, lists, dicts and floats often are, is not counted),
  only if the ``alloccount`` extension is importable (``--alloccount DIR``: see below);
* ``blocks``: memory blocks still allocated after the step (``sys.getallocatedblocks``): what
  the step leaves alive, the new state included.

Each is counted for ``driver.step`` alone and for ``Engine.feed`` (the step, its effects
dispatched and the snapshot published, on an engine whose adapter does nothing).

``alloccount`` is a 30-line C extension wrapping ``PyMem_SetAllocator`` with counters; it is
not part of the project. Build it with gcc and the Python headers, put the ``.so`` in a
folder and pass the folder.

``--cold N`` also times the two steps of N exchanges through ``Engine.feed``, every other one
after emptying the processor's caches (copying 48 MiB), as an exchange after an idle pause
runs: medians, noisy on a busy machine.

Run: ``python bench/_step_probe.py [--history 100] [--exchanges 50] [--alloccount DIR]
[--cold 300]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from functools import partial
from types import FrameType
from typing import Any

from polyai_messaging.core import LocalProtocolError
from polyai_messaging.driver import (
    FrameReceived,
    LinkOpened,
    Now,
    OpenSocket,
    SendText,
    SessionState,
    Start,
    WakeUp,
    step,
)
from polyai_messaging.emulator._wire import encode, make_event
from polyai_messaging.runtime import Engine
from polyai_messaging.runtime._tokens import TokenCache

TEXT = "I'd like a table for four tomorrow at 7pm, please"


class _Clock:
    def __init__(self) -> None:
        self.t = 10.0

    def __call__(self) -> Now:
        return Now(self.t, 1_700_000_000.0 + self.t)


class _Engine(Engine):
    """An engine whose adapter does nothing (its link takes every frame)."""

    def new_event(self) -> Any:
        return asyncio.Event()

    def spawn(self, job: Callable[[], Any]) -> None:
        raise AssertionError("no task is started in this probe")

    def open_link(self, request: OpenSocket) -> None:
        pass

    def send_frame(self, generation: int, text: str) -> bool:
        return True

    def rearm_timer(self, deadline: float | None) -> None:
        pass


async def _no_session() -> str:
    raise LocalProtocolError("no replacement sessions in this probe")


async def _no_token() -> Any:
    raise LocalProtocolError("no tokens in this probe")


def _frame(kind: str, payload: dict[str, Any], sequence: int, **extra: Any) -> str:
    return encode(make_event(f"EVENT_TYPE_{kind}", payload, sequence=sequence, **extra))


class Session:
    """A settled session driven by hand, by ``step`` or by ``Engine.feed``."""

    def __init__(self, through_engine: bool) -> None:
        self.clock = _Clock()
        self.sequence = 0
        state = SessionState.new("probe", seed=7)
        self.engine = (
            _Engine(
                state=state,
                base_url="http://localhost",
                tokens=TokenCache(_no_token, lambda: 0.0, asyncio.Event),
                create_session=_no_session,
                clock=self.clock,
            )
            if through_engine
            else None
        )
        self.state = state
        self.feed(Start())
        self.feed(LinkOpened(self.generation))
        start = make_event(
            "EVENT_TYPE_SESSION_START",
            {"capabilities": {"heartbeat_interval_seconds": 30}},
            sequence=self.next(),
        )
        batch = {"type": "EVENT_TYPE_EVENT_BATCH", "payload": {"events": [start]}}
        self.feed(FrameReceived(self.generation, encode(batch)))
        self.clock.t += 1.0
        self.feed(WakeUp())
        self.frame(_frame("REQUEST_POLY_AGENT_JOIN", {}, self.next()))
        self.frame(_frame("POLY_AGENT_JOINED", {}, self.next()))
        self.reply()
        assert self.current.settled

    @property
    def current(self) -> SessionState:
        return self.engine.state if self.engine is not None else self.state

    @property
    def generation(self) -> int:
        return self.current.generation

    def next(self) -> int:
        self.sequence += 1
        return self.sequence

    def feed(self, event: Any) -> list[Any]:
        self.clock.t += 0.001
        if self.engine is not None:
            return self.engine.feed(event)
        self.state, effects = step(self.state, event, self.clock())
        return effects

    def frame(self, text: str) -> None:
        if self.engine is not None:
            self.clock.t += 0.001
            self.engine.frame_received(self.generation, text)
        else:
            self.feed(FrameReceived(self.generation, text))

    def send(self) -> str:
        for effect in self.feed(SendText(TEXT)):
            if type(effect).__name__ == "Delivery":
                cid: str = effect.client_event_id
                return cid
        raise AssertionError("not accepted")

    def echo_of(self, cid: str) -> str:
        payload = {"text": TEXT, "message_id": f"msg_{uuid.uuid4().hex}"}
        metadata = {"custom": {"client_event_id": cid}}
        return _frame("USER_MESSAGE", payload, self.next(), metadata=metadata)

    def reply(self) -> None:
        self.frame(_frame("POLY_AGENT_THINKING", {}, self.next()))
        payload = {
            "message_id": f"msg_{uuid.uuid4().hex}",
            "text": 'You said: "I\'d like a table" (5 words). What else can I do for you?',
            "attachments": [],
            "response_suggestions": [{"message_text": "Book"}, {"message_text": "Cancel"}],
        }
        self.frame(_frame("POLY_AGENT_MESSAGE", payload, self.next()))

    def exchange(self) -> None:
        self.frame(self.echo_of(self.send()))
        self.reply()


class Counter:
    """``sys.setprofile``: calls and distinct code objects."""

    def __init__(self) -> None:
        self.calls = 0
        self.c_calls = 0
        self.code: set[Any] = set()

    def __call__(self, frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            self.calls += 1
            self.code.add(frame.f_code)
        elif event == "c_call":
            self.c_calls += 1


def counted(kind: str, work: Callable[[], Any], alloccount: Any) -> dict[str, float]:
    """Run ``work`` once under one instrument (``kind``); what it counted."""
    if kind == "profile":
        counter = Counter()
        sys.setprofile(counter)
        try:
            work()
        finally:
            sys.setprofile(None)
        return {"calls": counter.calls, "c_calls": counter.c_calls, "code": len(counter.code)}
    if kind == "allocs":
        if alloccount is None:
            work()
            return {}
        before = sum(alloccount.counts())
        work()
        return {"allocs": sum(alloccount.counts()) - before}
    before = sys.getallocatedblocks()
    work()
    return {"blocks": sys.getallocatedblocks() - before}


def measure(through_engine: bool, history: int, exchanges: int, alloccount: Any) -> None:
    session = Session(through_engine)
    for _ in range(history):
        session.exchange()
    totals: dict[str, dict[str, float]] = {"send": {}, "echo": {}}

    def add(name: str, figures: dict[str, float]) -> None:
        for key, value in figures.items():
            totals[name][key] = totals[name].get(key, 0) + value / exchanges

    sent: list[str] = []
    gc.disable()
    for _ in range(exchanges):
        # Each instrument counts its own exchange, so that none sees another's work.
        for kind in ("profile", "allocs", "blocks"):
            add("send", counted(kind, lambda: sent.append(session.send()), alloccount))
            echo = session.echo_of(sent[-1])
            add("echo", counted(kind, partial(session.frame, echo), alloccount))
            session.reply()
    gc.enable()
    where = "Engine.feed" if through_engine else "driver.step"
    for name in ("send", "echo"):
        figures = "  ".join(f"{key} {value:7.1f}" for key, value in totals[name].items())
        print(f"  {where:<11} {name:<4}  {figures}")


def cold_timings(history: int, exchanges: int) -> None:
    """Each step timed after 48 MiB were copied (the caches emptied, as after an idle pause),
    and, every other exchange, without: medians (timings, so noisy on a busy machine)."""
    session = Session(through_engine=True)
    for _ in range(history):
        session.exchange()
    junk, source = bytearray(48 << 20), bytes(48 << 20)
    samples: dict[str, list[int]] = {}
    clock = time.perf_counter_ns
    gc.disable()
    for number in range(exchanges):
        kind = "cold" if number % 2 == 0 else "warm"
        if kind == "cold":
            junk[:] = source
        start = clock()
        cid = session.send()
        samples.setdefault(f"send {kind}", []).append(clock() - start)
        echo = session.echo_of(cid)
        if kind == "cold":
            junk[:] = source
        start = clock()
        session.frame(echo)
        samples.setdefault(f"echo {kind}", []).append(clock() - start)
        session.reply()
        if kind == "warm":
            gc.collect()  # outside the timings, before the next cold exchange
    gc.enable()
    for name, values in sorted(samples.items()):
        print(f"  Engine.feed {name:<9} median {statistics.median(values) / 1000:7.1f} us")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--history", type=int, default=100, help="messages exchanged before")
    parser.add_argument("--exchanges", type=int, default=50, help="exchanges counted")
    parser.add_argument("--alloccount", help="folder holding the alloccount extension")
    parser.add_argument(
        "--cold", type=int, metavar="N", help="also time N exchanges, cold and warm in turn"
    )
    arguments = parser.parse_args()
    alloccount = None
    if arguments.alloccount:
        sys.path.insert(0, arguments.alloccount)
        alloccount = importlib.import_module("alloccount")
        alloccount.install()
    print(f"per step, mean of {arguments.exchanges}, after {arguments.history} messages")
    for through_engine in (False, True):
        measure(through_engine, arguments.history, arguments.exchanges, alloccount)
    if arguments.cold:
        cold_timings(arguments.history, arguments.cold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
