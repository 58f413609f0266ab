"""Probe (a tool, not a benchmark): what a restart from saved state does at a long history that
it does not at a short one.

Restarts only, timed as ``bench/resume.py`` times them (from ``open_session`` with the state
``load_state`` just read, ``MISSED`` events journaled meanwhile), the histories taking turns.
Each restart is cut into phases: until the link is asked for (``open``), until the handshake
completes (``connect``), until the first frame (``first``), until the conversation holds every
missed event (``fold``), until the replay settles (``settle``). For each, the garbage
collector's collections by generation and their pauses, the process's CPU time, and the
objects ``load_state`` left in the young generations (``--show``: by type).

Run: ``python bench/_restart_probe.py [--adapter trio|asyncio] [--sizes 100,100000]
[--rounds 10] [--prepend] [--young] [--show]`` (``--young``: a young collection after
``load_state``, untimed, for comparison; ``--prepend``: the server re-sends ``SESSION_START``).
"""

from __future__ import annotations

import argparse
import collections
import gc
import statistics
import sys
import time
from dataclasses import dataclass, field

import anyio
from _common import client_for, controlled_emulator, host, session_class, watching
from resume import CONFIG, MISSED, until

from polyai_messaging.driver import dump_state, load_state
from polyai_messaging.rest import create_session
from polyai_messaging.runtime import Engine

PHASES = ("open", "connect", "first", "fold", "settle")


@dataclass
class Restart:
    """One restart: when each phase ended, and the collector's work meanwhile."""

    times: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    collections: list[int] = field(default_factory=lambda: [0, 0, 0])
    pauses: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    young: tuple[int, int] = (0, 0)
    """Objects in generations 0 and 1 when it began."""
    active: bool = False
    _started: float = 0.0

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if not self.active:
            return
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = info["generation"]
        self.collections[generation] += 1
        self.pauses[generation] += time.perf_counter() - self._started

    def mark(self, name: str) -> None:
        if self.active and name not in self.times:
            self.times[name] = time.perf_counter()
            self.cpu[name] = time.process_time()

    def to_fold(self, *, less_gc: bool = False) -> float:
        return self.times["fold"] - self.times["start"] - (sum(self.pauses) if less_gc else 0.0)

    def cpu_to_fold(self) -> float:
        return self.cpu["fold"] - self.cpu["start"]


@dataclass
class Options:
    backend: str
    sizes: list[int]
    rounds: int
    prepend: bool
    young: bool
    show: bool


async def run(options: Options) -> dict[int, list[Restart]]:
    results: dict[int, list[Restart]] = {size: [] for size in options.sizes}
    current = Restart()

    def on_gc(phase: str, info: dict[str, int]) -> None:
        current.on_gc(phase, info)

    backend = options.backend
    flags = ["--prepend-session-start"] if options.prepend else []
    gc.callbacks.append(on_gc)
    try:
        async with (
            controlled_emulator(*flags) as control,
            client_for(control.emulator) as client,
            anyio.create_task_group() as tasks,
        ):
            token = await client.token()
            saved = {}
            for size in options.sizes:
                info = await create_session(client.base_url, token, client=client.http)
                answer = await control.command("grow", session=info.session_id, events=size)
                hosted = await host(
                    tasks, client.open(backend, session_id=info.session_id, config=CONFIG)
                )
                last = answer["last_sequence"]
                await until(hosted.session, lambda u, last=last: u.conversation.cursor >= last)
                await until(hosted.session, lambda u: u.state.settled)
                saved[size] = (info.session_id, dump_state(hosted.session.state))
                await hosted.close()
            with (
                watching(session_class(backend), "open_link", lambda *_: current.mark("open")),
                watching(Engine, "link_opened", lambda *_: current.mark("connect")),
                watching(Engine, "frame_received", lambda *_: current.mark("first")),
            ):
                for round_ in range(options.rounds + 1):  # the first warms up
                    for size in options.sizes:
                        session_id, text = saved[size]
                        gc.collect()
                        answer = await control.command("grow", session=session_id, events=MISSED)
                        last = answer["last_sequence"]
                        state = load_state(text)
                        if options.young:
                            gc.collect(1)
                        current = Restart()
                        current.young = (len(gc.get_objects(0)), len(gc.get_objects(1)))
                        if options.show:
                            for generation in (0, 1):
                                kinds = collections.Counter(
                                    type(item).__name__ for item in gc.get_objects(generation)
                                )
                                print(f"  {size:,}, generation {generation}:", kinds.most_common(6))
                        current.active = True
                        current.times["start"] = time.perf_counter()
                        current.cpu["start"] = time.process_time()
                        hosted = await host(tasks, client.open(backend, state=state, config=CONFIG))
                        await until(
                            hosted.session, lambda u, last=last: u.conversation.cursor >= last
                        )
                        current.mark("fold")
                        await until(hosted.session, lambda u: u.state.settled)
                        current.mark("settle")
                        current.active = False
                        saved[size] = (session_id, dump_state(hosted.session.state))
                        await hosted.close()
                        del hosted, state
                        if round_:
                            results[size].append(current)
    finally:
        gc.callbacks.remove(on_gc)
    return results


def report(results: dict[int, list[Restart]]) -> None:
    for size, restarts in results.items():
        print(f"  history {size:,}:")
        for name, before in zip(PHASES, ("start", *PHASES), strict=False):
            spans = [r.times[name] - r.times[before] for r in restarts]
            print(
                f"    {name:8} median {statistics.median(spans) * 1e3:6.2f} ms: "
                + " ".join(f"{span * 1e3:.2f}" for span in spans)
            )
        for generation in range(3):
            counts = [r.collections[generation] for r in restarts]
            pauses = [round(r.pauses[generation] * 1e3, 2) for r in restarts]
            print(f"    generation {generation}: collections {counts}, pauses (ms) {pauses}")
        print(f"    young objects at the start {[r.young for r in restarts]}")
    small, large = results[min(results)], results[max(results)]

    def median(restarts: list[Restart], measure: str) -> float:
        if measure == "cpu":
            return statistics.median(r.cpu_to_fold() for r in restarts)
        return statistics.median(r.to_fold(less_gc=measure == "less_gc") for r in restarts)

    ratios = {m: median(large, m) / median(small, m) for m in ("wall", "less_gc", "cpu")}
    print(
        f"  until caught up, {max(results):,} / {min(results):,}: {ratios['wall']:.2f} "
        f"(less GC pauses {ratios['less_gc']:.2f}; CPU {ratios['cpu']:.2f}; CPU "
        f"{median(small, 'cpu') * 1e3:.2f} ms and {median(large, 'cpu') * 1e3:.2f} ms)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--adapter", choices=("trio", "asyncio"), default="trio")
    parser.add_argument("--sizes", default="100,100000", help="history sizes, comma-separated")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--prepend", action="store_true", help="server re-sends SESSION_START")
    parser.add_argument("--young", action="store_true", help="gc.collect(1) after load_state")
    parser.add_argument("--show", action="store_true", help="young objects by type")
    arguments = parser.parse_args()
    options = Options(
        arguments.adapter,
        [int(size) for size in arguments.sizes.split(",")],
        arguments.rounds,
        arguments.prepend,
        arguments.young,
        arguments.show,
    )
    report(anyio.run(run, options, backend=options.backend))
    return 0


if __name__ == "__main__":
    sys.exit(main())
