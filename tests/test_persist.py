"""Saving a driver state and resuming it in another process (fresh objects)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from model_server import Link, ModelServer
from polyai_messaging.driver import (
    DeliveryStatus,
    OpenSocket,
    Resumed,
    ResumeKind,
    SendText,
    SessionConfig,
    SessionState,
    Start,
    StateFormatError,
    dump_state,
    load_state,
)


def _conversation() -> tuple[Link, ModelServer]:
    server = ModelServer(heartbeat_interval_seconds=5, max_message_size_bytes=4096)
    link = Link(SessionState.new("persisted", seed=11), server)
    link.feed(Start())
    link.settle()  # joins
    link.deliver()
    link.feed(SendText("first", "c1"))
    link.deliver()
    link.lose_outbound = 1
    link.feed(SendText("lost on the wire", "c2", custom={"order": "42"}))
    link.deliver()
    return link, server


def test_round_trip_in_a_new_process_resumes_the_same_conversation() -> None:
    link, server = _conversation()
    old = link.state
    assert old.delivery("c1").status is DeliveryStatus.SENT
    assert old.delivery("c2").status is DeliveryStatus.PENDING
    text = dump_state(old)
    assert "token" not in text

    # "new process": only the JSON text survives
    restored = load_state(json.loads(json.dumps(text)))
    assert restored.session_id == "persisted"
    assert restored.conversation.cursor == old.conversation.cursor
    assert restored.conversation.transcript == old.conversation.transcript
    assert restored.conversation.capabilities == old.conversation.capabilities
    assert [
        (e.client_event_id, e.text, e.status, e.transmissions, e.message_id)
        for e in restored.outbox
    ] == [(e.client_event_id, e.text, e.status, e.transmissions, e.message_id) for e in old.outbox]
    assert restored.delivery("c2").custom == {"order": "42"}
    assert (restored.seed, restored.draws, restored.joins_sent, restored.join_retries) == (
        old.seed,
        old.draws,
        old.joins_sent,
        old.join_retries,
    )
    assert restored.max_message_bytes == 4096

    relink = Link(restored, server, clock=1000.0)
    effects = relink.feed(Start())
    opens = [e for e in effects if isinstance(e, OpenSocket)]
    assert opens == [OpenSocket(1, "persisted", old.conversation.cursor)]
    relink.settle()
    relink.deliver()
    resumed = [e for e in relink.effects if isinstance(e, Resumed)]
    assert resumed == [Resumed(ResumeKind.RESUMED, (), old.conversation.cursor)]
    assert relink.state.delivery("c2").status is DeliveryStatus.SENT
    assert not any(f["type"] == "EVENT_TYPE_REQUEST_POLY_AGENT_JOIN" for f in relink.sent)
    users = [m for m in relink.state.conversation.transcript if m.client_event_id]
    assert [m.client_event_id for m in users] == ["c1", "c2"]


def test_dump_is_stable_and_reloadable_twice() -> None:
    link, _ = _conversation()
    text = dump_state(link.state)
    assert dump_state(load_state(text)) == text


def test_config_is_supplied_on_load() -> None:
    link, _ = _conversation()
    config = SessionConfig(max_resends=1)
    assert load_state(dump_state(link.state), config=config).config is config


def test_fresh_state_round_trips() -> None:
    state = SessionState.new("empty", seed=3)
    restored = load_state(dump_state(state))
    assert restored.session_id == "empty"
    assert restored.conversation.cursor == 0
    assert not restored.was_connected


def _saved() -> dict[str, Any]:
    link, _ = _conversation()
    return json.loads(dump_state(link.state))


def _with(**changes: Any) -> str:
    data = _saved()
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data)


def _outbox_with(**changes: Any) -> str:
    data = _saved()
    data["outbox"][0].update(changes)
    return json.dumps(data)


def _journal_with(index: int, frame: Any) -> str:
    data = _saved()
    data["journal"][index] = frame
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (_with(format=2), "format: expected 1, got 2"),
        (_with(format=...), "format"),
        (_with(session_id=...), "session_id: missing"),
        (_with(session_id=5), "session_id: expected str"),
        (_with(journal={}), "journal: expected list"),
        (_journal_with(1, {"type": 5}), r"journal\[1\]"),
        (_journal_with(0, "frame"), r"journal\[0\]"),
        (_with(cursor=99), "cursor does not match the journal"),
        (_with(cursor="3"), "cursor: expected int"),
        (_with(seed=True), "seed: expected int"),
        (_with(draws=...), "draws: missing"),
        (_with(outbox=None), "outbox: expected list"),
        (_outbox_with(status="maybe"), r"outbox\[0\]"),
        (_outbox_with(transmissions="1"), r"outbox\[0\]: transmissions: expected int"),
        (_outbox_with(text=None), r"outbox\[0\]: text"),
        (_with(last_sent_wall="yesterday"), "last_sent_wall: expected a number or null"),
        (_with(last_sent_wall=True), "last_sent_wall: expected a number or null"),
    ],
)
def test_malformed_state_raises_state_format_error(text: str, message: str) -> None:
    with pytest.raises(StateFormatError, match=message):
        load_state(text)


def test_a_state_saved_before_last_sent_wall_was_kept_still_loads() -> None:
    restored = load_state(_with(last_sent_wall=...))
    assert restored.last_sent_wall is None
    assert load_state(dump_state(_conversation()[0].state)).last_sent_wall is not None


def test_outbox_entry_not_an_object() -> None:
    data = _saved()
    data["outbox"] = ["c1"]
    with pytest.raises(StateFormatError, match=r"outbox\[0\]"):
        load_state(json.dumps(data))


@pytest.mark.parametrize(
    "text",
    ["plain", "café ☕ 🍕", "lone \ud800 surrogate", "x" * 50_000, "order 12345678901234567890"],
    ids=["ascii", "non-ascii", "lone-surrogate", "long", "long-digit-run"],
)
def test_any_text_the_server_sent_survives_a_round_trip(text: str) -> None:
    # Saved states are read by a faster parser where it agrees with json.loads, and by
    # json.loads where it does not (a lone surrogate, which a server may send escaped, cannot
    # even be encoded as UTF-8).
    data = _saved()
    frame = next(f for f in reversed(data["journal"]) if "text" in f["payload"])
    frame["payload"]["text"] = text
    saved = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    restored = load_state(saved)
    held = restored.conversation.event_at(frame["sequence"])
    assert held is not None
    assert held.payload.text == text
    assert dump_state(restored) == saved


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), 2**70, -(2**63) - 1, 2**64 - 1, -(2**63), 1e300, 2.5e-308],
)
def test_values_only_json_loads_accepts_are_read_as_json_loads_reads_them(value: Any) -> None:
    data = _saved()
    sequence = data["cursor"] + 1
    data["journal"].append(
        {"type": "EVENT_TYPE_FROM_THE_FUTURE", "sequence": sequence, "payload": {"v": [value]}}
    )
    data["cursor"] = sequence
    restored = load_state(json.dumps(data))
    held = restored.conversation.event_at(sequence)
    assert held is not None
    assert json.dumps(held.payload) == json.dumps({"v": [value]})
