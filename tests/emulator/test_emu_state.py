"""The in-memory state under trio's virtual clock (no sockets): these tests run on trio only."""

from __future__ import annotations

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
)


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


def test_help_tables_for_the_cli() -> None:
    assert "drop-after=N[:K]" in FAULT_HELP
    assert all(isinstance(text, str) and text for text in TRIGGERS.values())
