"""The trio adapter's own parts, which have no asyncio counterpart: what an open link keeps of
trio-websocket's opening handshake."""

from __future__ import annotations

import pytest
from trio_websocket import WebSocketConnection

from polyai_messaging.testing import LocalEmulator
from polyai_messaging.trio import _link as trio_link

from .helpers import Adapter, replied, wait_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """Only trio, here."""
    return "trio"


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[WebSocketConnection]:
    """Every connection the adapter opens, in order."""
    connections: list[WebSocketConnection] = []
    wrap = trio_link.wrap_client_stream

    async def wrapping(*args: object, **kwargs: object) -> WebSocketConnection:
        connection = await wrap(*args, **kwargs)  # type: ignore[arg-type]
        connections.append(connection)
        return connection

    monkeypatch.setattr(trio_link, "wrap_client_stream", wrapping)
    return connections


async def test_an_open_link_keeps_nothing_of_the_handshake_and_still_reads_and_writes(
    adapter: Adapter, emulator: LocalEmulator, opened: list[WebSocketConnection]
) -> None:
    """wsproto's HTTP/1.1 handshake, the request (whose target holds the access token), the
    response's headers and a server's future would otherwise live as long as the socket."""
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        (connection,) = opened
        assert connection._wsproto.handshake is trio_link._FINISHED
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
    trio_link._forget_handshake(connection)  # type: ignore[arg-type]
    assert vars(connection) == {}
