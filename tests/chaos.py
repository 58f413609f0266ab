"""Chaos: many conversations against the emulator while its faults switch at random.

Every conversation opens a session, waits for the agent, sends a few messages at random moments
and then waits, while a background task switches the emulator's faults every few hundred
milliseconds (drops, frozen sockets, delays, duplicates, overlapping and reordered replays,
refused handshakes, sockets closed by the server, missing replays, failing REST calls). When
the chaos stops, every session must catch up, and then for every message the server's copies
are counted and every client transcript is compared with the server's journal.

It runs on the adapter of whichever loop runs it. By hand, for bigger figures::

    python tests/chaos.py --conversations 1000 --seconds 60 [--loop asyncio]

It prints one JSON object: conversations (opened), not_opened (sessions whose creation failed
even after its retries: nothing was sent in them), messages, stored_twice, lost, failed,
not_caught_up, finished_early, transcripts_differ, and how long it took.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import random
import time
from collections import Counter
from functools import partial
from typing import Any

import anyio
import attrs
import httpx
import sniffio

from polyai_messaging.core import MessagingError
from polyai_messaging.driver import Backoff, DeliveryStatus, SessionConfig
from polyai_messaging.emulator import (
    DEMO_CONNECTOR_TOKEN,
    DEMO_HOST,
    EmulatorConfig,
    RunningEmulator,
    run_emulator,
)
from polyai_messaging.rest import RetryPolicy, connector_token_provider
from polyai_messaging.runtime import SessionRuntime

CLIENT = SessionConfig(
    backoff=Backoff(base=0.05, cap=0.5),
    default_max_reconnect_attempts=0,
    liveness_grace_seconds=3.0,
    connect_timeout_seconds=60.0,
)
"""Quick reconnects, and time limits a starved process still meets. No fault holds a handshake,
so only a slow process times one out, and every handshake aborted is started again: with 2 s,
a process getting half a core aborted thousands and never caught up. A 1 s grace, likewise,
let a late loop find links silent; frozen sockets are still found within 4 s."""
PATIENT = RetryPolicy(max_attempts=8, max_delay=5.0)
"""REST calls (a token, a session) retried longer than by default: the emulator shares one
process with hundreds of clients, and what is measured is delivery, not session creation."""
REST_TIMEOUT = httpx.Timeout(30.0)

SERVER = EmulatorConfig.fast(heartbeat_interval_seconds=1, max_reconnect_attempts=0)
"""Heartbeats every second, so that frozen sockets are found quickly. The emulator shares the
process (and its one core) with every client: past a few hundred conversations, heartbeats
alone fill the core, and ``--heartbeat`` should grow with ``--conversations``."""


def random_faults(rng: random.Random) -> str:
    """One random fault spec (often none: a server is healthy most of the time)."""
    choices = [
        "",
        "",
        f"delay={rng.choice([0.01, 0.05, 0.2, 0.8])}",
        f"delay={rng.choice([0.6, 0.8, 1.0])},drop-after={rng.randint(0, 4)}:1",
        f"drop-after={rng.randint(0, 8)}:{rng.randint(1, 3)}",
        f"freeze-after={rng.randint(0, 8)}:1",
        "duplicate",
        "overlap=3",
        "reorder",
        "refuse=429:1",
        "no-replay=1",
        f"close={rng.choice([1000, 1001, 1011, 4002])}:1",
        "fail-token=1",
        "fail-session=1",
    ]
    picked = {rng.choice(choices) for _ in range(rng.randint(1, 2))}
    # One item per fault name (a spec may not name a fault twice).
    items = [item for spec in picked for item in spec.split(",") if item]
    by_name = {item.split("=")[0]: item for item in items}
    return ",".join(by_name.values())


@attrs.define
class Outcome:
    """What one conversation sent and what the server and the client ended up holding."""

    session_id: str
    sent: list[str] = attrs.field(factory=list)
    failed: list[str] = attrs.field(factory=list)
    caught_up: bool = False
    timeline_matches: bool = False
    finished: str | None = None
    """How the session finished early, if it did (it should not)."""


async def _chaos(emulator: RunningEmulator, rng: random.Random, stop: anyio.Event) -> None:
    while not stop.is_set():
        emulator.state.set_faults(random_faults(rng))
        # Mostly a few hundred milliseconds; now and then a fault holds for seconds.
        with anyio.move_on_after(rng.choice([0.1, 0.2, 0.3, 0.5, 0.6, 1.0, 3.0])):
            await stop.wait()
    emulator.state.set_faults("")


async def _caught_up(
    session: SessionRuntime, emulator: RunningEmulator, patience: float = 30.0
) -> bool:
    """Wait (bounded) until the client holds the server's whole journal and nothing pending."""
    with anyio.move_on_after(patience):
        while True:
            journal = emulator.state.session(session.session_id).journal
            state = session.state
            if (
                state.conversation.cursor == journal.last_sequence
                and not state.conversation.gaps
                and not state.outbox.pending
                and not state.conversation.agent_thinking
                and state.conversation.cursor > 0
            ):
                return True
            await anyio.sleep(0.05)
    return False


async def _conversation(
    emulator: RunningEmulator,
    http: httpx.AsyncClient,
    rng: random.Random,
    chaos_over: anyio.Event,
    outcomes: list[Outcome],
    not_opened: list[str],
    messages: int,
    seconds: float,
    patience: float,
) -> None:
    provider = connector_token_provider(
        emulator.base_url, DEMO_CONNECTOR_TOKEN, DEMO_HOST, client=http, retry=PATIENT
    )
    opening = _open_session()(
        emulator.base_url,
        provider,
        config=CLIENT,
        seed=rng.getrandbits(32),
        http_client=http,
        retry=PATIENT,
    )
    try:
        session = await opening.__aenter__()
    except MessagingError as exc:
        # No session, so nothing was sent and no promise is at stake: counted, not a crash
        # (under heavy load the REST calls' own retries can run out).
        not_opened.append(type(exc).__name__)
        return
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_exit(opening)
        outcome = Outcome(session.session_id)
        outcomes.append(outcome)
        for number in range(messages):
            await anyio.sleep(rng.uniform(0, seconds / messages))
            if session.finished is not None:
                break
            outcome.sent.append(await session.send(f"message {number} of {outcome.session_id}"))
        await chaos_over.wait()
        if session.finished is not None:
            outcome.finished = f"{session.finished.kind.value}: {session.finished.reason}"
            return
        outcome.caught_up = await _caught_up(session, emulator, patience)
        journal = emulator.state.session(session.session_id).journal
        held = [event.id for event in session.conversation.timeline]
        outcome.timeline_matches = held == [entry.event["id"] for entry in journal]
        outcome.failed = [
            cid for cid in outcome.sent if session.delivery_status(cid) is DeliveryStatus.FAILED
        ]


def _stored(emulator: RunningEmulator, outcome: Outcome) -> Counter[str]:
    copies: Counter[str] = Counter()
    for entry in emulator.state.session(outcome.session_id).journal:
        if entry.type == "EVENT_TYPE_USER_MESSAGE":
            custom = (entry.event.get("metadata") or {}).get("custom") or {}
            copies[custom.get("client_event_id")] += 1
    return copies


def _open_session() -> Any:
    """The ``open_session`` of the adapter for the running loop."""
    if sniffio.current_async_library() == "trio":
        from polyai_messaging.trio import open_session
    else:
        from polyai_messaging.asyncio import open_session
    return open_session


async def run(
    conversations: int,
    seconds: float,
    *,
    seed: int = 0,
    messages: int = 3,
    patience: float = 30.0,
    heartbeat: int = 1,
    details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run the chaos and return its figures."""
    rng = random.Random(seed)
    started = time.monotonic()
    outcomes: list[Outcome] = []
    not_opened: list[str] = []
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=100)
    async with (
        run_emulator(dataclasses.replace(SERVER, heartbeat_interval_seconds=heartbeat)) as emulator,
        httpx.AsyncClient(timeout=REST_TIMEOUT, limits=limits) as http,
    ):
        chaos_over = anyio.Event()
        async with anyio.create_task_group() as nursery:
            nursery.start_soon(_chaos, emulator, random.Random(rng.random()), chaos_over)
            async with anyio.create_task_group() as talkers:
                for _ in range(conversations):
                    talker_rng = random.Random(rng.random())
                    talkers.start_soon(
                        _conversation,
                        emulator,
                        http,
                        talker_rng,
                        chaos_over,
                        outcomes,
                        not_opened,
                        messages,
                        seconds,
                        patience,
                    )
                    await anyio.sleep(seconds / conversations)
                await anyio.sleep(seconds / 2)
                chaos_over.set()
        copies = [(_stored(emulator, outcome), outcome) for outcome in outcomes]
    sent = [(cid, stored[cid]) for stored, outcome in copies for cid in outcome.sent]
    if details is not None:
        for stored, outcome in copies:
            twice = [cid for cid in outcome.sent if stored[cid] > 1]
            if twice or not outcome.timeline_matches or not outcome.caught_up:
                details.append(
                    {
                        "session_id": outcome.session_id,
                        "twice": twice,
                        "caught_up": outcome.caught_up,
                        "finished": outcome.finished,
                        "timeline_matches": outcome.timeline_matches,
                    }
                )
    return {
        "conversations": len(outcomes),
        "not_opened": len(not_opened),
        "messages": len(sent),
        "stored_twice": sum(1 for _, n in sent if n > 1),
        "lost": sum(1 for _, n in sent if n == 0),
        "failed": sum(len(outcome.failed) for outcome in outcomes),
        "not_caught_up": sum(1 for outcome in outcomes if not outcome.caught_up),
        "finished_early": sum(1 for outcome in outcomes if outcome.finished is not None),
        "transcripts_differ": sum(1 for outcome in outcomes if not outcome.timeline_matches),
        "seconds": round(time.monotonic() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the chaos")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--loop", choices=["trio", "asyncio"], default="trio")
    parser.add_argument(
        "--patience",
        type=float,
        default=30.0,
        help="how long each session may take to catch up once the chaos stops (default: 30 s)",
    )
    parser.add_argument(
        "--heartbeat",
        type=int,
        default=1,
        help="the heartbeat interval the emulator asks for (default: 1 s; about 5 s for 1,000)",
    )
    args = parser.parse_args()
    details: list[dict[str, Any]] = []
    figures = anyio.run(
        partial(
            run,
            args.conversations,
            args.seconds,
            seed=args.seed,
            patience=args.patience,
            heartbeat=args.heartbeat,
            details=details,
        ),
        backend=args.loop,
    )
    for detail in details:
        print(json.dumps(detail))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
