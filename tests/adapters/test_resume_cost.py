"""A resume and a restart from saved state, through an adapter and the runtime, pass over no
history: the driver, the runtime and the adapter build nothing from the whole conversation
when a link opens, when its replay arrives (a ``SESSION_START`` re-sent first included) or
when it settles."""

from __future__ import annotations

import pytest

from polyai_messaging.driver import dump_state, load_state
from polyai_messaging.emulator import EmulatorConfig
from polyai_messaging.runtime import SessionRuntime, Update
from polyai_messaging.testing import LocalEmulator, open_emulator
from probes import HistoryProbe

from .helpers import Adapter, wait_for

pytestmark = pytest.mark.anyio

HISTORY = 200
MISSED = 5


def _grow(emulator: LocalEmulator, session_id: str, count: int) -> int:
    """Journal ``count`` agent messages; return the last sequence."""
    state = emulator.state
    for _ in range(count):
        number = emulator.journal(session_id).last_sequence + 1
        state.publish(
            session_id,
            "EVENT_TYPE_POLY_AGENT_MESSAGE",
            {"text": "Yes.", "message_id": f"m{number}"},
        )
    return emulator.journal(session_id).last_sequence


async def _caught_up(session: SessionRuntime, last: int) -> Update:
    update = await wait_for(session, lambda u: u.conversation.cursor >= last and u.state.settled)
    # Every sequence up to the cursor applied once: none missed, none twice.
    assert update.conversation.events_applied == update.conversation.cursor
    return update


@pytest.mark.parametrize("prepend", [False, True], ids=["plain", "resending-start"])
async def test_resume_and_restart_pass_over_no_history(
    adapter: Adapter, prepend: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = EmulatorConfig.fast(always_prepend_session_start=prepend)
    async with open_emulator(config) as emulator:
        async with adapter.session(emulator) as session:
            session_id = session.state.session_id
            await session.wait_reply()  # the agent's greeting: the server is quiet now
            last = _grow(emulator, session_id, HISTORY)
            update = await _caught_up(session, last)
            generation = update.state.generation

            probe = HistoryProbe(monkeypatch)
            emulator.state.drop_sockets(session_id)
            last = _grow(emulator, session_id, MISSED)
            await wait_for(session, lambda u: u.state.generation > generation)
            update = await _caught_up(session, last)
            assert probe.passes == []
            monkeypatch.undo()
            saved = dump_state(update.state)

        last = _grow(emulator, session_id, MISSED)
        restored = load_state(saved)
        probe = HistoryProbe(monkeypatch)
        async with adapter.session(emulator, state=restored) as session:
            await _caught_up(session, last)
            assert probe.passes == []
