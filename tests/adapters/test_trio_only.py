"""The trio adapter's own parts, which have no asyncio counterpart: how a link's socket is
closed, and its tasks end, once the server has dropped it; what an open link keeps of
trio-websocket's opening handshake."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio_websocket import WebSocketConnection

from polyai_messaging.testing import LocalEmulator
from polyai_messaging.trio import _link as trio_link
from polyai_messaging.trio import _socket as trio_socket

from .helpers import Adapter, replied, wait_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """Only trio, here."""
    return "trio"


async def test_a_dropped_links_socket_is_closed_without_a_cancelled_checkpoint(
    adapter: Adapter, emulator: LocalEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``aclose_forcefully`` cancels the checkpoint of ``aclose`` (a cancel scope and a
    ``Cancelled`` raised and caught, for each link of a reconnect storm); a plain TCP stream is
    closed at once instead."""
    streams: list[Any] = []
    forceful: list[object] = []
    open_stream = trio_socket.open_stream

    async def opening(*args: Any) -> Any:
        stream = await open_stream(*args)
        streams.append(stream)
        return stream

    async def aclose_forcefully(resource: Any) -> None:
        forceful.append(resource)  # the emulator's server sockets are closed this way too

    monkeypatch.setattr(trio_socket, "open_stream", opening)
    monkeypatch.setattr(trio, "aclose_forcefully", aclose_forcefully)
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        emulator.set_faults("drop-after=0:1")
        await session.send("hello")
        await wait_for(session, lambda update: update.state.counters.reconnects == 1)
        await wait_for(session, replied(2))
        assert [type(stream) for stream in streams] == [trio.SocketStream] * 2
        assert streams[0].socket.fileno() == -1
    assert not [stream for stream in streams if any(stream is other for other in forceful)]


async def test_a_dropped_link_lets_its_reader_end_rather_than_cancel_it(
    adapter: Adapter, emulator: LocalEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the socket has closed, trio-websocket's reader ends by itself: cancelling it raised
    ``Cancelled`` in it (and in the link's task, waiting for it) for every link that ended."""
    ends: list[str] = []
    reader = WebSocketConnection._reader_task

    async def reading(connection: WebSocketConnection) -> None:
        try:
            await reader(connection)
        except BaseException as exc:
            ends.append(type(exc).__name__)
            raise
        ends.append("returned")

    monkeypatch.setattr(WebSocketConnection, "_reader_task", reading)
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        emulator.set_faults("drop-after=0:1")
        await session.send("hello")
        await wait_for(session, lambda update: update.state.counters.reconnects == 1)
        await wait_for(session, replied(2))
        assert ends == ["returned"]


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[WebSocketConnection]:
    """Every connection the adapter opens, in order."""
    connections: list[WebSocketConnection] = []
    wrap = trio_socket.wrap_client_stream

    async def wrapping(*args: object, **kwargs: object) -> WebSocketConnection:
        connection = await wrap(*args, **kwargs)  # type: ignore[arg-type]
        connections.append(connection)
        return connection

    class Recorded(WebSocketConnection):  # what the link reads in its own task
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            connections.append(self)

    monkeypatch.setattr(trio_socket, "wrap_client_stream", wrapping)
    monkeypatch.setattr(trio_socket, "WebSocketConnection", Recorded)
    return connections


async def test_an_open_link_keeps_nothing_of_the_handshake_and_still_reads_and_writes(
    adapter: Adapter, emulator: LocalEmulator, opened: list[WebSocketConnection]
) -> None:
    """wsproto's HTTP/1.1 handshake, the request (whose target holds the access token), the
    response's headers and a server's future would otherwise live as long as the socket."""
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        (connection,) = opened
        assert connection._wsproto.handshake is trio_socket._FINISHED
        assert connection._initial_request is None
        assert connection.handshake_headers == ()
        assert connection._connection_proposal is None
        await session.send("hello")
        await wait_for(session, replied(2))
    assert connection.closed is not None
    assert connection.closed.code == 1000


async def test_a_connection_unlike_trio_websockets_own_is_left_as_it_is() -> None:
    class Elsewhere:
        """Where a release of trio-websocket keeps its state under other names."""

    connection = Elsewhere()
    trio_socket._forget_handshake(connection)  # type: ignore[arg-type]
    assert vars(connection) == {}


async def test_an_aborted_link_takes_a_close_until_it_has_ended(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    """An aborted link's task leaves its nursery, which closes some scheduling rounds before
    the link has ended: a close queued then (a session shutting down queues one) is dropped,
    and must not start a writer in that nursery ("closed to new arrivals"). The close is tried
    at every round until the link has ended."""

    async def close_after(rounds: int) -> bool:
        """Whether the link had already ended when it was closed, ``rounds`` after the abort."""
        async with adapter.session(emulator) as session:
            await wait_for(session, replied(1))
            link = session.links[session.state.generation]
            assert isinstance(link, trio_link.Link)
            link.abort()
            for _ in range(rounds):
                await trio.lowlevel.checkpoint()
            ended = link.ended
            link.close(1000, "client closing")
            assert link.send('{"type": "PING"}') is False
            with trio.fail_after(5):
                while not link.ended:
                    await trio.lowlevel.checkpoint()
        return ended

    rounds = 0
    while not await close_after(rounds):
        rounds += 1
    assert rounds >= 2  # rounds where the link was unwinding were tried
