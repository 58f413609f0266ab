"""The emulator, which runs on trio, in a background thread: for tests on any other loop.

::

    async with threaded_emulator(EmulatorConfig.fast()) as emulator:
        ...  # emulator.base_url; emulator.state.set_faults("drop-after=3")
        in_emulator(emulator, emulator.state.drop_sockets, session_id)

Reading the state (journals, sessions, socket counts) and switching faults work from the test's
thread; anything that wakes the emulator's tasks (dropping sockets, expiring or ending a
session, publishing an event) must run on its own thread, through :func:`in_emulator`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
import trio

from polyai_messaging.emulator import EmulatorConfig, EmulatorState, RunningEmulator, run_emulator

__all__ = ["in_emulator", "threaded_emulator"]

_T = TypeVar("_T")
_TOKENS: weakref.WeakKeyDictionary[EmulatorState, trio.lowlevel.TrioToken] = (
    weakref.WeakKeyDictionary()
)


@asynccontextmanager
async def threaded_emulator(
    config: EmulatorConfig | None = None, *, tls: bool = False
) -> AsyncIterator[RunningEmulator]:
    """Serve :func:`run_emulator` on a thread of its own for the duration of the block."""
    ready: Future[tuple[RunningEmulator, trio.Event]] = Future()
    failure: list[BaseException] = []

    async def serve() -> None:
        async with run_emulator(config, tls=tls) as emulator:
            stopping = trio.Event()
            _TOKENS[emulator.state] = trio.lowlevel.current_trio_token()
            ready.set_result((emulator, stopping))
            await stopping.wait()

    def thread_main() -> None:
        try:
            trio.run(serve)
        except BaseException as exc:  # handed over to the test's thread
            if ready.done():
                failure.append(exc)
            else:
                ready.set_exception(exc)

    thread = threading.Thread(target=thread_main, name="emulator", daemon=True)
    thread.start()
    emulator, stopping = await anyio.to_thread.run_sync(ready.result)
    try:
        yield emulator
    finally:
        in_emulator(emulator, stopping.set)
        await anyio.to_thread.run_sync(thread.join)
    if failure:
        raise failure[0]


def in_emulator(emulator: RunningEmulator, function: Callable[..., _T], *args: object) -> _T:
    """Call ``function(*args)`` on the emulator's thread and return its result."""
    return trio.from_thread.run_sync(function, *args, trio_token=_TOKENS[emulator.state])
