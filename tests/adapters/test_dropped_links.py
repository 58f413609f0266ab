"""What a dropped link leaves behind once its session has reconnected: nothing that only the
garbage collector would free. In a reconnect storm, what each link's end leaves in reference
cycles (and what it made meanwhile, promoted) adds to the full collections that hold every
session's timer back."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import anyio.lowlevel
import pytest

from polyai_messaging.driver import Backoff, LinkStatus, SessionConfig
from polyai_messaging.emulator import EmulatorConfig
from polyai_messaging.testing import LocalEmulator, open_emulator

from .helpers import Adapter, heartbeat_answered, until, wait_for

pytestmark = pytest.mark.anyio


async def test_a_dropped_links_connection_is_freed_without_a_collection(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    async with adapter.session(emulator) as session:
        await wait_for(session, _open)
        generation = session.state.generation
        with _collector_off(session.links[generation]) as alive:
            emulator.state.drop_sockets(session.session_id)
            await until(lambda: generation not in session.links)
            await wait_for(session, lambda u: _open(u) and u.state.generation > generation)
        assert alive == []


async def test_an_aborted_links_connection_is_freed_without_a_collection(adapter: Adapter) -> None:
    """The link is aborted by the session (it fell silent), not dropped by the server."""
    config = EmulatorConfig.fast(heartbeat_interval_seconds=1)
    # A grace a stalled process still meets: a spurious silence would be a second reconnect.
    quick = SessionConfig(liveness_grace_seconds=1.0, backoff=Backoff(base=0.05))
    async with (
        open_emulator(config) as emulator,
        adapter.session(emulator, config=quick) as session,
    ):
        await wait_for(session, heartbeat_answered)
        generation = session.state.generation
        with _collector_off(session.links[generation]) as alive:
            emulator.set_faults("freeze-after=0:1")
            await wait_for(session, lambda u: _open(u) and u.state.generation > generation)
            await until(lambda: generation not in session.links)
            for _ in range(3):  # the socket's end is reported a loop round after the abort
                await anyio.lowlevel.checkpoint()
        assert session.state.counters.reconnects == 1
        assert alive == []


@contextmanager
def _collector_off(link: object) -> Iterator[list[str]]:
    """The block run with the garbage collector off (after one full collection); then the list
    it yields names the parts of ``link``'s connection still alive, which only reference
    counting can have freed."""
    parts = [weakref.ref(part) for part in _connection(link)]
    del link  # this frame must not keep the link (and through it the connection) alive
    alive: list[str] = []
    gc.collect()
    gc.disable()
    try:
        yield alive
        alive.extend(type(part()).__qualname__ for part in parts if part() is not None)
    finally:
        gc.enable()


def _open(update: object) -> bool:
    status = getattr(update, "status", None)
    return status is not None and status.status is LinkStatus.OPEN


def _connection(link: object) -> Iterator[object]:
    """The open link's WebSocket connection, and its protocol and transport (or stream)."""
    ws = getattr(link, "_open", None) or getattr(link, "_ws", None)
    assert ws is not None
    yield ws
    for name in ("protocol", "transport", "_wsproto", "_stream"):
        part = getattr(ws, name, None)
        if part is not None:
            yield part
