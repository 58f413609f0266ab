"""Probe: what idle sessions (or a reconnect of each) cost the garbage collector, by count.

Not a benchmark (it prints no target): a tool for finding what each heartbeat or reconnect
allocates that lives long enough to be promoted. N sessions are opened against an emulator in
another process (heartbeats every 2 s), then, over a window of K heartbeat intervals (or one
drop of every link, ``--reconnect``), it counts:

* collections per generation (``gc.callbacks``), per 1,000 heartbeats (or reconnects);
* objects promoted into the oldest generation (everything in the young generations when a
  second-generation collection starts: no cyclic garbage is made, so all of it survives), per
  heartbeat (or reconnect), and by type; with ``--where``, by the line that allocated them
  (tracemalloc, which slows everything: the counts stay right, the timings do not);
* tasks started (trio instrument / asyncio task factory), per heartbeat (or reconnect).

Run: ``python bench/_gc_probe.py --adapter trio --sessions 500 --heartbeats 5``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import tracemalloc
from collections import Counter
from typing import Any

import anyio
from _common import (
    HEARTBEAT_FRAME,
    cli_emulator,
    client_for,
    controlled_emulator,
    emit,
    hold_sessions,
    watching,
)

from polyai_messaging.runtime import Engine, SessionRuntime

INTERVAL = 2


class Census:
    """Collections per generation, and what the second-generation ones promote."""

    def __init__(self, where: bool) -> None:
        self.collections = [0, 0, 0]
        self.promoted = 0
        self.by_type: Counter[str] = Counter()
        self.by_line: Counter[str] = Counter()
        self.gen0_by_type: Counter[str] = Counter()
        self.where = where

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        generation = info["generation"]
        if phase != "start":
            return
        self.collections[generation] += 1
        if generation == 0:
            self.gen0_by_type.update(type(obj).__qualname__ for obj in gc.get_objects(0))
            return
        if generation != 1:
            return
        young = gc.get_objects(0) + gc.get_objects(1)
        self.promoted += len(young)
        for obj in young:
            name = type(obj).__qualname__
            self.by_type[name] += 1
            if self.where:
                trace = tracemalloc.get_object_traceback(obj)
                if trace is not None:
                    frames = [f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in trace]
                    self.by_line[f"{name} @ {' < '.join(frames[:3])}"] += 1
        del young


class Tasks:
    """Tasks started, on either loop."""

    def __init__(self) -> None:
        self.started = 0
        self.armed = False

    def task_spawned(self, task: Any) -> None:  # trio instrument hook
        if self.armed:
            self.started += 1

    def install(self, backend: str) -> None:
        if backend == "trio":
            import trio  # noqa: PLC0415

            trio.lowlevel.add_instrument(self)  # type: ignore[arg-type]
            return
        loop = asyncio.get_running_loop()

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
            if self.armed:
                self.started += 1
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(factory)


async def probe(arguments: argparse.Namespace, backend: str) -> dict[str, Any]:
    heartbeats = [0]
    reconnects = [0]

    def on_send(_session: Any, _generation: int, text: str) -> None:
        if text == HEARTBEAT_FRAME:
            heartbeats[0] += 1

    def on_opened(_session: Any, _generation: int) -> None:
        reconnects[0] += 1

    tasks = Tasks()
    tasks.install(backend)
    sessions: list[SessionRuntime] = []
    release = anyio.Event()
    count = arguments.sessions
    emulating = controlled_emulator() if arguments.reconnect else _cli(arguments)
    async with emulating as control:
        emulator = control.emulator if arguments.reconnect else control
        async with client_for(emulator) as client:
            with (
                watching(Engine, "send_frame", on_send),
                watching(Engine, "link_opened", on_opened),
            ):
                async with anyio.create_task_group() as group:
                    group.start_soon(hold_sessions, client, backend, count, sessions, release)
                    while len(sessions) < count:
                        await anyio.sleep(0.1)
                    await anyio.sleep(2 * INTERVAL)
                    gc.collect()
                    census = Census(arguments.where)
                    if arguments.cycles:
                        gc.disable()
                    if arguments.where:
                        tracemalloc.start(3)
                    heartbeats[0] = reconnects[0] = 0
                    tasks.armed = True
                    gc.callbacks.append(census)
                    started = time.perf_counter()
                    if arguments.reconnect:
                        await control.command("drop")
                        with anyio.move_on_after(30):
                            while reconnects[0] < count:
                                await anyio.sleep(0.05)
                        await anyio.sleep(1.0)  # the replays settle
                    else:
                        await anyio.sleep(arguments.heartbeats * INTERVAL)
                    wall = time.perf_counter() - started
                    cyclic = gc.collect() if arguments.cycles else None
                    gc.enable()
                    gc.callbacks.remove(census)
                    tasks.armed = False
                    tracemalloc.stop()
                    release.set()
    unit = reconnects[0] if arguments.reconnect else heartbeats[0]
    what = "reconnect" if arguments.reconnect else "heartbeat"
    per_k = [round(c * 1000 / max(unit, 1), 2) for c in census.collections]
    print(f"  {backend}: {count} sessions, {wall:.1f} s, {heartbeats[0]} heartbeats, "
          f"{reconnects[0]} links opened")  # fmt: skip
    print(f"    collections per 1,000 {what}s (gen 0, 1, 2): {per_k}; raw {census.collections}")
    print(
        f"    promoted into gen 2: {census.promoted} "
        f"({census.promoted / max(unit, 1):.1f} per {what}); "
        f"tasks started {tasks.started} ({tasks.started / max(unit, 1):.2f} per {what})"
    )
    if cyclic is not None:
        print(f"    cyclic garbage: {cyclic} objects ({cyclic / max(unit, 1):.1f} per {what})")
    for name, n in census.by_type.most_common(arguments.top):
        print(f"      {n / max(unit, 1):7.2f}  {name}")
    print("    in gen 0 when a gen-0 collection starts, per collection:")
    for name, n in census.gen0_by_type.most_common(arguments.top):
        print(f"      {n / max(census.collections[0], 1):7.1f}  {name}")
    for name, n in census.by_line.most_common(arguments.top):
        print(f"      {n / max(unit, 1):7.2f}  {name}")
    return {
        "adapter": backend,
        "unit": what,
        "units": unit,
        "collections_per_1000": per_k,
        "promoted_per_unit": round(census.promoted / max(unit, 1), 2),
        "tasks_per_unit": round(tasks.started / max(unit, 1), 3),
    }


def _cli(arguments: argparse.Namespace) -> Any:
    import contextlib  # noqa: PLC0415

    @contextlib.asynccontextmanager
    async def running() -> Any:
        with cli_emulator("--heartbeat-interval", str(INTERVAL)) as emulator:
            yield emulator

    return running()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--adapter", choices=("trio", "asyncio"), default="trio")
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--heartbeats", type=int, default=5, help="intervals in the window")
    parser.add_argument("--reconnect", action="store_true", help="drop every link once")
    parser.add_argument("--where", action="store_true", help="by allocating line (slow)")
    parser.add_argument(
        "--cycles", action="store_true", help="collector off in the window, then count garbage"
    )
    parser.add_argument("--top", type=int, default=15)
    arguments = parser.parse_args()
    figures = anyio.run(probe, arguments, arguments.adapter, backend=arguments.adapter)
    emit(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
