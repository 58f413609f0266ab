"""The in-memory state under trio's virtual clock (no sockets), and shutdown edge cases."""

from __future__ import annotations

import httpx
import pytest
import trio
import trio.testing

from polyai_messaging.emulator import (
    DEMO_CONNECTOR_TOKEN,
    FAULT_HELP,
    TRIGGERS,
    AgentPhase,
    EmulatorConfig,
    EmulatorState,
    run_emulator,
)

from .helpers import start


async def test_idle_expiry_and_token_lifetime_in_virtual_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    state = EmulatorState(EmulatorConfig())  # production timings: 600 s idle, 86400 s tokens
    async with trio.open_nursery() as nursery:
        await nursery.start(state.run)
        token = state.mint_access_token(DEMO_CONNECTOR_TOKEN)
        session = state.create_session(token)

        def expired() -> bool:  # a call, so mypy does not narrow the attribute across awaits
            return session.expired

        await trio.sleep(599)
        assert not expired()
        session.touch(trio.current_time())  # client activity postpones the deadline
        await trio.sleep(599)
        assert not expired()
        await trio.sleep(2)
        assert expired()
        assert session.end_reason == "REASON_USER_ABANDONED"
        assert session.journal.types()[-1] == "EVENT_TYPE_SESSION_END"
        assert state.find_open_session(session.id) is None
        assert state.resolve_access_token(token) is not None
        await trio.sleep(86400)
        assert state.resolve_access_token(token) is None
        nursery.cancel_scope.cancel()


async def test_scripted_delays_follow_the_clock(autojump_clock: trio.testing.MockClock) -> None:
    from polyai_messaging.emulator._sessions import AgentJob
    from polyai_messaging.emulator._wire import EventType

    state = EmulatorState(EmulatorConfig(reply_delay_seconds=2.0))
    async with trio.open_nursery() as nursery:
        await nursery.start(state.run)
        session = state.create_session(state.mint_access_token(DEMO_CONNECTOR_TOKEN))
        session.agent_inbox.send_nowait(AgentJob(EventType.REQUEST_POLY_AGENT_JOIN))
        started = trio.current_time()
        while session.journal.last_sequence < 4:  # START, JOINED, THINKING, greeting
            await trio.sleep(0.5)
        assert trio.current_time() - started == pytest.approx(2.0, abs=0.6)
        assert session.phase is AgentPhase.POLY_AGENT
        nursery.cancel_scope.cancel()


async def test_body_exceptions_are_not_wrapped() -> None:
    with pytest.raises(KeyError, match="boom"):
        async with run_emulator():
            raise KeyError("boom")


async def test_cancellation_stops_everything_cleanly() -> None:
    with trio.move_on_after(0.3) as scope:
        async with start(EmulatorConfig.fast()) as harness, harness.session_socket() as client:
            await client.join()
            await trio.sleep_forever()
    assert scope.cancelled_caught


async def test_idle_http_connection_does_not_delay_shutdown() -> None:
    async with httpx.AsyncClient() as http:
        async with run_emulator() as emulator:
            response = await http.post(
                f"{emulator.base_url}/api/v1/access-token",
                headers={"X-Token": DEMO_CONNECTOR_TOKEN, "X-Host": "localhost"},
            )
            assert response.status_code == 200
            stopping = trio.current_time()
        # The pooled keep-alive connection is closed promptly, not after a grace period.
        assert trio.current_time() - stopping < 1.0


def test_help_tables_for_the_cli() -> None:
    assert "drop-after=N[:K]" in FAULT_HELP
    assert all(isinstance(text, str) and text for text in TRIGGERS.values())


async def test_a_sender_that_finds_the_stream_busy_stops_quietly() -> None:
    # hypercorn 0.18 sends EOF outside its send lock when a peer goes away; a frame being sent
    # then meets trio.BusyResourceError. The socket's writer must end as for a closed socket,
    # not crash the connection's task group with a traceback.
    from polyai_messaging.emulator._sessions import SocketConnection
    from polyai_messaging.emulator._websocket import _Emitter

    state = EmulatorState(EmulatorConfig())
    sent: list[str] = []

    async def busy_send(message: dict[str, object]) -> None:
        if sent:
            raise trio.BusyResourceError("another task is currently sending data")
        sent.append(str(message["text"]))

    async with trio.open_nursery() as nursery:
        await nursery.start(state.run)
        session = state.create_session(state.mint_access_token(DEMO_CONNECTOR_TOKEN))
        connection = SocketConnection(session, None)
        with trio.CancelScope() as scope:
            await _Emitter(state, connection, busy_send, scope).run(["first", "second", "third"])
        nursery.cancel_scope.cancel()
    assert sent == ["first"]
    assert scope.cancel_called
