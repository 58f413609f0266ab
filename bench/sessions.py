"""Benchmark: thousands of idle sessions in one client process, heartbeats at 2 s.

For each adapter (trio, asyncio), a client process of its own (this file with ``--client``)
opens N sessions against the emulator in another process (``polyai-messaging emulator --port 0
--fast --heartbeat-interval 2``), sharing one HTTP client and one access token as an application
running many sessions would, each until the agent's greeting; lets every heartbeat cycle start
(two intervals), then holds them all for the hold time while only heartbeats flow.

Measured in the client process, over the hold:

* ``cpu_share``: the process's CPU time (``time.process_time``, all threads) over the wall time
  (1.0 is a whole core; target <= 0.25 for 2,000 sessions);
* ``late_heartbeats``: heartbeats sent more than 1.5 intervals after the session's previous one,
  and sessions whose last heartbeat is that old when the hold ends (target 0); seen by watching
  ``Engine.send_frame`` (a comparison and a dict write a frame);
* ``aborts``: links the client aborted (``Engine.abort_link``: liveness, which aborts a link
  with no inbound frame for an interval plus the grace) from the moment all were open
  (target 0);
* ``kib_per_session``: the growth of the process's resident set size (RSS, from
  ``/proc/self/statm``) from before the sessions were opened (after one warm-up session) to
  the end of the hold, per session (target <= 24 KiB). RSS rather than tracemalloc: it is what
  the sessions cost the machine (C allocations included, such as zlib's where WebSocket
  compression is negotiated, and the allocator's slack), and tracemalloc would slow
  every allocation, and so the CPU figure taken in the same run, several times over.

Each adapter's lines also give the CPU time per heartbeat sent and the garbage collector's
pauses during the hold (its full collections scan every object of every session).

The figures (the last line, one JSON object) are the worse of the two adapters' (the larger
``cpu_share`` and ``kib_per_session``, the sum of ``late_heartbeats`` and ``aborts``), with each
adapter's own under ``by_adapter``.

Run: ``python bench/sessions.py`` (2,000 sessions held 60 s, about 3 minutes), or ``--quick``
(200 sessions held 10 s).
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
from _common import (
    BACKENDS,
    HEARTBEAT_FRAME,
    Emulator,
    add_adapter_option,
    chosen_adapters,
    cli_emulator,
    client_for,
    emit,
    gc_pauses,
    hold_sessions,
    machine,
    rss_bytes,
    watching,
)

from polyai_messaging.runtime import Engine, SessionRuntime

INTERVAL = 2
"""The heartbeat interval the emulator advertises, in seconds."""
LATE = 1.5 * INTERVAL


@dataclass
class Heartbeats:
    """Each session's latest heartbeat, and how many came late, while armed."""

    armed: bool = False
    last: dict[int, float] = field(default_factory=dict)
    late: int = 0
    sent: int = 0
    aborts: int = 0

    def on_send(self, session: Any, _generation: int, text: str) -> None:
        if text != HEARTBEAT_FRAME:
            return
        now = time.perf_counter()
        key = id(session)
        if self.armed:
            self.sent += 1
            if now - self.last.get(key, now) > LATE:
                self.late += 1
        self.last[key] = now

    def on_abort(self, _session: Any, _generation: int) -> None:
        if self.armed:
            self.aborts += 1

    def missing(self, sessions: list[SessionRuntime]) -> int:
        """Sessions whose latest heartbeat is older than 1.5 intervals now."""
        now = time.perf_counter()
        return sum(1 for session in sessions if now - self.last.get(id(session), 0.0) > LATE)


async def hold(emulator: Emulator, backend: str, count: int, seconds: float) -> dict[str, Any]:
    """The client process's run (see the module docstring); returns its figures."""
    heartbeats = Heartbeats()
    sessions: list[SessionRuntime] = []
    release = anyio.Event()
    async with client_for(emulator) as client:
        async with client.open(backend) as warm_up:
            await warm_up.wait_reply()
        gc.collect()
        rss_before = rss_bytes()
        with (
            watching(Engine, "send_frame", heartbeats.on_send),
            watching(Engine, "abort_link", heartbeats.on_abort),
        ):
            async with anyio.create_task_group() as tasks:
                opening = time.perf_counter()
                tasks.start_soon(hold_sessions, client, backend, count, sessions, release)
                while len(sessions) < count:
                    await anyio.sleep(0.1)
                opened_in = time.perf_counter() - opening
                heartbeats.armed = True
                await anyio.sleep(2 * INTERVAL)  # every session's heartbeat cycle has started
                with gc_pauses() as pauses:
                    wall, cpu = time.perf_counter(), time.process_time()
                    await anyio.sleep(seconds)
                    cpu = time.process_time() - cpu
                    wall = time.perf_counter() - wall
                late = heartbeats.late + heartbeats.missing(sessions)
                rss_after = rss_bytes()
                reconnects = sum(session.state.counters.reconnects for session in sessions)
                release.set()
    figures = {
        "sessions": count,
        "cpu_share": cpu / wall,
        "late_heartbeats": late,
        "aborts": heartbeats.aborts,
        "kib_per_session": (rss_after - rss_before) / count / 1024,
    }
    print(f"  {backend}: {count} sessions opened in {opened_in:.1f} s, held {wall:.1f} s")
    print(
        f"    client CPU {cpu:.2f} s over {wall:.1f} s: {figures['cpu_share']:.3f} of a core "
        f"(target <= 0.25); {cpu / max(heartbeats.sent, 1) * 1e6:.0f} us per heartbeat sent "
        f"({heartbeats.sent} sent)"
    )
    print(
        f"    late heartbeats {late} (target 0), aborts {heartbeats.aborts} (target 0), "
        f"reconnects {reconnects}; {pauses}"
    )
    print(
        f"    RSS {rss_before / 2**20:.1f} MiB -> {rss_after / 2**20:.1f} MiB: "
        f"{figures['kib_per_session']:.1f} KiB per session (target <= 24)"
    )
    return figures


def run_client(arguments: argparse.Namespace) -> int:
    """``--client BACKEND``: one adapter's run, in this process; its figures as the last line."""
    emulator = Emulator(arguments.base_url, arguments.connector_token, arguments.host)
    backend = arguments.client
    figures = anyio.run(
        hold, emulator, backend, arguments.sessions, arguments.hold, backend=backend
    )
    emit(figures)
    return 0


def run_adapter(backend: str, count: int, seconds: float) -> dict[str, Any]:
    """One adapter's run in a client process of its own, against an emulator of its own."""
    with cli_emulator("--heartbeat-interval", str(INTERVAL)) as emulator:
        command = [
            sys.executable, __file__, "--client", backend, "--sessions", str(count),
            "--hold", str(seconds), "--base-url", emulator.base_url,
            "--connector-token", emulator.connector_token, "--host", emulator.host,
        ]  # fmt: skip
        child = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = child.stdout.rstrip().splitlines()
    if child.returncode != 0 or not lines:
        sys.stderr.write(child.stderr)
        raise RuntimeError(f"the {backend} client failed (exit status {child.returncode})")
    print("\n".join(lines[:-1]), flush=True)
    figures: dict[str, Any] = json.loads(lines[-1])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="200 sessions held 10 s")
    parser.add_argument("--sessions", type=int, help="sessions in the client process")
    parser.add_argument("--hold", type=float, help="seconds the sessions are held")
    add_adapter_option(parser)
    parser.add_argument("--client", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--connector-token", help=argparse.SUPPRESS)
    parser.add_argument("--host", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    arguments.sessions = arguments.sessions or (200 if arguments.quick else 2000)
    arguments.hold = arguments.hold or (10.0 if arguments.quick else 60.0)
    if arguments.client:
        return run_client(arguments)
    started = time.perf_counter()
    print("polyai-messaging idle-sessions benchmark")
    print(f"  {machine()}")
    by_adapter = {
        backend: run_adapter(backend, arguments.sessions, arguments.hold)
        for backend in chosen_adapters(arguments)
    }
    print(f"  elapsed {time.perf_counter() - started:.1f} s")
    emit(
        {
            "sessions": arguments.sessions,
            "cpu_share": round(max(f["cpu_share"] for f in by_adapter.values()), 3),
            "late_heartbeats": sum(f["late_heartbeats"] for f in by_adapter.values()),
            "aborts": sum(f["aborts"] for f in by_adapter.values()),
            "kib_per_session": round(max(f["kib_per_session"] for f in by_adapter.values()), 1),
            "by_adapter": {
                backend: {name: round(value, 3) for name, value in figures.items()}
                for backend, figures in by_adapter.items()
            },
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
