"""Benchmark: saving and restoring a session's state (``dump_state``, ``load_state``) as its
history grows.

Histories of about 100, 10,000 and 100,000 events, as ``bench/resume.py`` grows them (the
agent joining, then user messages and agent replies, alternately), are folded into a
conversation once; then each size is saved and restored in turn, round after round, with the
garbage collector running as it would in an application (its pauses are part of the cost, and
are shown apart). Before each restore the process holds only what it held at the start: the
state saved is freed and collected, as in a new process.

Each size's line shows the median times, the share of them the collector paused the process,
and the objects the collector tracks that the restored state holds, per event. Figures (the
last line, one JSON object): ``dump_100k_s`` and ``load_100k_s``, the median times at the
largest history; ``dump_per_event_100k_vs_100`` and ``load_per_event_100k_vs_100``, the time
per event at the largest history over that at the smallest (1.0: linear). No targets: the
figures are for comparing versions.

Run: ``python bench/persist.py`` (up to 100,000 events, about a minute), or ``--quick`` (up to
10,000, a few seconds; the figures keep their names).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from dataclasses import dataclass, field

import attrs
from _common import emit, gc_pauses, machine

from polyai_messaging.core import decode_object, fold
from polyai_messaging.driver import SessionState, dump_state, load_state


def grown(size: int) -> SessionState:
    """A state whose conversation holds ``size`` events like ``bench/resume.py``'s."""
    frames: list[dict[str, object]] = [{"type": "EVENT_TYPE_SESSION_START", "payload": {}}]
    for number in range(2, size + 1):
        if number == 2:
            frame = {"type": "EVENT_TYPE_POLY_AGENT_JOINED", "payload": {"agent_name": "Ada"}}
        elif number % 2:
            frame = {
                "type": "EVENT_TYPE_USER_MESSAGE",
                "payload": {
                    "text": f"message {number}: a table for four at 7pm",
                    "message_id": f"u{number}",
                },
                "metadata": {"custom": {"client_event_id": f"grown-{number}"}},
            }
        else:
            frame = {
                "type": "EVENT_TYPE_POLY_AGENT_MESSAGE",
                "payload": {
                    "message_id": f"a{number}",
                    "text": f"reply {number}: I can help you with that booking. Anything else?",
                    "attachments": [],
                    "response_suggestions": [{"message_text": "No, thanks"}],
                },
            }
        frames.append(frame)
    for sequence, frame in enumerate(frames, start=1):
        frame.update(
            id=f"event-{sequence:08d}",
            sequence=sequence,
            timestamp=f"2026-01-01T{sequence // 3600 % 24:02d}:{sequence // 60 % 60:02d}:"
            f"{sequence % 60:02d}.{sequence % 1000:03d}000+00:00",
        )
    conversation = fold(decode_object(frame) for frame in frames)
    return attrs.evolve(SessionState.new("persisted", seed=1), conversation=conversation)


@dataclass
class Size:
    """One history size and what saving and restoring it measured."""

    events: int
    text: str
    dumps: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)
    dump_gc: list[float] = field(default_factory=list)
    load_gc: list[float] = field(default_factory=list)
    tracked: int = 0


def measure(size: Size, state: SessionState) -> None:
    """Save ``state`` and restore the text once, timing both."""
    with gc_pauses() as pauses:
        started = time.perf_counter()
        size.text = dump_state(state)
        size.dumps.append(time.perf_counter() - started)
        size.dump_gc.append(pauses.total)
    del state
    gc.collect()
    before = len(gc.get_objects())
    with gc_pauses() as pauses:
        started = time.perf_counter()
        restored = load_state(size.text)
        size.loads.append(time.perf_counter() - started)
        size.load_gc.append(pauses.total)
    size.tracked = len(gc.get_objects()) - before
    assert restored.conversation.cursor == size.events
    del restored
    gc.collect()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="histories up to 10,000")
    arguments = parser.parse_args()
    counts = [100, 10_000] if arguments.quick else [100, 10_000, 100_000]
    rounds = 3 if arguments.quick else 5
    print("polyai-messaging save and restore benchmark")
    print(f"  {machine()}")
    sizes = []
    for count in counts:
        # Each size is saved once untimed: the states are then rebuilt from their text, so
        # that only one is held at a time.
        sizes.append(Size(count, dump_state(grown(count))))
        gc.collect()
    for _ in range(rounds):
        for size in sizes:
            measure(size, load_state(size.text))
    for size in sizes:
        dump, load = statistics.median(size.dumps), statistics.median(size.loads)
        print(
            f"  {size.events:>7,} events: dump_state {dump * 1e3:8.1f} ms "
            f"(GC {statistics.median(size.dump_gc) / dump:4.0%}), load_state "
            f"{load * 1e3:8.1f} ms (GC {statistics.median(size.load_gc) / load:4.0%}), "
            f"{len(size.text) / size.events:.0f} bytes and {size.tracked / size.events:.1f} "
            "tracked objects per event"
        )
    small, large = sizes[0], sizes[-1]

    def per_event(size: Size, times: list[float]) -> float:
        return statistics.median(times) / size.events

    emit(
        {
            "dump_100k_s": round(statistics.median(large.dumps), 3),
            "load_100k_s": round(statistics.median(large.loads), 3),
            "dump_per_event_100k_vs_100": round(
                per_event(large, large.dumps) / per_event(small, small.dumps), 2
            ),
            "load_per_event_100k_vs_100": round(
                per_event(large, large.loads) / per_event(small, small.loads), 2
            ),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
