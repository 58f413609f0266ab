"""What idle sessions keep running, counted on each loop: a link task each (which, on trio,
runs trio-websocket's reader itself), no writer once their frames are written, and on trio one
timer task shared by all of them."""

from __future__ import annotations

import contextlib
import gc
import types
from collections import Counter
from contextlib import AsyncExitStack

import pytest

from polyai_messaging.driver import DeliveryStatus
from polyai_messaging.emulator import EmulatorConfig
from polyai_messaging.runtime import Update
from polyai_messaging.testing import LocalEmulator, open_emulator

from .helpers import Adapter, client_tasks, replied, started_client_tasks, until, wait_for

pytestmark = pytest.mark.anyio

_PER_SESSION = {
    "trio": {"run_link": 1},
    "asyncio": {"run_link": 1},
}
_SHARED = {"trio": {"_Timers._run": 1}, "asyncio": {}}


async def test_idle_sessions_run_one_link_task_each_and_no_writer(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    count = 3
    before = Counter(client_tasks())
    async with AsyncExitStack() as stack:
        for _ in range(count):
            session = await stack.enter_async_context(adapter.session(emulator))
            await wait_for(session, replied(1))
        await until(lambda: "Link._write" not in client_tasks())
        running = Counter(client_tasks()) - before
        expected = Counter(_SHARED[adapter.name])
        for name, tasks in _PER_SESSION[adapter.name].items():
            expected[name] += count * tasks
        assert running == expected
        # Sending starts a writer, which is gone once the frame is written.
        await session.send("hello")
        await until(lambda: "Link._write" not in client_tasks())
        assert Counter(client_tasks()) - before == expected


async def test_idle_sessions_keep_no_generator_alive(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    """``open_session`` and the adapter's part of it are objects of a few slots: a generator
    (an ``@asynccontextmanager``) kept its frame and its manager alive as long as the session."""
    gc.collect()
    before = _generators()
    async with AsyncExitStack() as stack:
        for _ in range(3):
            session = await stack.enter_async_context(adapter.session(emulator))
            await wait_for(session, replied(1))
        await until(lambda: "Link._write" not in client_tasks())
        gc.collect()
        assert _generators() - before == Counter()


def _generators() -> Counter[str]:
    """Generators of this library's code, and the managers ``@asynccontextmanager`` makes."""
    return Counter(type(o).__qualname__ for o in gc.get_objects() if _a_generator_of_ours(o))


def _a_generator_of_ours(obj: object) -> bool:
    if isinstance(obj, contextlib._AsyncGeneratorContextManager):
        return True
    if isinstance(obj, types.AsyncGeneratorType):
        return "polyai_messaging" in obj.ag_code.co_filename
    if isinstance(obj, types.GeneratorType):
        return "polyai_messaging" in obj.gi_code.co_filename
    return False


async def test_heartbeats_and_messages_on_an_idle_link_start_no_task_but_trios_writer(
    adapter: Adapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On asyncio a frame for an idle link is written at once. trio-websocket only writes in
    # a task (it awaits): on trio a message is written by the task that sends it, and a
    # heartbeat (sent from the timer, which must not wait) starts the link's writer.
    config = EmulatorConfig.fast(heartbeat_interval_seconds=1)
    async with open_emulator(config) as emulator, adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        await until(lambda: "Link._write" not in client_tasks())
        sent: list[str] = []
        send_frame = session.send_frame

        def counting(generation: int, text: str) -> bool:
            sent.append(text)
            return send_frame(generation, text)

        monkeypatch.setattr(session, "send_frame", counting)
        with started_client_tasks() as started:
            await until(lambda: len(sent) >= 2, timeout=3.0)  # two heartbeats
            cid = await session.send("hello")
            await wait_for(session, lambda update: _delivered(update, cid))
            await until(lambda: "Link._write" not in client_tasks())
        assert len(sent) >= 3
        if adapter.name == "asyncio":
            assert started == []
        else:
            assert set(started) == {"Link._write"}
            assert len(started) <= len([text for text in sent if "HEARTBEAT" in text])


def _delivered(update: Update, client_event_id: str) -> bool:
    entry = update.state.delivery(client_event_id)
    return entry is not None and entry.status is DeliveryStatus.SENT
