"""Benchmark of the pure core: ``wire.decode`` + ``reducer.apply`` on realistic traffic.

Six figures:

(a) ``decode_reduce_vs_json_loads``: the cost of ``apply(conv, decode(frame))`` per frame,
    divided by the cost of ``json.loads(frame)`` on the same frames. Target: <= 2.0.
(b) ``per_event_50k_vs_500``: the cost of applying a fixed set of further events to a
    conversation with 50,000 events of history, divided by the cost at 500. Target: <= 1.2
    (``Conversation`` is built on persistent structures, so history size should not matter).
(c) ``out_of_order_vs_in_order``: the time to apply the same 20,000 events one by one sent
    evens-then-odds (10,000 gaps opened, then each filled), divided by the time in order.
    Target: <= 2.0 (a late event costs O(log n), not a pass over every gap).
(e) ``bytes_per_event_held``: the memory a conversation of 50,000 events holds per event
    (traced allocations that survive decoding and folding every frame), divided by the average
    size of those events' JSON. Target: <= 2.0.
(d) ``step_after_5000_sent_vs_0``: the cost of one driver ``step`` on a heartbeat echo in a
    session that has sent (and seen confirmed) 5,000 messages, divided by the same step in a
    session that sent none. Target: <= 1.2 (finished messages leave the outbox's pending set).
(f) ``reply_views_6000_vs_100``: the cost of the views an application reads after every update
    while it waits for a reply (``busy``, ``reply_complete`` of its last message,
    ``suggestions``, ``streaming``) on a conversation of 6,000 events, divided by the same on
    one of 100. Target: <= 1.2 (they read marks kept as events are folded, not the transcript).

The traffic is generated deterministically: conversations as a server sends them, with replay
batches on connect, streamed replies (chunks), whole messages with suggestions and attachments,
user-message echoes with ``metadata.custom``, heartbeat echoes, live-agent typing, handoffs with
queue statuses, language changes, system messages, and reconnect replays that overlap (so
duplicates). Every timing is the minimum over 15 rounds, the two sides of each ratio alternating
round by round, with the garbage collector paused during the timed loop (as :mod:`timeit` does).

(a) is measured in five fresh processes, each timing both sides itself, and the median ratio is
reported with all five: from one process to the next the ratio moves by several percent (memory
layout, more than load), and sometimes by much more, so one process is one sample, not a figure.

(b) applies the further events from the same base in every round, so each round also forks the
base's history; that is part of what is measured.

Below (a), three informational lines split its time into parsing, ``decode_object`` and
``apply``, each against ``json.loads`` timed in the same process and run (measured separately,
so they need not add up exactly). Below (c), one informational
line does the same for one streamed message of 16,000 chunks whose final chunk comes first.

Run: ``python bench/core.py`` (about 20-30 s), or ``python bench/core.py --quick`` (fewer
processes and rounds, about 10 s; noisier). The last line of output is exactly one JSON object
with every figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from polyai_messaging.core import Conversation, ServerEvent
from polyai_messaging.core import _reducer as reducer
from polyai_messaging.core import _wire as wire
from polyai_messaging.driver import (
    FrameReceived,
    LinkOpened,
    Now,
    SendText,
    SessionState,
    Start,
    event_to_wire,
    step,
)

Frame = dict[str, Any]

WORDS = (
    "I", "can", "help", "you", "with", "that", "booking", "tomorrow", "at", "7pm", "for",
    "four", "people", "table", "Main", "Street", "sure!", "let", "me", "check", "availability",
    "réservation", "merci", "🙂",
)  # fmt: skip


def dumps(frame: Frame) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


class Server:
    """One session's server side: a journal with consecutive sequences, and the frames sent."""

    def __init__(self, rng: random.Random, number: int) -> None:
        self.rng = rng
        self.number = number
        self.journal: list[Frame] = []
        self.sent: list[Frame] = []
        self.transient = 0
        self.messages = 0

    def _uuid(self, n: int) -> str:
        return f"018d91c7-{self.number:04x}-7474-9a84-{n:012x}"

    def _timestamp(self, n: int) -> str:
        minute, second = divmod(n, 60)
        hour, minute = divmod(minute, 60)
        fraction = self.rng.randrange(1000)
        return f"2024-02-12T{12 + hour % 12:02d}:{minute:02d}:{second:02d}.{fraction:03d}Z"

    def event(self, kind: str, payload: Frame | None = None, custom: Frame | None = None) -> Frame:
        sequence = len(self.journal) + 1
        frame: Frame = {
            "id": self._uuid(sequence),
            "sequence": sequence,
            "timestamp": self._timestamp(sequence),
            "type": "EVENT_TYPE_" + kind,
            "payload": payload or {},
        }
        if custom:
            frame["metadata"] = {"custom": custom}
        self.journal.append(frame)
        return frame

    def send(self, kind: str, payload: Frame | None = None, custom: Frame | None = None) -> None:
        self.sent.append(self.event(kind, payload, custom))

    def send_transient(self, kind: str, payload: Frame, *, with_id: bool = True) -> None:
        self.transient += 1
        frame: Frame = {"type": "EVENT_TYPE_" + kind, "payload": payload}
        if with_id:
            frame.update(
                id=self._uuid(0xF00000 + self.transient),
                sequence=None,
                timestamp=self._timestamp(len(self.journal)),
            )
        self.sent.append(frame)

    def replay(self, cursor: int, per_batch: int = 25) -> None:
        """Connect: the history after ``cursor`` in batches (the server may split it)."""
        history = self.journal[cursor:]
        for start in range(0, max(1, len(history)), per_batch):
            self.sent.append(
                {
                    "id": self._uuid(0xB00000 + len(self.sent)),
                    "sequence": None,
                    "timestamp": self._timestamp(len(self.journal)),
                    "type": "EVENT_TYPE_EVENT_BATCH",
                    "payload": {"events": history[start : start + per_batch]},
                }
            )

    # conversation pieces -------------------------------------------------------------------

    def text(self, low: int, high: int) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(low, high)))

    def suggestions(self) -> list[Frame]:
        return [{"message_text": self.text(2, 5)} for _ in range(self.rng.randint(0, 3))]

    def attachments(self) -> list[Frame]:
        if self.rng.random() > 0.2:
            return []
        n = self.rng.randrange(1000)
        return [
            {
                "title": "Our locations",
                "preview_image_url": f"https://example.com/thumb/{n}.png",
                "content_url": f"https://example.com/locations/{n}",
                "content_type": "ATTACHMENT_CONTENT_TYPE_URL",
                "call_to_action_text": "View locations",
            }
        ]

    def agent_reply(self, streaming: bool) -> None:
        self.send("POLY_AGENT_THINKING")
        self.messages += 1
        message_id = f"msg_{self.number}_{self.messages}"
        if not streaming:
            self.send(
                "POLY_AGENT_MESSAGE",
                {
                    "message_id": message_id,
                    "text": self.text(5, 30),
                    "attachments": self.attachments(),
                    "response_suggestions": self.suggestions(),
                },
            )
            return
        count = self.rng.randint(3, 10)
        for index in range(1, count + 1):
            final = index == count
            self.send(
                "POLY_AGENT_MESSAGE_CHUNK",
                {
                    "message_id": message_id,
                    "text": "" if final else self.text(1, 4) + " ",
                    "attachments": self.attachments() if final else [],
                    "response_suggestions": self.suggestions() if final else [],
                    "chunk_index": index,
                    "is_complete": final,
                },
            )

    def user_turn(self, streaming: bool) -> None:
        self.messages += 1
        self.send(
            "USER_MESSAGE",
            {"text": self.text(2, 12), "message_id": f"umsg_{self.number}_{self.messages}"},
            custom={"client_event_id": f"cev-{self.number}-{self.messages}"},
        )
        self.agent_reply(streaming)

    def handoff(self) -> None:
        self.send("POLY_AGENT_TRIGGERED_HANDOFF")
        self.send("POLY_AGENT_LEFT")
        self.send("HANDOFF_ACCEPTED")
        for position in range(self.rng.randint(1, 4), 0, -1):
            self.send(
                "HANDOFF_QUEUE_STATUS",
                {
                    "queue_name": "General Support",
                    "position_in_queue": position,
                    "estimated_wait_seconds": 60 * position,
                },
            )
        agent = {"id": "agent_42", "name": "Sarah", "avatar_url": "https://example.com/s.png"}
        self.send("LIVE_AGENT_JOINED", {"agent": agent})
        for _ in range(self.rng.randint(2, 5)):
            self.send_transient(
                "LIVE_AGENT_TYPING", {"state": "TYPING_STATE_STARTED", "agent_id": "agent_42"}
            )
            self.messages += 1
            self.send(
                "LIVE_AGENT_MESSAGE",
                {
                    "message_id": f"live_{self.number}_{self.messages}",
                    "agent_id": "agent_42",
                    "text": self.text(4, 20),
                    "attachments": [],
                    "response_suggestions": [],
                },
            )
            self.messages += 1
            self.send(
                "USER_MESSAGE",
                {"text": self.text(2, 8), "message_id": f"umsg_{self.number}_{self.messages}"},
                custom={"client_event_id": f"cev-{self.number}-{self.messages}"},
            )
        self.send("LIVE_AGENT_LEFT")


def conversation(rng: random.Random, number: int) -> list[str]:
    """The frames one client receives during one session, as JSON text."""
    server = Server(rng, number)
    streaming = rng.random() < 0.75
    caps = {
        "streaming": streaming,
        "max_message_size_bytes": 131072,
        "max_reconnect_attempts": 5,
        "heartbeat_interval_seconds": 30,
    }
    server.event("SESSION_START", {"capabilities": caps})
    server.replay(0)
    server.send("REQUEST_POLY_AGENT_JOIN")
    server.send("POLY_AGENT_JOINED", {"agent_name": "Ada", "agent_avatar_url": "https://a/b.png"})
    server.agent_reply(streaming)
    turns = rng.randint(6, 14)
    for turn in range(turns):
        server.user_turn(streaming)
        server.send_transient("HEARTBEAT", {}, with_id=False)
        roll = rng.random()
        if roll < 0.08:
            server.send("LANGUAGE_CHANGED", {"language_code": rng.choice(["fr-FR", "de-DE"])})
        elif roll < 0.14:
            server.send(
                "SYSTEM_MESSAGE",
                {
                    "level": "SYSTEM_MESSAGE_LEVEL_ERROR",
                    "message": "Sorry, I'm having trouble responding right now. Please try again.",
                },
            )
        elif roll < 0.20:
            # a drop and a reconnect from an older persisted cursor: the replay overlaps
            cursor = max(0, len(server.journal) - rng.randint(3, 15))
            server.replay(cursor)
        if turn == turns // 2 and rng.random() < 0.3:
            server.handoff()
    server.send("USER_END_SESSION")
    server.send("SESSION_END", {"reason": "REASON_USER_END"})
    return [dumps(frame) for frame in server.sent]


def traffic(sessions: int, seed: int = 1) -> list[list[str]]:
    rng = random.Random(seed)
    return [conversation(rng, number) for number in range(sessions)]


# --- timing ---------------------------------------------------------------------------------


def interleaved(rounds: int, *runs: Callable[[], object]) -> list[float]:
    """Minimum wall time of each run over ``rounds``, the runs alternating round by round.

    Alternating makes a ratio of two runs robust to load that changes during the benchmark;
    the garbage collector is paused during each timed run (as :mod:`timeit` does).
    """
    best = [float("inf")] * len(runs)
    for _ in range(rounds):
        for index, run in enumerate(runs):
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter_ns()
                run()
                elapsed = time.perf_counter_ns() - start
            finally:
                gc.enable()
            best[index] = min(best[index], elapsed / 1e9)
    return best


def json_only(sessions: list[list[str]]) -> None:
    loads = json.loads
    for frames in sessions:
        for frame in frames:
            loads(frame)


def decode_and_reduce(sessions: list[list[str]]) -> None:
    decode, apply = wire.decode, reducer.apply
    for frames in sessions:
        state = Conversation()
        for frame in frames:
            state = apply(state, decode(frame))


def parse_only(sessions: list[list[str]]) -> None:
    parse = wire._parse  # what wire.decode parses with
    for frames in sessions:
        for frame in frames:
            parse(frame)


def decode_only(parsed: list[list[Any]]) -> None:
    decode_object = wire.decode_object
    for values in parsed:
        for value in values:
            decode_object(value)


def apply_only(decoded: list[list[ServerEvent]]) -> None:
    apply = reducer.apply
    for events in decoded:
        state = Conversation()
        for event in events:
            state = apply(state, event)


def history(size: int, extra: int, seed: int = 2) -> tuple[list[ServerEvent], list[ServerEvent]]:
    """``size`` events of journaled history, then ``extra`` further events (decoded)."""
    rng = random.Random(seed)
    events: list[ServerEvent] = []
    number = 0
    while len(events) < size + extra:
        for text in conversation(rng, number):
            value = json.loads(text)
            if value["type"] == "EVENT_TYPE_EVENT_BATCH" or value.get("sequence") is None:
                continue
            events.append(wire.decode_object(value))
        number += 1
    # Renumber into one long session: consecutive sequences, unique ids.
    renumbered = [
        _evolve(event, sequence=index + 1, id=f"h-{index + 1}")
        for index, event in enumerate(events[: size + extra])
    ]
    return renumbered[:size], renumbered[size:]


def _evolve(event: ServerEvent, **changes: Any) -> ServerEvent:
    return attrs.evolve(event, **changes)


def applying(base: Conversation, further: list[ServerEvent]) -> Callable[[], object]:
    apply = reducer.apply

    def run() -> Conversation:
        state = base
        for event in further:
            state = apply(state, event)
        return state

    return run


def shift(events: Iterable[ServerEvent], offset: int) -> list[ServerEvent]:
    return [
        _evolve(e, sequence=(e.sequence or 0) + offset, id=f"x-{(e.sequence or 0) + offset}")
        for e in events
    ]


def evens_then_odds(events: list[ServerEvent]) -> list[ServerEvent]:
    """``events`` (sequences 1..n) with every even sequence first, then every odd one."""
    return events[1::2] + events[0::2]


def stream(chunks: int) -> list[ServerEvent]:
    """One streamed agent message of ``chunks`` chunks, in ``chunk_index`` order."""
    return [
        wire.decode_object(
            {
                "type": "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK",
                "id": f"c-{index}",
                "sequence": index,
                "payload": {
                    "message_id": "long",
                    "text": "word ",
                    "chunk_index": index,
                    "is_complete": index == chunks,
                },
            }
        )
        for index in range(1, chunks + 1)
    ]


def driver_after(sent: int) -> SessionState:
    """A settled session whose ``sent`` messages were all echoed (their echoes folded)."""
    now = Now(0.0, 1_700_000_000.0)
    state, _ = step(SessionState.new("bench", seed=1), Start(), now)
    state, _ = step(state, LinkOpened(state.generation), now)
    history = [
        {"id": "s1", "sequence": 1, "type": "EVENT_TYPE_SESSION_START",
         "payload": {"capabilities": {"heartbeat_interval_seconds": 30}}},
        {"id": "s2", "sequence": 2, "type": "EVENT_TYPE_REQUEST_POLY_AGENT_JOIN", "payload": {}},
        {"id": "s3", "sequence": 3, "type": "EVENT_TYPE_POLY_AGENT_JOINED", "payload": {}},
    ]  # fmt: skip
    batch = {"type": "EVENT_TYPE_EVENT_BATCH", "payload": {"events": history}}
    state, _ = step(state, FrameReceived(state.generation, dumps(batch)), now)
    heartbeat = {"type": "EVENT_TYPE_HEARTBEAT", "payload": {}}
    state, _ = step(state, FrameReceived(state.generation, dumps(heartbeat)), now)  # settles
    for number in range(sent):
        cid = f"c{number}"
        state, _ = step(state, SendText(f"message {number}", cid), now)
        echo = {
            "id": f"u{number}", "sequence": 4 + number, "type": "EVENT_TYPE_USER_MESSAGE",
            "payload": {"text": f"message {number}", "message_id": f"m{number}"},
            "metadata": {"custom": {"client_event_id": cid}},
        }  # fmt: skip
        state, _ = step(state, FrameReceived(state.generation, dumps(echo)), now)
    return state


def held_per_event(count: int) -> tuple[float, float]:
    """Bytes a ``count``-event conversation holds per event, and its events' mean JSON size."""
    events, _ = history(count, 0, seed=4)
    texts = [dumps(event_to_wire(event)) for event in events]
    del events
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    decode, apply = wire.decode, reducer.apply
    conversation = Conversation()
    for text in texts:
        conversation = apply(conversation, decode(text))
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    held = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert conversation.cursor == count
    return held / count, sum(len(text.encode()) for text in texts) / count


def reply_views(conversation: Conversation, count: int) -> Callable[[], object]:
    """``count`` readings of what ``wait_reply`` and a chat UI check after every update."""
    echoed = [
        event.metadata.custom["client_event_id"]
        for event in conversation.timeline
        if event.metadata is not None and "client_event_id" in event.metadata.custom
    ]
    last = echoed[-1] if echoed else None

    def run() -> None:
        for _ in range(count):
            _ = conversation.busy
            conversation.reply_complete(last)
            _ = conversation.suggestions
            _ = conversation.streaming

    return run


def stepping(state: SessionState, count: int) -> Callable[[], object]:
    """``count`` steps, each on a heartbeat echo, from the same ``state``."""
    echo = FrameReceived(state.generation, dumps({"type": "EVENT_TYPE_HEARTBEAT", "payload": {}}))
    now = Now(1.0, 1_700_000_001.0)

    def run() -> None:
        for _ in range(count):
            step(state, echo, now)

    return run


@attrs.frozen
class Settings:
    """How much to measure: the full run, or ``--quick``."""

    processes: int = 5
    """(a) is the median over this many processes (see the module docstring)."""
    rounds: int = 15
    order_rounds: int = 5

    @classmethod
    def quick(cls) -> Settings:
        return cls(processes=3, rounds=5, order_rounds=3)


def measure_a(settings: Settings) -> tuple[float, float]:
    """(a)'s two sides in this process: ``json.loads`` and decode+reduce over the traffic."""
    sessions = traffic(sessions=40)
    t_json, t_core = interleaved(
        settings.rounds, lambda: json_only(sessions), lambda: decode_and_reduce(sessions)
    )
    return t_json, t_core


def sample_a(quick: bool) -> tuple[float, float]:
    """:func:`measure_a` in a fresh Python process."""
    command = [sys.executable, __file__, "--measure-a", *(["--quick"] if quick else [])]
    child = subprocess.run(command, capture_output=True, text=True, check=True)
    t_json, t_core = json.loads(child.stdout)
    return float(t_json), float(t_core)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer processes and rounds")
    parser.add_argument("--measure-a", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    settings = Settings.quick() if arguments.quick else Settings()
    if arguments.measure_a:
        print(json.dumps(measure_a(settings)))
        return 0
    started = time.perf_counter()

    # (a) decode + reduce vs json.loads --------------------------------------------------------
    sessions = traffic(sessions=40)
    frames = [frame for session in sessions for frame in session]
    kinds: dict[str, int] = {}
    for frame in frames:
        kind = json.loads(frame)["type"].removeprefix("EVENT_TYPE_")
        kinds[kind] = kinds.get(kind, 0) + 1
    samples = sorted(
        (sample_a(arguments.quick) for _ in range(settings.processes)), key=lambda t: t[1] / t[0]
    )
    t_json, t_core = samples[len(samples) // 2]
    ratio_a = t_core / t_json
    # Where (a)'s time goes, for whoever optimises next (informational; not one of the figures).
    parsed = [[json.loads(frame) for frame in session] for session in sessions]
    decoded = [[wire.decode_object(value) for value in session] for session in parsed]
    # Each part against json.loads timed in this same process (a ratio never mixes processes).
    t_loads, t_parse, t_decode, t_apply = interleaved(
        7,
        lambda: json_only(sessions),
        lambda: parse_only(sessions),
        lambda: decode_only(parsed),
        lambda: apply_only(decoded),
    )

    # (b) per-event apply cost at 50,000 vs 500 events of history ------------------------------
    small_size, large_size, further_count = 500, 50_000, 2_000
    large_history, further = history(large_size, further_count)
    small_base = reducer.fold(large_history[:small_size])
    large_base = reducer.fold(large_history)
    # the same further events, renumbered to follow each history
    further_small = shift(further, small_size - large_size)
    small_time, large_time = interleaved(
        settings.rounds, applying(small_base, further_small), applying(large_base, further)
    )
    small_cost, large_cost = small_time / further_count, large_time / further_count
    ratio_b = large_cost / small_cost

    # (c) out of order (evens then odds) vs in order -------------------------------------------
    order_count = 20_000
    in_order, _ = history(order_count, 0, seed=3)
    t_in_order, t_out_of_order = interleaved(
        settings.order_rounds,
        applying(Conversation(), in_order),
        applying(Conversation(), evens_then_odds(in_order)),
    )
    ratio_c = t_out_of_order / t_in_order
    chunk_count = 16_000
    chunks = stream(chunk_count)
    t_chunks_in_order, t_final_first = interleaved(
        settings.order_rounds,
        applying(Conversation(), chunks),
        applying(Conversation(), [chunks[-1], *chunks[:-1]]),
    )

    # (e) memory held per event of a 50,000-event conversation, against its JSON -------------
    held, json_size = held_per_event(50_000)
    ratio_e = held / json_size

    # (d) a driver step after 5,000 sent messages vs after none ------------------------------
    step_count = 2_000
    fresh, seasoned = driver_after(0), driver_after(5_000)
    t_step_0, t_step_5000 = interleaved(
        settings.rounds, stepping(fresh, step_count), stepping(seasoned, step_count)
    )
    ratio_d = t_step_5000 / t_step_0

    # (f) the views waited on, at 6,000 vs 100 events ----------------------------------------
    views_count = 2_000
    long_history, _ = history(6_000, 0, seed=4)
    short_talk, long_talk = reducer.fold(long_history[:100]), reducer.fold(long_history)
    t_views_100, t_views_6000 = interleaved(
        settings.rounds, reply_views(short_talk, views_count), reply_views(long_talk, views_count)
    )
    ratio_f = t_views_6000 / t_views_100

    elapsed = time.perf_counter() - started
    print("polyai-messaging core benchmark")
    print(f"  python {sys.version.split()[0]}")
    print()
    print(f"  frames: {len(frames)} in {len(sessions)} sessions")
    print("  mix: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda i: -i[1])))
    print()
    print(f"  {'measure':<44}{'value':>14}")
    print(f"  {'json.loads per frame':<44}{t_json / len(frames) * 1e6:>11.2f} us")
    print(f"  {'decode + apply per frame':<44}{t_core / len(frames) * 1e6:>11.2f} us")
    print(f"  {'(a) decode+reduce / json.loads':<44}{ratio_a:>14.2f}   target <= 2.0")
    each = ", ".join(f"{core / loads:.2f}" for loads, core in samples)
    print(f"  {'    median of ' + str(settings.processes) + ' processes:':<44}{each:>14}")
    for label, part in (
        ("    parse (orjson, json.loads where it refuses)", t_parse),
        ("    decode_object (parsed -> event)", t_decode),
        ("    apply (event -> conversation)", t_apply),
    ):
        print(f"  {label:<44}{part / len(frames) * 1e6:>11.2f} us  {part / t_loads:>5.2f} x json")
    print(f"  {'apply per event, 500 events of history':<44}{small_cost * 1e6:>11.2f} us")
    print(f"  {'apply per event, 50,000 events of history':<44}{large_cost * 1e6:>11.2f} us")
    print(f"  {'(b) per event 50k / 500':<44}{ratio_b:>14.2f}   target <= 1.2")
    print(f"  {'apply per event, 20,000 in order':<44}{t_in_order / order_count * 1e6:>11.2f} us")
    print(
        f"  {'apply per event, 20,000 evens then odds':<44}"
        f"{t_out_of_order / order_count * 1e6:>11.2f} us"
    )
    print(f"  {'(c) out of order / in order':<44}{ratio_c:>14.2f}   target <= 2.0")
    print(
        f"  {'    16,000 chunks, final first / in order':<44}"
        f"{t_final_first / t_chunks_in_order:>14.2f}   "
        f"({t_final_first / chunk_count * 1e6:.2f} us per chunk)"
    )
    print(f"  {'step on a heartbeat echo, 0 sent':<44}{t_step_0 / step_count * 1e6:>11.2f} us")
    print(
        f"  {'step on a heartbeat echo, 5,000 sent':<44}{t_step_5000 / step_count * 1e6:>11.2f} us"
    )
    print(f"  {'(d) step after 5,000 sent / after 0':<44}{ratio_d:>14.2f}   target <= 1.2")
    print(
        f"  {'reply views, 100 events of history':<44}{t_views_100 / views_count * 1e6:>11.2f} us"
    )
    print(
        f"  {'reply views, 6,000 events of history':<44}"
        f"{t_views_6000 / views_count * 1e6:>11.2f} us"
    )
    print(f"  {'(f) reply views at 6,000 / at 100':<44}{ratio_f:>14.2f}   target <= 1.2")
    print(f"  {'memory held per event of 50,000':<44}{held:>12.0f} B")
    print(f"  {'their JSON, per event':<44}{json_size:>12.0f} B")
    print(f"  {'(e) held / JSON':<44}{ratio_e:>14.2f}   target <= 2.0")
    print(f"  {'elapsed':<44}{elapsed:>12.1f} s")
    print(
        json.dumps(
            {
                "decode_reduce_vs_json_loads": round(ratio_a, 3),
                "per_event_50k_vs_500": round(ratio_b, 3),
                "out_of_order_vs_in_order": round(ratio_c, 3),
                "step_after_5000_sent_vs_0": round(ratio_d, 3),
                "bytes_per_event_held": round(ratio_e, 3),
                "reply_views_6000_vs_100": round(ratio_f, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
