"""Benchmark: a user message's round trip through each adapter, against a bare client.

For each adapter (trio, asyncio), in one process and one run, against one emulator in another
process (``polyai-messaging emulator --fast`` on loopback):

* the library: ``await session.send(text)`` until the snapshot the application sees holds the
  message's echo folded into the conversation (its delivery is ``sent``);
* the baseline, a bare client on the same WebSocket library (trio-websocket; websockets) with
  the same options: it sends the same frame the library sends and reads frames, each parsed
  with ``json.loads``, until the echo arrives.

The two alternate message by message (who goes first alternating too), each on its own session
with the agent joined, so load that changes during the run weighs on both alike. After each
echo both wait, untimed, for the agent's reply to that message, so every exchange starts
quiet. Each side first warms up on a session of its own, not counted. (The library's side
waits for the reply on ``session.events()``, not with ``wait_reply``: that checks the whole
conversation on every snapshot, so its cost grows with the history, and that work, untimed as
it is, slowed both sides' timed round trips as the run went on.)

Figures (the last line of output, one JSON object): ``trio_p50_vs_raw`` and ``trio_p99_vs_raw``
(target <= 1.3 and <= 1.5), the same for ``asyncio``, and ``last_vs_first_100``: the p50 of the
last 100 library round trips over the first 100's, the larger of the two adapters' (target <=
1.1: a round trip costs the same at message 2,000 as at message 1). One more figure,
``last_vs_first_100_vs_raw``, divides that by the bare client's own last/first ratio in the
same run, which takes out what the machine and the emulator drifted meanwhile.

Run: ``python bench/roundtrip.py`` (2,000 messages a side and adapter, about 15 s), or
``--quick`` (300, well under a minute).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
from _common import BACKENDS, Client, Emulator, cli_emulator, client_for, emit, machine, percentile

from polyai_messaging.core import PolyAgentMessage, RequestPolyAgentJoin, UserMessage, encode
from polyai_messaging.driver import DeliveryStatus, websocket_url
from polyai_messaging.rest import create_session
from polyai_messaging.runtime import MAX_INBOUND_MESSAGE, SessionRuntime, Update

TEXT = "I'd like a table for four tomorrow at 7pm, please"
USER_MESSAGE = "EVENT_TYPE_USER_MESSAGE"
AGENT_MESSAGE = "EVENT_TYPE_POLY_AGENT_MESSAGE"
WARM_UP = 30


class Frames(Protocol):
    """A bare WebSocket: text frames out and in."""

    async def send(self, text: str) -> None: ...

    async def receive(self) -> str: ...


@dataclass
class _TrioFrames:
    ws: Any

    async def send(self, text: str) -> None:
        await self.ws.send_message(text)

    async def receive(self) -> str:
        data: str = await self.ws.get_message()
        return data


@dataclass
class _AsyncioFrames:
    ws: Any

    async def send(self, text: str) -> None:
        await self.ws.send(text)

    async def receive(self) -> str:
        data: str = await self.ws.recv()
        return data


@contextlib.asynccontextmanager
async def bare_socket(backend: str, url: str) -> AsyncIterator[Frames]:
    """A WebSocket on the library the adapter for ``backend`` uses, with the adapter's options
    (the inbound size limit; on websockets, no pings of its own and no compression)."""
    if backend == "trio":
        from trio_websocket import open_websocket_url  # noqa: PLC0415 - one loop per run

        async with open_websocket_url(url, max_message_size=MAX_INBOUND_MESSAGE) as ws:
            yield _TrioFrames(ws)
    else:
        from websockets.asyncio.client import connect  # noqa: PLC0415 - one loop per run

        async with connect(
            url, max_size=MAX_INBOUND_MESSAGE, ping_interval=None, compression=None
        ) as ws:
            yield _AsyncioFrames(ws)


class Bare:
    """The baseline: a session driven by hand over a bare WebSocket."""

    def __init__(self, frames: Frames, name: str) -> None:
        self.frames = frames
        self.name = name
        self.sent = 0

    async def join(self) -> None:
        """Ask the agent to join (after the replay, as the library does) and read its greeting."""
        await self.frames.send(encode(RequestPolyAgentJoin()))
        await self._until(AGENT_MESSAGE)

    async def exchange(self) -> float:
        """One round trip: send a message, read frames until its echo; then its reply."""
        self.sent += 1
        cid = f"{self.name}-{self.sent}"
        frame = encode(UserMessage(text=TEXT, client_event_id=cid))
        start = time.perf_counter()
        await self.frames.send(frame)
        while True:
            event = json.loads(await self.frames.receive())
            if (
                event["type"] == USER_MESSAGE
                and event["metadata"]["custom"].get("client_event_id") == cid
            ):
                break
        elapsed = time.perf_counter() - start
        await self._until(AGENT_MESSAGE)
        return elapsed

    async def _until(self, kind: str) -> None:
        while json.loads(await self.frames.receive())["type"] != kind:
            pass


def _echoed(update: Update, cid: str) -> bool:
    entry = update.state.delivery(cid)
    return entry is not None and entry.status is DeliveryStatus.SENT


async def library_exchange(session: SessionRuntime) -> float:
    """One round trip through the adapter: ``send`` until the echo is in the application's
    snapshot; then, untimed, until the reply has come (read from the event stream)."""
    events = session.events()
    events.drain()
    start = time.perf_counter()
    cid = await session.send(TEXT)
    update = session.latest
    while not _echoed(update, cid):
        following = await session.next_update(update.version)
        if following is None:
            raise RuntimeError("the session closed during the benchmark")
        update = following
    elapsed = time.perf_counter() - start
    async for event in events:
        if isinstance(event, PolyAgentMessage):
            return elapsed
    raise RuntimeError("the session closed during the benchmark")


@contextlib.asynccontextmanager
async def bare_session(client: Client, backend: str, name: str) -> AsyncIterator[Bare]:
    """A new session on the emulator, driven by a :class:`Bare` client, agent joined."""
    token = await client.token()
    info = await create_session(client.base_url, token, client=client.http)
    url = websocket_url(client.base_url, info.session_id, token.secret)
    async with bare_socket(backend, url) as frames:
        await frames.receive()  # the replay: SESSION_START
        bare = Bare(frames, name)
        await bare.join()
        yield bare


@contextlib.asynccontextmanager
async def library_session(client: Client, backend: str) -> AsyncIterator[SessionRuntime]:
    """A new session through the adapter, agent joined."""
    async with client.open(backend) as session:
        await session.wait_reply()
        yield session


async def measure(emulator: Emulator, backend: str, messages: int) -> dict[str, list[float]]:
    """Round trips on ``backend``: the library's and the bare client's, alternating."""
    async with client_for(emulator) as client:
        async with (
            library_session(client, backend) as warm,
            bare_session(client, backend, "warm") as bare_warm,
        ):
            for _ in range(WARM_UP):
                await library_exchange(warm)
                await bare_warm.exchange()
        library: list[float] = []
        bare: list[float] = []
        async with (
            library_session(client, backend) as session,
            bare_session(client, backend, "bare") as raw,
        ):
            sides: list[tuple[list[float], Callable[[], Awaitable[float]]]] = [
                (library, lambda: library_exchange(session)),
                (bare, raw.exchange),
            ]
            for number in range(messages):
                for samples, exchange in sides if number % 2 else reversed(sides):
                    samples.append(await exchange())
    return {"library": library, "bare": bare}


def report(backend: str, samples: dict[str, list[float]]) -> dict[str, float]:
    """Print one adapter's lines; return its figures."""
    library, bare = samples["library"], samples["bare"]
    figures = {
        "p50_vs_raw": percentile(library, 0.5) / percentile(bare, 0.5),
        "p99_vs_raw": percentile(library, 0.99) / percentile(bare, 0.99),
        "last_vs_first_100": percentile(library[-100:], 0.5) / percentile(library[:100], 0.5),
        "bare_last_vs_first_100": percentile(bare[-100:], 0.5) / percentile(bare[:100], 0.5),
    }
    print(f"  {backend} ({len(library)} messages a side)")
    for name, values in (("library", library), ("bare", bare)):
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        first, last = percentile(values[:100], 0.5), percentile(values[-100:], 0.5)
        print(
            f"    {name:<8} p50 {p50 * 1e6:8.0f} us   p99 {p99 * 1e6:8.0f} us   "
            f"p50 first 100 {first * 1e6:6.0f} us, last 100 {last * 1e6:6.0f} us"
        )
    print(
        f"    p50 vs bare {figures['p50_vs_raw']:.2f} (target <= 1.3), "
        f"p99 vs bare {figures['p99_vs_raw']:.2f} (target <= 1.5), "
        f"last/first 100 {figures['last_vs_first_100']:.2f} (target <= 1.1; bare "
        f"{figures['bare_last_vs_first_100']:.2f})"
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="300 messages instead of 2,000")
    parser.add_argument("--messages", type=int, help="messages a side and adapter")
    arguments = parser.parse_args()
    messages = arguments.messages or (300 if arguments.quick else 2000)
    if messages < 200:
        parser.error("--messages must be at least 200 (the first and last 100 are compared)")
    started = time.perf_counter()
    print("polyai-messaging round-trip benchmark")
    print(f"  {machine()}")
    by_backend: dict[str, dict[str, float]] = {}
    with cli_emulator() as emulator:
        for backend in BACKENDS:
            samples = anyio.run(measure, emulator, backend, messages, backend=backend)
            by_backend[backend] = report(backend, samples)
    print(f"  elapsed {time.perf_counter() - started:.1f} s")
    emit(
        {
            "trio_p50_vs_raw": round(by_backend["trio"]["p50_vs_raw"], 3),
            "trio_p99_vs_raw": round(by_backend["trio"]["p99_vs_raw"], 3),
            "asyncio_p50_vs_raw": round(by_backend["asyncio"]["p50_vs_raw"], 3),
            "asyncio_p99_vs_raw": round(by_backend["asyncio"]["p99_vs_raw"], 3),
            "last_vs_first_100": round(
                max(figures["last_vs_first_100"] for figures in by_backend.values()), 3
            ),
            "last_vs_first_100_vs_raw": round(
                max(
                    figures["last_vs_first_100"] / figures["bare_last_vs_first_100"]
                    for figures in by_backend.values()
                ),
                3,
            ),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
