"""Run every benchmark under ``bench/`` in ``--quick`` mode and check that each one printed its
figures: a last line that is one JSON object holding every figure the benchmark names.

Only that the figures are there is checked, not their targets: quick runs on a shared CI
machine are too noisy to judge by, and the targets are judged on full runs (see each
benchmark's docstring). CI (``.ci/run``) calls this after the tests.

Usage::

    python scripts/check_benchmarks.py            # every benchmark
    python scripts/check_benchmarks.py storm      # only some
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
TIMEOUT_SECONDS = 300

FIGURES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "core": (
            "decode_reduce_vs_json_loads",
            "per_event_50k_vs_500",
            "out_of_order_vs_in_order",
            "step_after_5000_sent_vs_0",
            "bytes_per_event_held",
            "reply_views_6000_vs_100",
        ),
        "roundtrip": (
            "trio_p50_vs_raw",
            "trio_p99_vs_raw",
            "asyncio_p50_vs_raw",
            "asyncio_p99_vs_raw",
            "last_vs_first_100",
        ),
        "sessions": ("sessions", "cpu_share", "late_heartbeats", "aborts", "kib_per_session"),
        "resume": ("replayed_vs_missed", "resume_100k_vs_100", "restart_100k_vs_100"),
        "persist": (
            "dump_100k_s",
            "load_100k_s",
            "dump_per_event_100k_vs_100",
            "load_per_event_100k_vs_100",
        ),
        "storm": ("busiest_100ms_share", "all_back_s", "handshake_timeouts"),
    }
)
"""Each benchmark (``bench/<name>.py``) and the figures its JSON line must hold."""


def problems(output: str, figures: tuple[str, ...]) -> list[str]:
    """What is wrong with a benchmark's ``output`` (nothing: an empty list)."""
    lines = output.rstrip().splitlines()
    if not lines:
        return ["it printed nothing"]
    try:
        value: Any = json.loads(lines[-1])
    except ValueError:
        return [f"its last line is not JSON: {lines[-1][:200]!r}"]
    if not isinstance(value, dict):
        return [f"its last line is JSON but not an object: {lines[-1][:200]!r}"]
    found = []
    for name in figures:
        if name not in value:
            found.append(f"figure {name!r} is missing")
        elif not _is_figure(value[name]):
            found.append(f"figure {name!r} is not a number: {value[name]!r}")
    return found


def _is_figure(value: Any) -> bool:
    # null stands for a figure that could not be had (e.g. sessions that never came back).
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def run(name: str) -> tuple[list[str], str]:
    """Run ``bench/<name>.py --quick``; return what is wrong (nothing: an empty list) and the
    output's last line."""
    command = [sys.executable, str(BENCH / f"{name}.py"), "--quick"]
    try:
        child = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return [f"it did not finish within {TIMEOUT_SECONDS} s"], ""
    if child.returncode != 0:
        tail = "\n".join(child.stderr.rstrip().splitlines()[-20:])
        return [f"it exited with status {child.returncode}:\n{tail}"], ""
    lines = child.stdout.rstrip().splitlines()
    return problems(child.stdout, FIGURES[name]), lines[-1] if lines else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("names", nargs="*", help=f"some of {', '.join(FIGURES)} (default: all)")
    arguments = parser.parse_args()
    unknown = sorted(set(arguments.names) - set(FIGURES))
    if unknown:
        parser.error(f"no such benchmark: {', '.join(unknown)}")
    failed = 0
    for name in arguments.names or list(FIGURES):
        started = time.perf_counter()
        found, figures = run(name)
        elapsed = time.perf_counter() - started
        if found:
            failed += 1
            print(f"bench/{name}.py --quick: FAILED ({elapsed:.0f} s)")
            for problem in found:
                print(f"  {problem}")
        else:
            print(f"bench/{name}.py --quick: printed its figures ({elapsed:.0f} s)")
            print(f"  {figures}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
