"""Resuming and restarting cost the events missed, not the history held.

The driver and the core are probed where work over the whole history would show: iterating
the conversation's event log (anything built from every event: the timeline, the journal map,
a re-fold) and sorting every message (the transcript). Neither may happen while a link opens,
while its replay arrives (a ``SESSION_START`` re-sent first included) or when it settles.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from model_server import Link, ModelServer, agent_message
from polyai_messaging.core import EventLog, decode_object, fold
from polyai_messaging.driver import (
    ProtocolViolation,
    Resumed,
    ResumeKind,
    SessionState,
    Start,
    dump_state,
    load_state,
)
from probes import HistoryProbe

HISTORY = 300
MISSED = 7


class PrependingServer(ModelServer):
    """A server that re-sends ``SESSION_START`` first in every replay that starts after it."""

    def replay(self, cursor: int) -> list[dict[str, Any]]:
        frames = super().replay(cursor)
        if cursor >= 1:
            frames[0]["payload"]["events"].insert(0, self.journal[0])
        return frames


def _grown(server: ModelServer, history: int = HISTORY) -> Link:
    """A session whose client holds a history of ``history`` events."""
    for number in range(history - 1):
        if number % 2:
            server.append("POLY_AGENT_MESSAGE", {"text": "Sure.", "message_id": f"a{number}"})
        else:
            custom = {"custom": {"client_event_id": f"c{number}"}}
            server.append("USER_MESSAGE", {"text": "Hi", "message_id": f"u{number}"}, custom)
    link = Link(SessionState.new("held", seed=5), server)
    link.feed(Start())
    link.settle()
    assert link.state.conversation.cursor >= history
    assert not link.state.conversation.gaps
    return link


def _miss(server: ModelServer) -> int:
    for number in range(MISSED):
        server.append("POLY_AGENT_MESSAGE", {"text": "Missed.", "message_id": f"m{number}"})
    return len(server.journal)


@pytest.mark.parametrize("server_class", [ModelServer, PrependingServer])
def test_a_resume_does_not_pass_over_the_history(
    server_class: type[ModelServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = server_class()
    link = _grown(server)
    cursor = link.state.conversation.cursor
    link.drop()
    last = _miss(server)
    probe = HistoryProbe(monkeypatch)
    link.advance(60)  # the reconnect
    link.settle()
    assert probe.passes == []
    assert not any(isinstance(e, ProtocolViolation) for e in link.effects)
    assert link.state.conversation.cursor == last
    assert link.state.conversation.events_applied == last  # each missed event once
    resumed = [e for e in link.effects if isinstance(e, Resumed)]
    assert resumed[-1] == Resumed(ResumeKind.RESUMED, (), cursor)


@pytest.mark.parametrize("server_class", [ModelServer, PrependingServer])
def test_a_restart_from_saved_state_does_not_pass_over_the_history(
    server_class: type[ModelServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = server_class()
    saved = dump_state(_grown(server).state)
    last = _miss(server)
    restored = load_state(saved)  # reading the saved history is load_state's part
    cursor = restored.conversation.cursor
    probe = HistoryProbe(monkeypatch)
    link = Link(restored, server, clock=1000.0)
    link.feed(Start())
    link.settle()
    assert probe.passes == []
    assert not any(isinstance(e, ProtocolViolation) for e in link.effects)
    assert link.state.conversation.cursor == last
    assert link.state.conversation.events_applied == last
    resumed = [e for e in link.effects if isinstance(e, Resumed)]
    assert resumed == [Resumed(ResumeKind.RESUMED, (), cursor)]


def _restart_memory(history: int) -> tuple[int, int]:
    """Bytes a restart from a saved ``history``-event state allocates and keeps, and at most."""
    server = ModelServer()
    saved = dump_state(_grown(server, history).state)
    _miss(server)
    restored = load_state(saved)
    tracemalloc.start()
    try:
        link = Link(restored, server, clock=1000.0)
        link.feed(Start())
        link.settle()
        return tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()


def test_a_restart_allocates_for_the_missed_events_not_the_history() -> None:
    # Ten times the history adds a level to the persistent maps the missed events are folded
    # into (a few hundred bytes), nothing in proportion to it: a copy of anything built from
    # every event (the log's tail, the timeline) would show here.
    small_held, small_peak = _restart_memory(300)
    large_held, large_peak = _restart_memory(3000)
    assert large_held < 1.5 * small_held
    assert large_peak < 1.5 * small_peak


def test_finding_a_held_event_costs_how_far_it_moved_not_the_history(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A replay from before a gap re-sends what is held, and the driver looks each one up (to
    # notice a server whose history changed). Gaps filled late put the log out of sequence
    # order; each lookup still reads only a few places around the expected one.
    late = {5, 6, 40}
    order = [n for n in range(1, 2001) if n not in late] + sorted(late)
    conversation = fold(decode_object(agent_message(n, message_id=f"m{n}")) for n in order)
    reads = 0
    item, iterate = EventLog.__getitem__, EventLog.__iter__

    def counted(log: EventLog, index: Any) -> Any:
        nonlocal reads
        reads += 1
        return item(log, index)

    def counted_pass(log: EventLog) -> Any:
        nonlocal reads
        reads += len(log)  # a pass may read every event
        return iterate(log)

    monkeypatch.setattr(EventLog, "__getitem__", counted)
    monkeypatch.setattr(EventLog, "__iter__", counted_pass)
    for sequence in range(1, 2001):
        reads = 0
        held = conversation.event_at(sequence)
        assert held is not None
        assert held.sequence == sequence
        assert reads <= (2 * len(late) + 4 if sequence not in late else 2 * len(order))
