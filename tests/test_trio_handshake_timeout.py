"""A trio link whose handshake times out just as the driver gives up on it (both bounds are the
connect timeout): the attempt fails and the next one is made; nothing escapes the session. One
the server closes unanswered fails at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

import trio
import trio.testing

from polyai_messaging.driver import Backoff, SessionConfig
from polyai_messaging.rest import AccessToken
from polyai_messaging.trio import open_session


async def _token() -> AccessToken:
    return AccessToken("a-token", 3600)


_CONFIG = SessionConfig(connect_timeout_seconds=5.0, backoff=Backoff(base=1.0, jitter=0.0))


async def _attempts(serve: Callable[[trio.SocketStream], Awaitable[None]]) -> list[float]:
    """When a session's first attempts reached a server that handles each connection with
    ``serve``: a session kept open until it has counted two reconnects, which must not end it."""
    accepted: list[float] = []

    async def handler(stream: trio.SocketStream) -> None:
        accepted.append(trio.current_time())
        await serve(stream)

    async with trio.open_nursery() as servers:
        (listener,) = await servers.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
        port = listener.socket.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        async with open_session(url, _token, session_id="s", config=_CONFIG) as session:
            async for update in session.updates():
                if update.state.counters.reconnects >= 2:
                    break
            assert session.finished is None
        servers.cancel_scope.cancel()
    return accepted


async def test_a_handshake_timing_out_as_the_driver_gives_up_is_a_failed_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def silent(stream: trio.SocketStream) -> None:  # TCP accepted, no HTTP answer
        await trio.sleep_forever()

    assert len(await _attempts(silent)) >= 2


async def test_a_server_that_closes_before_answering_the_upgrade_fails_the_attempt_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The link reads the handshake itself: a connection closed before the server answered is
    a failed attempt there and then (trio-websocket's ``wrap_client_stream`` waited on for the
    handshake's whole timeout)."""

    async def closing(stream: trio.SocketStream) -> None:  # TCP accepted, closed unanswered
        await stream.aclose()

    accepted = await _attempts(closing)
    assert len(accepted) >= 2
    assert accepted[1] - accepted[0] < _CONFIG.connect_timeout_seconds
