"""Benchmark: resuming a session costs the events missed, not the history held.

For each adapter (trio, asyncio) and each server behaviour (plain; and re-sending
``SESSION_START`` first in every replay, which the server may do), against an emulator in another
process (this directory's ``_common.py``, which takes commands): three sessions whose histories
hold about 100, 10,000 and 100,000 events (user messages and agent replies; the client receives
them once, untimed), each then resumed round after round, the three sizes taking turns:

* **resume**: the emulator aborts the session's socket and, in the same instant, journals 50
  new events (so the client misses them); timed from the client's reconnect attempt (the
  adapter's ``open_link``) until the conversation the application sees holds them all;
* **restart**: the application saves the state (``dump_state``), leaves the session, 50 events
  are journaled meanwhile, and it comes back with ``open_session(..., state=load_state(text))``;
  timed from the call to ``open_session`` until the conversation holds every missed event.
  (``load_state``, which reads the whole history, is timed apart and only printed.)

Replayed events are counted from the frames the new link receives (watching
``Engine.frame_received``): the events in its replay batches, less a ``SESSION_START`` the
server prepends, which is the server's choice, not the client's cursor.

Figures (the last line, one JSON object): ``replayed_vs_missed``, events replayed / events
missed, the round furthest from 1.0 of every case (target exactly 1.0); ``resume_100k_vs_100``
and ``restart_100k_vs_100``, the median resume time at the largest history over that at the
smallest, the worst of adapters and server behaviours (target <= 1.2). Each case's lines also
show the process's CPU time from the attempt until the replay has settled (where work over the
whole history after the catch-up would show), and the ratios with the garbage collector's
pauses taken out (full collections scan every object held, so they grow with the history).
Before each restart the session left is freed and collected, as a new process would not hold
it.

Each case runs one round more than it counts, first, to warm up. The smallest history grows by
the events each round adds; its lines say how long it ended.

Run: ``python bench/resume.py`` (histories up to 100,000, 21 resumes and 7 restarts of each,
about 6 minutes), or ``--quick`` (up to 10,000, 6 and 2; the figures keep their names).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
from _common import (
    Client,
    ControlledEmulator,
    GcPauses,
    Hosted,
    add_adapter_option,
    chosen_adapters,
    client_for,
    controlled_emulator,
    emit,
    gc_pauses,
    host,
    machine,
    session_class,
    watching,
)

from polyai_messaging.driver import Backoff, SessionConfig, dump_state, load_state
from polyai_messaging.rest import create_session
from polyai_messaging.runtime import Engine, SessionRuntime, Update

RESUMES_PER_RESTART = 3
"""Resumes are cheap, restarts (saving and loading the whole history) are not."""
MISSED = 50
"""Events journaled while the client is away, each round."""
CONFIG = SessionConfig(
    backoff=Backoff(base=0.05), stability_window_seconds=0.0, replay_quiet_seconds=0.05
)
"""A prompt reconnect, as the first attempt every round (the rounds follow each other faster
than the default stability window), and a short quiet to settle: waits that are not timed."""
PATIENCE = 120.0
"""The longest wait for any one step, so that a benchmark that goes wrong fails, not hangs."""
BATCH = "EVENT_TYPE_EVENT_BATCH"
SESSION_START = "EVENT_TYPE_SESSION_START"


@dataclass
class Resumption:
    """One resume, as the client saw it."""

    started: float
    """When it began (``time.perf_counter``): the reconnect attempt, or ``open_session``."""
    cpu: float
    """The process's CPU time then."""
    pauses: GcPauses
    """The garbage collector's pauses, running total."""
    frames: list[str | bytes] = field(default_factory=list)
    """What the resuming link received."""
    caught_up: float = 0.0
    settled_cpu: float = 0.0
    gc: float = 0.0
    """Of the time until caught up, how long the garbage collector paused the process."""

    def __post_init__(self) -> None:
        self.gc = -self.pauses.total

    def catch_up(self) -> None:
        """The conversation holds every missed event now."""
        self.caught_up = time.perf_counter()
        self.gc += self.pauses.total


@dataclass
class Watch:
    """Follows the next link of one session at a time: when it starts, what it receives."""

    pauses: GcPauses
    session: Any = None
    generation: int = 0
    current: Resumption | None = None

    def begin(self, started: float) -> Resumption:
        return Resumption(started, time.process_time(), self.pauses)

    def expect(self, session: SessionRuntime | None, started: float | None = None) -> None:
        """Watch ``session``'s next link (``started``: the resume began already)."""
        self.session, self.current = session, None
        if started is not None:
            self.current = self.begin(started)

    def on_open_link(self, session: Any, request: Any) -> None:
        if session is self.session or (self.session is None and self.current is not None):
            self.session, self.generation = session, request.generation
            if self.current is None:
                self.current = self.begin(time.perf_counter())

    def on_frame(self, session: Any, generation: int, data: str | bytes) -> None:
        if session is self.session and generation == self.generation and self.current:
            self.current.frames.append(data)


def replayed(frames: list[str | bytes], cursor: int, prepends: bool) -> int:
    """Events the server replayed after ``cursor`` in ``frames``, less a prepended
    ``SESSION_START`` (see the module docstring)."""
    count = 0
    for frame in frames:
        value = json.loads(frame)
        events = value["payload"]["events"] if value["type"] == BATCH else [value]
        for event in events:
            if event.get("sequence") is None:
                continue
            if prepends and event["type"] == SESSION_START and cursor >= 1:
                continue
            count += 1
    return count


async def until(session: SessionRuntime, holds: Callable[[Update], bool]) -> Update:
    """Wait for a snapshot of which ``holds`` is true (at most ``PATIENCE`` seconds)."""
    update: Update | None = session.latest
    with anyio.fail_after(PATIENCE):
        while update is not None and not holds(update):
            update = await session.next_update(update.version)
    if update is None:
        raise RuntimeError("the session closed during the benchmark")
    return update


async def caught_up(session: SessionRuntime, last: int, resumption: Resumption) -> None:
    """Wait until the conversation holds ``last``, then until the replay has settled."""
    await until(session, lambda update: update.conversation.cursor >= last)
    resumption.catch_up()
    await until(session, lambda update: update.state.settled)
    resumption.settled_cpu = time.process_time()


Results = list[tuple[Resumption, int, int]]
"""Resumes, each with the events it missed and replayed."""


@dataclass
class Held:
    """One session of the benchmark, its history size, and what its resumes measured."""

    size: int
    session_id: str
    hosted: Hosted | None
    """The session, while it is open."""
    resumes: Results = field(default_factory=list)
    restarts: Results = field(default_factory=list)
    loads: list[float] = field(default_factory=list)
    """How long each ``load_state`` took."""

    @property
    def session(self) -> SessionRuntime:
        assert self.hosted is not None
        return self.hosted.session


async def held_sessions(
    tasks: anyio.abc.TaskGroup,
    control: ControlledEmulator,
    client: Client,
    backend: str,
    sizes: list[int],
) -> list[Held]:
    """A session per size, its history journaled on the server and received by the client."""
    token = await client.token()
    held = []
    for size in sizes:
        info = await create_session(client.base_url, token, client=client.http)
        answer = await control.command("grow", session=info.session_id, events=size - 1)
        opening = client.open(backend, session_id=info.session_id, config=CONFIG)
        hosted = await host(tasks, opening)
        await caught_up(hosted.session, answer["last_sequence"], Resumption(0.0, 0.0, GcPauses()))
        held.append(Held(size, info.session_id, hosted))
    return held


async def resume(control: ControlledEmulator, held: Held, watch: Watch, prepends: bool) -> None:
    """A dropped link: ``MISSED`` events journaled meanwhile, and the resume."""
    session = held.session
    cursor, generation = session.conversation.cursor, session.state.generation
    watch.expect(session)
    answer = await control.command("grow", session=held.session_id, events=MISSED, drop_first=True)
    await until(session, lambda update: update.state.generation > generation)
    resumption = watch.current
    assert resumption is not None
    await caught_up(session, answer["last_sequence"], resumption)
    held.resumes.append((resumption, MISSED, replayed(resumption.frames, cursor, prepends)))


async def restart(
    tasks: anyio.abc.TaskGroup,
    control: ControlledEmulator,
    client: Client,
    backend: str,
    held: Held,
    watch: Watch,
    prepends: bool,
) -> None:
    """The application leaves, ``MISSED`` events are journaled, and it comes back with the
    state it saved."""
    text = dump_state(held.session.state)
    hosted, held.hosted = held.hosted, None
    assert hosted is not None
    await hosted.close()
    # The session left (its whole history) is freed now, not in the timed part: after a real
    # restart it would be in no process at all.
    del hosted
    watch.expect(None)
    gc.collect()
    answer = await control.command("grow", session=held.session_id, events=MISSED)
    loading = time.perf_counter()
    state = load_state(text)
    held.loads.append(time.perf_counter() - loading)
    watch.expect(None, time.perf_counter())
    resumption = watch.current
    assert resumption is not None
    held.hosted = await host(tasks, client.open(backend, state=state, config=CONFIG))
    await caught_up(held.session, answer["last_sequence"], resumption)
    count = replayed(resumption.frames, state.conversation.cursor, prepends)
    held.restarts.append((resumption, MISSED, count))


async def run_case(backend: str, prepends: bool, sizes: list[int], rounds: int) -> list[Held]:
    """One adapter against one server behaviour: every size, ``RESUMES_PER_RESTART * rounds``
    resumes, then ``rounds`` restarts."""
    watch = Watch(GcPauses())
    options = ["--prepend-session-start"] if prepends else []
    async with controlled_emulator(*options) as control, client_for(control.emulator) as client:
        with (
            watching(session_class(backend), "open_link", watch.on_open_link),
            watching(Engine, "frame_received", watch.on_frame),
            gc_pauses() as watch.pauses,
        ):
            async with anyio.create_task_group() as tasks:
                held = await held_sessions(tasks, control, client, backend, sizes)
                # One more round of each than counted: the first warms up (it is discarded).
                for _ in range(RESUMES_PER_RESTART * rounds + 1):
                    for one in held:
                        await resume(control, one, watch, prepends)
                for _ in range(rounds + 1):
                    for one in held:
                        await restart(tasks, control, client, backend, one, watch, prepends)
                for one in held:
                    del one.resumes[0], one.restarts[0], one.loads[0]
                watch.expect(None)
                for one in held:
                    if one.hosted is not None:
                        await one.hosted.close()
    return held


def median_wall(results: Results, *, with_gc: bool = True) -> float:
    """The median time until caught up (``with_gc=False``: less the collector's pauses)."""
    return statistics.median(
        r.caught_up - r.started - (0.0 if with_gc else r.gc) for r, _, _ in results
    )


def median_cpu(results: Results) -> float:
    return statistics.median(r.settled_cpu - r.cpu for r, _, _ in results)


def ratio(large: Results, small: Results) -> float:
    """Large over small median time, each less the collector's pauses."""
    return median_wall(large, with_gc=False) / median_wall(small, with_gc=False)


def report(label: str, held: list[Held]) -> dict[str, float]:
    """Print one case's lines; return its figures."""
    small, large = held[0], held[-1]
    figures = {
        "resume": median_wall(large.resumes) / median_wall(small.resumes),
        "restart": median_wall(large.restarts) / median_wall(small.restarts),
    }
    ratios = [
        replayed_count / missed
        for one in held
        for _, missed, replayed_count in one.resumes + one.restarts
    ]
    figures["replayed_vs_missed"] = max(ratios, key=lambda ratio: abs(ratio - 1.0))
    print(f"  {label}")
    for one in held:
        history = one.session.conversation.cursor
        print(
            f"    history {one.size:>7,} (ends at {history:,}): "
            f"resume {median_wall(one.resumes) * 1e3:6.1f} ms "
            f"(CPU to settled {median_cpu(one.resumes) * 1e3:5.1f} ms), "
            f"restart {median_wall(one.restarts) * 1e3:6.1f} ms "
            f"(CPU {median_cpu(one.restarts) * 1e3:5.1f} ms), "
            f"load_state {statistics.median(one.loads) * 1e3:7.1f} ms"
        )
    cpu_resume = median_cpu(large.resumes) / median_cpu(small.resumes)
    cpu_restart = median_cpu(large.restarts) / median_cpu(small.restarts)
    print(
        f"    {large.size:,} / {small.size:,}: resume {figures['resume']:.2f}, restart "
        f"{figures['restart']:.2f} (target <= 1.2; CPU {cpu_resume:.2f}, {cpu_restart:.2f}; "
        f"less GC pauses {ratio(large.resumes, small.resumes):.2f}, "
        f"{ratio(large.restarts, small.restarts):.2f}); replayed / missed {sorted(set(ratios))}"
    )
    paused = [r.gc for one in held for r, _, _ in one.resumes + one.restarts if r.gc > 0]
    print(
        f"    GC paused {len(paused)} of {sum(len(one.resumes + one.restarts) for one in held)} "
        f"resumes and restarts, {sum(paused) * 1e3:.0f} ms in all, "
        f"{max(paused, default=0.0) * 1e3:.0f} ms at most"
    )
    return figures


def run_backend(backend: str, sizes: list[int], rounds: int) -> list[dict[str, float]]:
    """Both server behaviours on one adapter."""
    return [
        report(
            f"{backend}, server {'re-sending SESSION_START first' if prepends else 'plain'}",
            anyio.run(run_case, backend, prepends, sizes, rounds, backend=backend),
        )
        for prepends in (False, True)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="histories up to 10,000, fewer rounds")
    add_adapter_option(parser)
    arguments = parser.parse_args()
    sizes = [100, 10_000] if arguments.quick else [100, 10_000, 100_000]
    rounds = 2 if arguments.quick else 7
    started = time.perf_counter()
    print("polyai-messaging resume benchmark")
    print(f"  {machine()}")
    cases = [
        figures
        for backend in chosen_adapters(arguments)
        for figures in run_backend(backend, sizes, rounds)
    ]
    print(f"  elapsed {time.perf_counter() - started:.1f} s")
    emit(
        {
            "replayed_vs_missed": max(
                (case["replayed_vs_missed"] for case in cases), key=lambda r: abs(r - 1.0)
            ),
            "resume_100k_vs_100": round(max(case["resume"] for case in cases), 3),
            "restart_100k_vs_100": round(max(case["restart"] for case in cases), 3),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
