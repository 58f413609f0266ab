"""The asyncio adapter's own parts, which have no trio counterpart: its ``Link``, a task
cancelled with ``Task.cancel``, and an import that needs no trio."""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
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

from .helpers import (
    FAST,
    TIMEOUT,
    Adapter,
    CountingProvider,
    no_client_task_left,
    replied,
    wait_for,
)

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


async def test_an_open_link_keeps_no_uri_that_holds_the_token(
    adapter: Adapter, emulator: LocalEmulator, opened: list[ClientConnection]
) -> None:
    """The protocol's URI is read only to write the handshake request."""
    provider = CountingProvider(emulator.token_provider)
    async with adapter.session(emulator, provider) as session:
        await wait_for(session, replied(1))
        (connection,) = opened
        protocol = connection.protocol
        uri = getattr(protocol, "uri", None) or protocol.wsuri  # websockets 13: ``wsuri``
        secret = provider.tokens[0].secret
        assert secret not in uri.resource_name
        await session.send("hello")
        await wait_for(session, replied(2))


async def test_an_idle_connection_holds_no_drain_queue_and_back_pressure_still_waits(
    adapter: Adapter, emulator: LocalEmulator, opened: list[ClientConnection]
) -> None:
    """An empty ``deque`` is some 760 bytes an idle link: made only when a writer waits."""
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        await session.send("hello")
        await wait_for(session, replied(2))
        (connection,) = opened
        kept = [v for v in vars(connection).values() if isinstance(v, collections.deque)]
        assert kept == []
        connection.pause_writing()  # as the transport does when its buffer is full
        draining = asyncio.ensure_future(connection.drain())
        await asyncio.sleep(0)
        assert not draining.done()
        connection.resume_writing()
        with anyio.fail_after(TIMEOUT):
            await draining
        assert list(connection.drain_waiters) == []


async def test_websockets_records_go_to_the_session_log_with_no_adapter_per_connection(
    adapter: Adapter,
    emulator: LocalEmulator,
    opened: list[ClientConnection],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``websockets`` would wrap the logger it is given in one of its own per connection, to
    tag records with it; the session's log tags them with the session and the link."""
    provider = CountingProvider(emulator.token_provider)
    with caplog.at_level(logging.WARNING, logger="polyai_messaging"):
        async with adapter.session(emulator, provider) as session:
            await wait_for(session, replied(1))
            (connection,) = opened
            assert connection.logger is connection.protocol.logger
            assert isinstance(connection.logger, asyncio_link._LibraryLog)
            secret = provider.tokens[0].secret
            connection.logger.error("parser failed near %s", f"access_token={secret}")
            connection.logger.debug("< a frame")  # websockets' debug records are left out
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [f"[{session.session_id} #1] parser failed near access_token=***"]


async def test_an_idle_link_task_waits_under_one_coroutine_of_ours(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    """Each coroutine in a waiting task's chain is a frame kept as long as it waits."""
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        (link,) = session.links.values()
        assert isinstance(link, Link)
        assert link.task is not None
        ours, coroutine = [], link.task.get_coro()
        while coroutine is not None and hasattr(coroutine, "cr_code"):
            if "polyai_messaging" in coroutine.cr_code.co_filename:
                ours.append(coroutine.cr_code.co_name)
            coroutine = coroutine.cr_await
        assert ours == ["run_link"]
