"""The asyncio adapter's own parts, which have no trio counterpart: its ``Link``, a task
cancelled with ``Task.cancel``, and an import that needs no trio."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import anyio
import attrs
import pytest
from websockets.asyncio.client import ClientConnection, connect

from no_trio import run_without_trio
from polyai_messaging.asyncio import _link as asyncio_link
from polyai_messaging.asyncio._link import Link
from polyai_messaging.runtime import LinkTarget, QueuedClose
from polyai_messaging.testing import LocalEmulator

from .helpers import FAST, TIMEOUT, Adapter, no_client_task_left, replied, wait_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """Only asyncio, here."""
    return "asyncio"


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[ClientConnection]:
    """Every connection the adapter opens, in order."""
    connections: list[ClientConnection] = []

    async def connecting(*args: Any, **kwargs: Any) -> ClientConnection:
        connection = await connect(*args, **kwargs)
        connections.append(connection)
        return connection

    monkeypatch.setattr(asyncio_link, "connect", connecting)
    return connections


async def test_a_close_already_queued_stands_and_closing_a_finished_writer_aborts() -> None:
    link = Link(1)
    link.task = asyncio.create_task(anyio.sleep(TIMEOUT))
    assert link.send("hello")
    link.close(1000, "resuming")
    link.close(1000, "client closing")  # leaving the block while the first close is under way
    assert not link.send("too late")
    await anyio.sleep(0)
    assert not link.task.cancelled()
    assert link.queued() == ["hello", QueuedClose(1000, "resuming")]
    link.writable = False  # the writer has stopped
    link.close(1000, "client closing")
    with pytest.raises(asyncio.CancelledError):
        await link.task


async def test_a_task_cancelled_from_outside_leaves_nothing_running(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    entered = asyncio.Event()

    async def run() -> None:
        async with adapter.session(emulator) as session:
            await wait_for(session, replied(1))
            entered.set()
            await asyncio.Event().wait()

    with no_client_task_left():
        task = asyncio.create_task(run())
        with anyio.fail_after(TIMEOUT):
            await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("compression", [False, True])
async def test_compression_is_offered_only_when_the_config_asks(
    adapter: Adapter,
    emulator: LocalEmulator,
    opened: list[ClientConnection],
    compression: bool,
) -> None:
    config = attrs.evolve(FAST, websocket_compression=compression)
    async with adapter.session(emulator, config=config) as session:
        await wait_for(session, replied(1))
    (connection,) = opened
    negotiated = [extension.name for extension in connection.protocol.extensions]
    assert negotiated == (["permessage-deflate"] if compression else [])


def test_the_adapter_works_without_trio_installed() -> None:
    """Importing the adapter, the REST calls and the emulator never needs trio."""
    code = "import polyai_messaging.asyncio, polyai_messaging.testing, polyai_messaging.emulator"
    _, needed_trio = run_without_trio(code)
    assert needed_trio == set()


async def test_an_open_link_keeps_no_handshake_request(
    adapter: Adapter, emulator: LocalEmulator, opened: list[ClientConnection]
) -> None:
    """Its path holds the access token, and it is of no more use once the link is open."""
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        (connection,) = opened
        assert connection.request is None
        assert connection.response is not None


async def test_the_proxy_is_looked_up_once_a_session_and_used_on_every_link(
    adapter: Adapter, emulator: LocalEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``websockets`` would read the environment at every connect (a fifth of a reconnect's
    CPU): the session asks once, and every link goes through what it was told."""
    pytest.importorskip("websockets.proxy", reason="websockets < 15 has no proxies")
    asked: list[str] = []
    proxies: list[object] = []

    def get_proxy(uri: Any) -> None:
        asked.append(f"{uri.host}:{uri.port}")

    def connecting(*args: Any, **kwargs: Any) -> Any:
        proxies.append(kwargs["proxy"])
        return connect(*args, **kwargs)

    monkeypatch.setattr(asyncio_link, "get_proxy", get_proxy)
    monkeypatch.setattr(asyncio_link, "connect", connecting)
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        emulator.set_faults("drop-after=0:1")
        await session.send("hello")
        await wait_for(session, lambda update: update.state.counters.reconnects == 1)
        await wait_for(session, replied(2))
    assert proxies == [None, None]
    assert len(asked) == 1


async def test_an_open_link_keeps_no_handshake_headers_and_still_reads_and_writes(
    adapter: Adapter, emulator: LocalEmulator, opened: list[ClientConnection]
) -> None:
    """The response's headers would live as long as the connection, of no more use."""
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        (connection,) = opened
        assert connection.response is not None
        assert connection.response.status_code == 101
        assert list(connection.response.headers.raw_items()) == []
        await session.send("hello")
        await wait_for(session, replied(2))


async def test_an_open_link_keeps_no_target_whose_url_holds_the_token(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        gc.collect()
        assert [o for o in gc.get_objects() if isinstance(o, LinkTarget)] == []
