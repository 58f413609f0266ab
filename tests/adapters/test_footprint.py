"""What idle sessions keep running, counted on each loop: a link task each (and, on trio,
trio-websocket's reader), no writer once their frames are written, and on trio one timer task
shared by all of them."""

from __future__ import annotations

from collections import Counter
from contextlib import AsyncExitStack

import pytest

from polyai_messaging.testing import LocalEmulator

from .helpers import Adapter, client_tasks, replied, until, wait_for

pytestmark = pytest.mark.anyio

_PER_SESSION = {
    "trio": {"run_link": 1, "WebSocketConnection._reader_task": 1},
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
