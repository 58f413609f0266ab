"""Leaving the block, however it is left: nothing of the client keeps running, and a normal
exit closes the socket politely while the session lives on on the server."""

from __future__ import annotations

import ssl

import anyio
import httpx
import pytest

from polyai_messaging.core import LocalProtocolError
from polyai_messaging.rest import _opening as opening_module
from polyai_messaging.rest._http import new_http_client
from polyai_messaging.runtime import SessionRuntime, Token, TokenUnavailableError
from polyai_messaging.testing import LocalEmulator

from .helpers import (
    TIMEOUT,
    Adapter,
    client_tasks,
    fixed_token,
    no_client_task_left,
    replied,
    until,
    wait_for,
    websocket_server,
)

pytestmark = pytest.mark.anyio


async def test_an_outer_cancel_leaves_nothing_running(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    with no_client_task_left(), anyio.move_on_after(TIMEOUT) as outer:
        async with adapter.session(emulator, streaming=True) as session:
            await wait_for(session, replied(1))
            assert client_tasks(), "the session's tasks should be seen"
            await session.send("hello")
            outer.cancel()
            await anyio.sleep_forever()
    assert outer.cancelled_caught
    with pytest.raises(LocalProtocolError):
        await session.send("after the end")
    assert await session.next_update(session.latest.version) is None
    await until(lambda: emulator.state.open_socket_count(session.session_id) == 0)


async def test_an_exception_in_the_block_propagates_and_leaves_nothing_running(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    class Boom(Exception):
        pass

    sessions: list[SessionRuntime] = []

    async def run() -> None:
        async with adapter.session(emulator) as session:
            sessions.append(session)
            await wait_for(session, replied(1))
            raise Boom

    with no_client_task_left(), pytest.raises(Boom):
        await run()
    await until(lambda: emulator.state.open_socket_count(sessions[0].session_id) == 0)


async def test_leaving_the_block_leaves_nothing_running(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    with no_client_task_left():
        async with adapter.session(emulator, streaming=True) as session:
            await session.send("hello")  # leave while the reply streams in
    await until(lambda: emulator.state.open_socket_count(session.session_id) == 0)


async def test_leaving_the_block_closes_the_socket_and_the_session_lives_on(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
    await until(lambda: emulator.state.open_socket_count(session.session_id) == 0)
    assert session.finished is None
    assert not emulator.state.session(session.session_id).ended


async def test_leaving_the_block_closes_the_socket_politely(adapter: Adapter) -> None:
    async with websocket_server() as (url, connections):
        async with adapter.open_session(url, fixed_token, session_id="s"):
            await until(lambda: len(connections) == 1)
        await until(lambda: connections[0].close is not None)
        assert connections[0].close == (1000, "client closing")


@pytest.fixture
def made_clients(monkeypatch: pytest.MonkeyPatch) -> list[httpx.AsyncClient]:
    """Every HTTP client ``open_session`` makes for itself, in order."""
    made: list[httpx.AsyncClient] = []

    def making(ssl_context: ssl.SSLContext | None) -> httpx.AsyncClient:
        client = new_http_client(ssl_context)
        made.append(client)
        return client

    monkeypatch.setattr(opening_module, "new_http_client", making)
    return made


async def test_the_http_client_a_session_makes_is_closed_however_the_block_ends(
    adapter: Adapter, emulator: LocalEmulator, made_clients: list[httpx.AsyncClient]
) -> None:
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        assert not made_clients[0].is_closed
    with pytest.raises(ZeroDivisionError):
        async with adapter.session(emulator):
            raise ZeroDivisionError
    with pytest.raises(TokenUnavailableError):
        async with adapter.session(emulator, provider=_failing_provider):
            pass  # pragma: no cover - creating the session fails first
    assert len(made_clients) == 3
    assert all(client.is_closed for client in made_clients)


async def test_an_http_client_the_caller_gives_is_left_open(
    adapter: Adapter, emulator: LocalEmulator, made_clients: list[httpx.AsyncClient]
) -> None:
    async with httpx.AsyncClient(verify=emulator.ssl_context) as given:
        async with adapter.session(emulator, http_client=given) as session:
            await wait_for(session, replied(1))
        assert not given.is_closed
    assert made_clients == []


async def _failing_provider() -> Token:
    raise ZeroDivisionError
