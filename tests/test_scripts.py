"""Scripted conversations (tests/scripts/*.jsonl) run through the driver with a fake link."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from polyai_messaging.core import END_CONVERSATION_REASON, Phase, Role
from polyai_messaging.driver import FinishKind
from polyai_messaging.testing import ScriptResult, is_script, run_script

SCRIPTS = Path(__file__).parent / "scripts"
JOIN = "EVENT_TYPE_REQUEST_POLY_AGENT_JOIN"


def load(name: str) -> list[dict[str, Any]]:
    path = SCRIPTS / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def sent_types(result: ScriptResult) -> list[str]:
    return [frame["type"].removeprefix("EVENT_TYPE_") for frame in result.sent]


def statuses(result: ScriptResult) -> dict[str, str]:
    return {d["client_event_id"]: d["status"] for d in result.report()["delivery"]}


def check_new_session_join(r: ScriptResult) -> None:
    assert sent_types(r).count("REQUEST_POLY_AGENT_JOIN") == 1
    assert r.state.finished is not None
    assert r.state.finished.kind is FinishKind.ENDED
    assert r.state.conversation.end_reason == "REASON_USER_END"
    assert statuses(r) == {"c1": "sent"}


def check_reconnect_no_join(r: ScriptResult) -> None:
    assert "REQUEST_POLY_AGENT_JOIN" not in sent_types(r)
    assert r.reconnect_cursors == (6,)
    assert statuses(r) == {"c1": "sent"}


def check_join_across_batches(r: ScriptResult) -> None:
    assert "REQUEST_POLY_AGENT_JOIN" not in sent_types(r)
    assert r.state.conversation.agent_joined
    assert r.state.settled


def check_streaming(r: ScriptResult) -> None:
    assert r.reconnect_cursors == (7,)
    assert r.state.conversation.capabilities.streaming is True
    stream = [m for m in r.state.conversation.transcript if m.message_id == "stream-1"]
    assert [(m.text, m.complete) for m in stream] == [
        ("Our opening hours are 9 to 5 on weekdays.", True)
    ]
    assert not r.state.conversation.streams
    assert r.state.counters.resumes == 1


def check_duplicates(r: ScriptResult) -> None:
    assert r.reconnect_cursors == (7,)
    assert r.state.counters.duplicates_dropped == 4
    texts = [m.text for m in r.state.conversation.transcript]
    assert texts == ["Hello! How can I help?", "Hi", "Hi there", "Anything else?", "Bye for now"]
    assert r.state.conversation.cursor == 9


def check_echo_in_replay(r: ScriptResult) -> None:
    assert r.reconnect_cursors == (5,)
    assert sent_types(r).count("USER_MESSAGE") == 1, "no duplicate send"
    assert statuses(r) == {"c1": "sent"}
    assert r.state.delivery("c1").message_id == "u6"
    assert r.state.counters.resends == 0


def check_resend_after_drop(r: ScriptResult) -> None:
    assert r.reconnect_cursors == (5,)
    frames = [f for f in r.sent if f["type"] == "EVENT_TYPE_USER_MESSAGE"]
    assert len(frames) == 2
    assert {f["metadata"]["custom"]["client_event_id"] for f in frames} == {"c1"}
    assert statuses(r) == {"c1": "sent"}
    assert r.state.counters.resends == 1


def check_server_handoff(r: ScriptResult) -> None:
    conversation = r.state.conversation
    assert conversation.phase is Phase.ENDED
    assert conversation.end_reason == "REASON_NATURAL_END"
    assert conversation.live_agent is not None
    assert conversation.live_agent.name == "Sam"
    assert conversation.queue is not None
    assert conversation.queue.queue_name == "support"
    roles = [m.role for m in conversation.transcript]
    assert Role.LIVE_AGENT in roles
    assert statuses(r) == {"c1": "sent", "c2": "sent"}
    assert not conversation.anomalies


def check_client_handoff(r: ScriptResult) -> None:
    conversation = r.state.conversation
    assert conversation.phase is Phase.HANDOFF
    assert conversation.client_handoff is not None
    assert conversation.client_handoff.reason == "COMPLEX_QUERY"
    assert r.state.finished is None


def check_rejoin(r: ScriptResult) -> None:
    assert sent_types(r) == ["REQUEST_POLY_AGENT_JOIN", "REQUEST_POLY_AGENT_JOIN"]
    assert r.state.joins_sent == 2
    assert r.state.join_retries == 0, "the agent joined: the join budget is whole again"
    assert r.state.conversation.agent_joined


def check_heartbeat(r: ScriptResult) -> None:
    assert r.report()["heartbeat_interval_seconds"] == 5
    assert sent_types(r) == ["HEARTBEAT"] * 3
    state = r.state
    assert state.next_heartbeat == pytest.approx(state.last_sent_monotonic + 5)
    # three heartbeats 5 s apart from the open at t=0 (the frames only add 10 ms each)
    assert state.last_sent_monotonic == pytest.approx(15.0, abs=0.1)


def check_typing(r: ScriptResult) -> None:
    typing = [f["payload"]["state"] for f in r.sent if f["type"] == "EVENT_TYPE_USER_TYPING"]
    assert typing == ["TYPING_STATE_STARTED", "TYPING_STATE_STOPPED"]
    assert r.state.conversation.live_agent_typing
    assert r.state.indicator_since is not None


def check_language_end(r: ScriptResult) -> None:
    assert r.state.conversation.language == "es-ES"
    assert r.state.finished is not None
    assert r.state.finished.kind is FinishKind.ENDED
    # The agent's goodbye carries end_conversation: the session finishes there and closes, as
    # at a SESSION_END, so the server's SESSION_END that follows is not read.
    assert r.state.finished.reason == END_CONVERSATION_REASON
    assert r.state.conversation.phase is Phase.ENDED
    assert r.state.conversation.end_reason == END_CONVERSATION_REASON


CHECKS: dict[str, Callable[[ScriptResult], None]] = {
    "01-new-session-join": check_new_session_join,
    "02-reconnect-no-join": check_reconnect_no_join,
    "03-join-across-batches": check_join_across_batches,
    "04-streaming-drop-resume": check_streaming,
    "05-replay-duplicates": check_duplicates,
    "06-resend-echo-in-replay": check_echo_in_replay,
    "07-resend-after-drop": check_resend_after_drop,
    "08-server-handoff": check_server_handoff,
    "09-client-handoff": check_client_handoff,
    "10-rejoin-not-found": check_rejoin,
    "11-heartbeat-interval": check_heartbeat,
    "12-typing": check_typing,
    "13-language-natural-end": check_language_end,
}


def test_every_script_has_a_check() -> None:
    assert sorted(p.stem for p in SCRIPTS.glob("*.jsonl")) == sorted(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_script(name: str) -> None:
    lines = load(name)
    assert is_script(lines)
    assert lines[0]["scenario"] == name.split("-", 1)[1]
    result = run_script(lines)
    assert result.mismatches == ()
    assert result.report()["mismatches"] == []
    CHECKS[name](result)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_script_is_deterministic(name: str) -> None:
    assert run_script(load(name)).sent == run_script(load(name)).sent


def test_wrong_expectation_is_reported() -> None:
    # a reconnect script that (wrongly) expects a join request after the replay
    lines = load("02-reconnect-no-join")
    lines.insert(2, {"client_sends": {"type": JOIN, "payload": {}}})
    result = run_script(lines)
    assert result.mismatches == (f"expected {JOIN}, the driver did not send it",)


def test_unexpected_send_is_reported() -> None:
    # the rejoin after "Error: Conversation not found" is not announced by the script
    lines = load("10-rejoin-not-found")
    joins = [i for i, line in enumerate(lines) if line.get("client_sends", {}).get("type") == JOIN]
    del lines[joins[1]]
    result = run_script(lines)
    assert len(result.mismatches) == 1
    assert result.mismatches[0].startswith(f"unexpected {JOIN}")


def test_wrong_resend_expectation_is_reported() -> None:
    lines = load("06-resend-echo-in-replay")
    drop = lines.index({"drop": True})
    # claim a resend happens after the reconnect: the echo is in the replay, so it must not
    resend = {
        "type": "EVENT_TYPE_USER_MESSAGE",
        "payload": {"text": "Book a table"},
        "metadata": {"custom": {"client_event_id": "c1"}},
    }
    lines.insert(drop + 2, {"client_sends": resend})
    result = run_script(lines)
    assert result.mismatches == ("expected EVENT_TYPE_USER_MESSAGE, the driver did not send it",)
