"""How a trio link opens TCP: to an IP address by a plain connect, in the link's own task; to a
name through ``trio.open_tcp_stream`` (the name's addresses tried in turn, overlapping)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trio

from polyai_messaging.testing import LocalEmulator

from .helpers import ADAPTERS, until, wait_for
from .test_dropped_links import _open

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


async def test_a_link_to_an_ip_address_connects_in_its_own_task(emulator: LocalEmulator) -> None:
    """``open_tcp_stream`` connected even to one address in a task of its own (and then
    cancelled its own wait): objects enough, alive while it connects, for the garbage collector
    to promote them in a reconnect storm."""
    assert "//127.0.0.1:" in emulator.base_url
    async with ADAPTERS["trio"].session(emulator) as session:
        await wait_for(session, _open)
        generation = session.state.generation
        with _spawned() as spawned:
            emulator.state.drop_sockets(session.session_id)
            await until(lambda: generation not in session.links)
            await wait_for(session, lambda u: _open(u) and u.state.generation > generation)
    assert [name for name in spawned if "open_tcp_stream" in name] == []
    assert "run_link" in spawned


async def test_a_link_to_a_host_name_connects_and_reconnects(emulator: LocalEmulator) -> None:
    base_url = emulator.base_url.replace("//127.0.0.1:", "//localhost:")
    adapter = ADAPTERS["trio"]
    async with adapter.open_session(
        base_url, emulator.token_provider, ssl_context=emulator.ssl_context, seed=7
    ) as session:
        await wait_for(session, _open)
        generation = session.state.generation
        with _spawned() as spawned:
            emulator.state.drop_sockets(session.session_id)
            await wait_for(session, lambda u: _open(u) and u.state.generation > generation)
    assert any("open_tcp_stream" in name for name in spawned)


@contextmanager
def _spawned() -> Iterator[list[str]]:
    """The name of every task's coroutine started in the block (trio's own included)."""
    names: list[str] = []

    class Spawns(trio.abc.Instrument):
        def task_spawned(self, task: trio.lowlevel.Task) -> None:
            names.append(getattr(task.coro, "__qualname__", "?"))

    instrument = Spawns()
    trio.lowlevel.add_instrument(instrument)
    try:
        yield names
    finally:
        trio.lowlevel.remove_instrument(instrument)
