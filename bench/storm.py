"""Benchmark: a reconnect storm. 1,000 sessions in one process lose their links at once.

For each adapter (trio, asyncio): 1,000 sessions are opened in this process against an emulator
in another (this directory's ``_common.py``, which takes commands), each until the agent's
greeting; then the emulator aborts every socket at the same instant (TCP shut down, no closing
handshake), as a server restart or a load balancer failing over would. Each session's driver
sees its link end and schedules its first reconnect attempt after its backoff's first delay.

What is timed, in this process, by watching three methods every adapter calls (a list append
each): the moment each session starts its first reconnect attempt (the adapter's ``open_link``
for the new link), the moment the link opens (``Engine.link_opened``), and failed attempts
(``Engine.link_failed``, ``Engine.link_refused``).

Figures (the last line, one JSON object), the worse of the two adapters: ``busiest_100ms_share``,
the most first attempts any 100 ms window holds (sliding), as a share of all (target <= 0.15);
``all_back_s``, from the drop until the last session's link is open again (target <= 5 s;
``null`` if some were not back within 30 s, 10 s with ``--quick``); and ``handshake_timeouts``,
attempts that failed as late as the connect timeout (target 0). Other failed attempts are
counted and printed too, with the first attempts in each 100 ms and the garbage collector's
pauses during the storm (a pause holds every due timer back, to fire together after it). A
diagnostic line says when the closes were handled, how late each first attempt started after
its timer was due (the timer's last setting before the attempt, watched through the session's
``rearm_timer``), the most first attempts any 10 ms held (a batch of timers that were held back
and fired together), and the process CPU from the drop to the last close handled and from there to
the last session back, per session (the two overlap: early reconnects start before the last
close is handled).

Run: ``python bench/storm.py`` (1,000 sessions an adapter, about 30 s), or ``--quick`` (500).
``--gc-freeze`` calls :func:`gc.freeze` once the sessions are open, as a long-running service
may after its start-up: the collector then no longer walks the sessions' long-lived objects, so
its pauses (which hold every due timer back) are shorter. Its figures are that setting's.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from _common import (
    add_adapter_option,
    busiest_window,
    chosen_adapters,
    client_for,
    controlled_emulator,
    emit,
    gc_pauses,
    hold_sessions,
    machine,
    session_class,
    watching,
)

from polyai_messaging.driver import OpenSocket
from polyai_messaging.runtime import Engine, SessionRuntime

WINDOW = 0.1


@dataclass
class Storm:
    """What the sessions did after the drop, by session, with ``time.perf_counter`` times."""

    count: int = 0
    since: float = 0.0
    armed: bool = False
    attempts: dict[int, float] = field(default_factory=dict)
    """Each session's first reconnect attempt."""
    opened: dict[int, float] = field(default_factory=dict)
    """When each session's first link after the drop opened."""
    started: dict[tuple[int, int], float] = field(default_factory=dict)
    """When each (session, generation) link started."""
    failures: list[tuple[str, float]] = field(default_factory=list)
    """Each failed attempt: what failed, and how long after its link started."""
    closed: dict[int, float] = field(default_factory=dict)
    """When each session's engine was told its link had closed."""
    due: dict[int, float] = field(default_factory=dict)
    """When each session's first reconnect attempt was due (its timer's latest setting before
    the attempt, in ``time.perf_counter`` time)."""
    cpu: list[float] = field(default_factory=list)
    """Process CPU time at the drop, when the last close was handled, and when all were back."""

    def arm(self) -> None:
        self.since = time.perf_counter()
        self.armed = True
        self.cpu.append(time.process_time())

    def on_link_closed(self, session: Any, *_: Any) -> None:
        if self.armed:
            before = len(self.closed)
            self.closed.setdefault(id(session), time.perf_counter())
            if before < len(self.closed) == self.count:
                self.cpu.append(time.process_time())

    def on_rearm_timer(self, session: Any, deadline: float | None) -> None:
        if self.armed and deadline is not None and id(session) not in self.attempts:
            self.due[id(session)] = time.perf_counter() + deadline - session.now().monotonic

    def on_open_link(self, session: Any, request: OpenSocket) -> None:
        if self.armed:
            now = time.perf_counter()
            self.started[id(session), request.generation] = now
            self.attempts.setdefault(id(session), now)

    def on_link_opened(self, session: Any, generation: int) -> None:
        if self.armed:
            before = len(self.opened)
            self.opened.setdefault(id(session), time.perf_counter())
            if before < len(self.opened) == self.count:
                self.cpu.append(time.process_time())

    def on_link_failed(self, session: Any, generation: int, error: Any) -> None:
        self._failed(session, generation, error if isinstance(error, str) else type(error).__name__)

    def on_link_refused(
        self, session: Any, generation: int, _token: Any, status: int, *_: Any
    ) -> None:
        self._failed(session, generation, f"HTTP {status}")

    def _failed(self, session: Any, generation: int, what: str) -> None:
        if self.armed:
            started = self.started.get((id(session), generation), self.since)
            self.failures.append((what, time.perf_counter() - started))

    @contextmanager
    def watching(self, backend: str) -> Iterator[None]:
        with ExitStack() as stack:
            stack.enter_context(watching(session_class(backend), "open_link", self.on_open_link))
            stack.enter_context(
                watching(session_class(backend), "rearm_timer", self.on_rearm_timer)
            )
            stack.enter_context(watching(Engine, "link_closed", self.on_link_closed))
            stack.enter_context(watching(Engine, "link_opened", self.on_link_opened))
            stack.enter_context(watching(Engine, "link_failed", self.on_link_failed))
            stack.enter_context(watching(Engine, "link_refused", self.on_link_refused))
            yield


async def run_storm(backend: str, count: int, patience: float, freeze: bool) -> dict[str, Any]:
    """One adapter's storm; returns its figures."""
    storm = Storm(count)
    sessions: list[SessionRuntime] = []
    release = anyio.Event()
    async with controlled_emulator() as control, client_for(control.emulator) as client:
        with storm.watching(backend):
            async with anyio.create_task_group() as tasks:
                opening = time.perf_counter()
                tasks.start_soon(hold_sessions, client, backend, count, sessions, release)
                while len(sessions) < count:
                    await anyio.sleep(0.1)
                opened_in = time.perf_counter() - opening
                await anyio.sleep(1.0)  # every link settled after its replay
                if freeze:  # what a long-running service does once it has started up
                    gc.collect()
                    gc.freeze()
                connect_timeout = sessions[0].state.config.connect_timeout_seconds
                with gc_pauses() as pauses:
                    storm.arm()
                    answer = await control.command("drop")
                    with anyio.move_on_after(patience):
                        while len(storm.opened) < count:
                            await anyio.sleep(0.05)
                release.set()
    gc.unfreeze()
    attempts = [moment - storm.since for moment in storm.attempts.values()]
    back = [moment - storm.since for moment in storm.opened.values()]
    timeouts = sum(1 for _, lasted in storm.failures if lasted >= 0.9 * connect_timeout)
    busiest = busiest_window(attempts, WINDOW)
    figures = {
        "busiest_100ms_share": busiest / count,
        "all_back_s": max(back) if len(back) == count else None,
        "handshake_timeouts": timeouts,
        "failed_attempts": len(storm.failures),
    }
    print(f"  {backend}: {count} sessions opened in {opened_in:.1f} s; dropped {answer}")
    print(
        f"    first attempts: {len(attempts)} from {min(attempts):.3f} s to {max(attempts):.3f} s "
        f"after the drop; busiest 100 ms: {busiest} ({figures['busiest_100ms_share']:.1%}, "
        f"target <= 15%)"
    )
    print(f"    first attempts per 100 ms: {histogram(attempts)}; {pauses}")
    print(
        f"    back: {len(back)} of {count}, the last {max(back, default=float('nan')):.2f} s "
        f"after the drop (target <= 5 s)"
    )
    print(f"    {diagnosis(storm, count)}")
    kinds: dict[str, int] = {}
    for what, _ in storm.failures:
        kinds[what] = kinds.get(what, 0) + 1
    print(
        f"    failed attempts: {len(storm.failures)} {kinds or ''}; handshake timeouts: {timeouts}"
    )
    return figures


def diagnosis(storm: Storm, count: int) -> str:
    """How late the first attempts were, and what the closes and reconnects cost in CPU."""
    closed = sorted(moment - storm.since for moment in storm.closed.values())
    late = sorted(
        (storm.attempts[key] - due) * 1e3 for key, due in storm.due.items() if key in storm.attempts
    )
    if not closed or not late:
        return "no closes or attempts seen"
    quantiles = " / ".join(
        f"{late[min(len(late) - 1, int(share * len(late)))]:.1f}" for share in (0.5, 0.9, 0.99)
    )
    bunched = busiest_window([moment - storm.since for moment in storm.attempts.values()], 0.01)
    text = (
        f"closes handled from {closed[0] * 1e3:.0f} to {closed[-1] * 1e3:.0f} ms after the drop; "
        f"timer lateness p50 / p90 / p99 / max {quantiles} / {late[-1]:.1f} ms; busiest 10 ms "
        f"{bunched} first attempts (timers that fired in one batch)"
    )
    cpu = storm.cpu
    if len(cpu) == 3:
        text += (
            f"; CPU {(cpu[1] - cpu[0]) / count * 1e6:.0f} µs per close (drop to last close), "
            f"{(cpu[2] - cpu[1]) / count * 1e6:.0f} µs per reconnect (to the last back)"
        )
    return text


def worst_back(values: list[float | None]) -> float | None:
    """The latest of the adapters' ``all_back_s``; ``None`` if some sessions never came back."""
    if any(value is None for value in values):
        return None
    return round(max(value for value in values if value is not None), 3)


def histogram(times: list[float]) -> str:
    """How many of ``times`` fall in each 100 ms from 0 to the last."""
    counts = [0] * (int(max(times) / WINDOW) + 1)
    for moment in times:
        counts[int(moment / WINDOW)] += 1
    return " ".join(str(n) for n in counts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="500 sessions instead of 1,000")
    parser.add_argument("--sessions", type=int, help="sessions an adapter")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() once the sessions are open, as a long-running service may (the "
        "figures are then that setting's, not the interpreter's default)",
    )
    add_adapter_option(parser)
    arguments = parser.parse_args()
    count = arguments.sessions or (500 if arguments.quick else 1000)
    patience = 10.0 if arguments.quick else 30.0
    started = time.perf_counter()
    print("polyai-messaging reconnect-storm benchmark")
    print(f"  {machine()}")
    if arguments.gc_freeze:
        print("  gc.freeze() once the sessions are open (not the interpreter's default)")
    results = {
        backend: anyio.run(
            run_storm, backend, count, patience, arguments.gc_freeze, backend=backend
        )
        for backend in chosen_adapters(arguments)
    }
    print(f"  elapsed {time.perf_counter() - started:.1f} s")
    emit(
        {
            "busiest_100ms_share": round(
                max(r["busiest_100ms_share"] for r in results.values()), 3
            ),
            "all_back_s": worst_back([r["all_back_s"] for r in results.values()]),
            "handshake_timeouts": sum(r["handshake_timeouts"] for r in results.values()),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
