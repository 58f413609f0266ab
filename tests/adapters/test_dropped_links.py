"""What a dropped link leaves behind once its session has reconnected: nothing that only the
garbage collector would free. In a reconnect storm, what each link's end leaves in reference
cycles (and what it made meanwhile, promoted) adds to the full collections that hold every
session's timer back."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from polyai_messaging.driver import LinkStatus
from polyai_messaging.testing import LocalEmulator

from .helpers import Adapter, until, wait_for

pytestmark = pytest.mark.anyio


async def test_a_dropped_links_connection_is_freed_without_a_collection(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    async with adapter.session(emulator) as session:
        await wait_for(session, _open)
        generation = session.state.generation
        parts = [weakref.ref(part) for part in _connection(session.links[generation])]
        gc.collect()
        gc.disable()
        try:
            emulator.state.drop_sockets(session.session_id)
            await until(lambda: generation not in session.links)
            await wait_for(session, lambda u: _open(u) and u.state.generation > generation)
            alive = [type(part()).__qualname__ for part in parts if part() is not None]
        finally:
            gc.enable()
        assert alive == []


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
