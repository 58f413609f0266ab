"""Exactly-once delivery in the driver: when the replay is over, what an echo confirms, what a
message carries, and what the outbox keeps as a session grows long."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_server import batch, event, joined, session_start, user_echo
from polyai_messaging.core import LocalProtocolError
from polyai_messaging.driver import (
    RECENT_DELIVERIES,
    CloseSocket,
    Delivery,
    DeliveryStatus,
    LinkClosed,
    LinkStatus,
    OpenSocket,
    PickSuggestion,
    ProtocolViolation,
    Resumed,
    ResumeKind,
    SendText,
    SessionState,
    Start,
)
from polyai_messaging.testing import run_script
from test_session import HISTORY, JOIN, USER_MESSAGE, Drive, of, sent, sent_types


def echo_without_id(sequence: int, text: str, **metadata: Any) -> dict[str, Any]:
    """An echo whose stored metadata lost our client_event_id (or never had one)."""
    frame = event("USER_MESSAGE", sequence, {"text": text, "message_id": f"u{sequence}"})
    if metadata:
        frame["metadata"] = {"custom": metadata}
    return frame


# --- the replay is over only once it has been received ------------------------------------------


def test_a_late_replay_is_awaited_not_taken_for_no_replay() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(SendText("hello", "c1"))  # sent on the first link, echo lost with it
    d(LinkClosed(1, 1006))
    d.wake()
    d.open()  # link 2 is open, but the server is slow to replay
    effects = d.wake(d.t + 0.8)
    assert not sent(effects), "nothing is resent while the replay may still come"
    assert not d.state.settled
    effects = d.frame(batch(user_echo(5, "c1", "hello")))  # the replay holds the echo
    effects += d.wake()
    assert d.state.settled
    assert Delivery("c1", DeliveryStatus.SENT, "u5") in effects
    assert USER_MESSAGE not in sent_types(effects)
    assert d.state.counters.resends == 0


def test_resuming_by_id_with_a_slow_replay_sends_no_second_join() -> None:
    d = Drive()
    d.open()  # a known session: its history (with the agent's join) is on its way
    effects = d.wake(d.t + 0.8)
    effects += d.frame(batch(*HISTORY))
    effects += d.wake()
    effects += d.wake(d.t + 10)
    assert d.state.settled
    assert JOIN not in sent_types(effects)


def test_after_a_slow_first_batch_the_quiet_period_stretches() -> None:
    d = Drive()
    d.open()
    d.frame(batch(session_start(1)), at=0.8)
    d.frame(batch(event("REQUEST_POLY_AGENT_JOIN", 2), joined(3)), at=2.2)  # 1.4 s later
    effects = d.wake()
    assert d.t == pytest.approx(2.2 + 1.6), "twice the 0.8 s the replay took to start"
    assert d.state.settled
    assert JOIN not in sent_types(effects)


def test_a_server_that_sends_no_replay_settles_after_the_long_bound() -> None:
    d = Drive()
    d.open()
    assert d.state.deadline == pytest.approx(d.t + 5.0)
    effects = d.wake(d.t + 4.9)
    assert not sent(effects)
    effects = d.wake()
    assert d.state.settled
    assert sent_types(effects) == [JOIN]


# --- echo matching ----------------------------------------------------------------------------


def test_echo_without_client_event_id_confirms_the_oldest_pending_same_text() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(SendText("same", "c1"))
    d(SendText("other", "c2"))
    d(SendText("same", "c3"))
    effects = d.frame(echo_without_id(5, "same"))
    assert of(Delivery, effects) == [Delivery("c1", DeliveryStatus.SENT, "u5")]
    effects = d.frame(echo_without_id(6, "same", client_event_id="never-issued"))
    assert of(Delivery, effects) == [Delivery("c3", DeliveryStatus.SENT, "u6")]
    effects = d.frame(echo_without_id(7, "same"))
    assert of(Delivery, effects) == [], "nothing left to confirm with that text"
    assert d.state.delivery("c2").status is DeliveryStatus.PENDING


def test_echo_with_our_id_is_not_matched_by_text() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(SendText("same", "c1"))
    d(SendText("same", "c2"))
    effects = d.frame(user_echo(5, "c2", "same"))
    assert of(Delivery, effects) == [Delivery("c2", DeliveryStatus.SENT, "u5")]
    effects = d.frame(user_echo(6, "c2", "same"))  # a second copy of c2: confirms nothing
    assert of(Delivery, effects) == []
    assert d.state.delivery("c1").status is DeliveryStatus.PENDING


def test_a_replay_whose_echoes_lost_their_metadata_resends_nothing() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(SendText("one", "c1"))
    d(SendText("two", "c2"))
    d(LinkClosed(1, 1006))
    d.wake()
    effects = d.open(batch(echo_without_id(5, "one"), echo_without_id(6, "two"))) + d.wake()
    assert USER_MESSAGE not in sent_types(effects)
    assert {d.state.delivery(c).status for c in ("c1", "c2")} == {DeliveryStatus.SENT}


# --- custom metadata --------------------------------------------------------------------------


def test_custom_metadata_is_merged_with_the_client_event_id_and_resent() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    effects = d(SendText("hi", "c1", custom={"order": "42", "lang": "fr"}))
    (frame,) = sent(effects)
    assert frame["metadata"] == {"custom": {"order": "42", "lang": "fr", "client_event_id": "c1"}}
    d(LinkClosed(1, 1006))
    d.wake()
    effects = d.open(batch()) + d.wake()
    (resent,) = [f for f in sent(effects) if f["type"] == USER_MESSAGE]
    assert resent == frame


def test_client_event_id_may_come_in_custom() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    effects = d(SendText("hi", custom={"client_event_id": "mine"}))
    assert of(Delivery, effects) == [Delivery("mine", DeliveryStatus.PENDING)]
    with pytest.raises(LocalProtocolError, match="two different"):
        d(SendText("hi", "a", custom={"client_event_id": "b"}))
    d(SendText("hi", "same", custom={"client_event_id": "same"}))  # the same id twice is fine


def test_custom_metadata_counts_towards_the_size_limit() -> None:
    d = Drive()
    d.settled_open(session_start(1, max_message_size_bytes=200), *HISTORY[1:])
    d(SendText("x" * 50))
    before = d.state
    with pytest.raises(LocalProtocolError, match="bytes"):
        d(SendText("x" * 50, custom={"note": "y" * 150}))
    assert d.state == before


def test_picking_a_suggestion_carries_custom_metadata() -> None:
    d = Drive()
    offer = event(
        "POLY_AGENT_MESSAGE",
        5,
        {"message_id": "m5", "text": "?", "response_suggestions": [{"message_text": "Yes"}]},
    )
    d.settled_open(*HISTORY, offer)
    effects = d(PickSuggestion(0, "p1", custom={"source": "button"}))
    (frame,) = sent(effects)
    assert frame["payload"] == {"text": "Yes"}
    assert frame["metadata"] == {"custom": {"source": "button", "client_event_id": "p1"}}


def test_a_script_passes_the_whole_custom_metadata_through() -> None:
    custom = {"client_event_id": "s1", "local_id": "draft-7", "campaign": "x"}
    lines = [
        batch(*HISTORY),
        {"client_sends": {"type": USER_MESSAGE, "payload": {"text": "hi"},
                          "metadata": {"custom": custom}}},
    ]  # fmt: skip
    result = run_script(lines)
    assert result.mismatches == ()
    (frame,) = [f for f in result.sent if f["type"] == USER_MESSAGE]
    assert frame["metadata"]["custom"] == custom
    assert result.state.delivery("s1") is not None


# --- generated ids ----------------------------------------------------------------------------


def test_generated_client_event_ids_are_full_random_uuid4s() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    ids = [of(Delivery, d(SendText(f"m{i}")))[0].client_event_id for i in range(500)]
    parsed = [uuid.UUID(cid) for cid in ids]
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in parsed)
    assert len(set(ids)) == len(ids)
    # every one of the 122 random bits varies across the ids
    mask = (1 << 128) - 1 ^ (0xF << 76) ^ (0x3 << 62)
    varying = 0
    for u in parsed:
        varying |= (u.int ^ parsed[0].int) & mask
    assert varying == mask


def test_generated_ids_are_repeatable_for_a_seed() -> None:
    def ids(seed: int) -> list[str]:
        d = Drive(SessionState.new("s", seed=seed))
        d(Start())
        return [of(Delivery, d(SendText("x")))[0].client_event_id for _ in range(3)]

    assert ids(5) == ids(5)
    assert ids(5) != ids(6)


# --- the outbox over a long session -----------------------------------------------------------


def test_finished_messages_leave_the_pending_set_and_memory_is_bounded() -> None:
    d = Drive()
    d.settled_open(session_start(1, heartbeat_interval_seconds=0), *HISTORY[1:])
    total = 2 * RECENT_DELIVERIES + 500
    for i in range(total):
        d(SendText(f"m{i}", f"c{i}"))
        d.frame(user_echo(5 + i, f"c{i}", f"m{i}"))
    outbox = d.state.outbox
    assert len(outbox.pending) == 0
    assert outbox.next_check is None
    assert len(outbox) <= 2 * RECENT_DELIVERIES
    latest = [f"c{i}" for i in range(total - RECENT_DELIVERIES, total)]
    assert all(d.state.delivery(c).status is DeliveryStatus.SENT for c in latest)
    assert d.state.delivery("c0") is None, "long-finished messages are forgotten"


def test_the_deadline_comes_from_the_earliest_pending_check() -> None:
    d = Drive()
    d.settled_open(session_start(1, heartbeat_interval_seconds=0), *HISTORY[1:])
    for i in range(20):
        d(SendText(f"m{i}", f"c{i}"), at=d.t + 0.1)
    first_check = d.state.delivery("c0").next_check
    assert d.state.deadline == first_check
    d.frame(user_echo(5, "c0", "m0"))
    assert d.state.deadline == d.state.delivery("c1").next_check


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["send", "echo", "drop"]), st.integers(0, 9))))
def test_outbox_views_agree_with_a_plain_model(actions: list[tuple[str, int]]) -> None:
    """Pending set, text index and check index always describe the same messages."""
    d = Drive(default_max_reconnect_attempts=0)
    d.settled_open(session_start(1, heartbeat_interval_seconds=0), *HISTORY[1:])
    sequence = 4
    sent_ids: list[str] = []
    for action, n in actions:
        if action == "send":
            cid = f"c{len(sent_ids)}"
            d(SendText(f"text {n % 3}", cid), at=d.t + 0.5)
            sent_ids.append(cid)
        elif action == "echo" and sent_ids:
            sequence += 1
            cid = sent_ids[n % len(sent_ids)]
            d.frame(user_echo(sequence, cid, d.state.delivery(cid).text))
        elif action == "drop" and d.state.link is LinkStatus.OPEN:
            d(LinkClosed(d.state.generation, 1006))
            d.wake()
            d.open(batch())
            d.wake()
    outbox = d.state.outbox
    pending = [e for e in outbox if e.status is DeliveryStatus.PENDING]
    assert {e.client_event_id for e in pending} == set(outbox.pending.keys())
    by_text: dict[str, list[str]] = {}
    for entry in pending:
        by_text.setdefault(entry.text, []).append(entry.client_event_id)
    assert {k: list(v) for k, v in outbox.by_text.items()} == by_text
    checks = sorted(e.next_check for e in pending if e.next_check is not None)
    assert outbox.check_times() == checks
    assert d.state.deadline is None or d.state.deadline <= (checks or [float("inf")])[0]


def test_without_a_replay_a_join_of_unknown_fate_is_not_repeated() -> None:
    d = Drive()
    d.open()
    effects = d.wake(d.t + 5.0)  # no replay: settled blind, the join goes out
    assert sent_types(effects) == [JOIN]
    d(LinkClosed(1, 1006))
    d.wake()
    d.open()
    effects = d.wake(d.t + 5.0)  # no replay again: the first join may have arrived
    assert JOIN not in sent_types(effects)
    d(LinkClosed(2, 1006))
    d.wake()
    effects = d.open(batch(session_start(1))) + d.wake()  # a replay proves it lost
    assert sent_types(effects) == [JOIN]


def test_without_a_replay_a_message_of_unknown_fate_waits_for_its_check() -> None:
    d = Drive()
    d.settled_open(session_start(1, heartbeat_interval_seconds=0), *HISTORY[1:])
    d(SendText("hello", "c1"))
    d(LinkClosed(1, 1006))
    d.wake()
    d.open()
    d(SendText("later", "c2"))
    effects = d.wake(d.t + 5.0)  # settled blind: only the never-sent message goes out
    assert [f["payload"]["text"] for f in sent(effects)] == ["later"]
    assert d.state.delivery("c1").transmissions == 1
    assert d.state.counters.resends == 0


# --- gaps ---------------------------------------------------------------------------------------


def test_a_reconnect_starts_the_replay_before_the_first_gap() -> None:
    d = Drive()
    d.settled_open(session_start(1), event("REQUEST_POLY_AGENT_JOIN", 2), joined(3))
    d.frame(event("POLY_AGENT_THINKING", 5))  # 4 never came
    d.frame(event("POLY_AGENT_THINKING", 7))  # nor 6
    assert d.state.conversation.gaps == ((4, 4), (6, 6))
    d(LinkClosed(1, 1006))
    effects = d.wake()
    assert of(OpenSocket, effects) == [OpenSocket(2, "sess-1", 3)]
    replay = [event("POLY_AGENT_THINKING", n) for n in range(4, 8)]
    effects = d.open(batch(*replay)) + d.wake()
    assert d.state.conversation.gaps == ()
    assert of(Resumed, effects) == [Resumed(ResumeKind.RESUMED, (), 7)]
    assert d.state.counters.duplicates_dropped == 2  # 5 and 7, held already


def test_a_gap_that_stays_open_is_filled_by_resuming_from_before_it() -> None:
    d = Drive()
    d.settled_open(session_start(1), event("REQUEST_POLY_AGENT_JOIN", 2), joined(3))
    d.frame(event("POLY_AGENT_THINKING", 5))  # 4 is lost
    assert d.state.deadline == pytest.approx(d.t + 2.0)
    effects = d.wake()
    assert of(CloseSocket, effects) == [CloseSocket(1, 1000, "resuming to fill a gap")]
    effects = d(LinkClosed(1, 1000))
    assert of(OpenSocket, effects) == [OpenSocket(2, "sess-1", 3)]
    d.open(batch(event("POLY_AGENT_THINKING", 4), event("POLY_AGENT_THINKING", 5)))
    d.wake()
    assert d.state.conversation.gaps == ()


def test_a_late_event_closes_the_gap_before_any_resume() -> None:
    d = Drive()
    d.settled_open(session_start(1), event("REQUEST_POLY_AGENT_JOIN", 2), joined(3))
    d.frame(event("POLY_AGENT_THINKING", 5))
    d.frame(event("POLY_AGENT_THINKING", 4), at=d.t + 1.0)  # only out of order
    effects = d.wake(d.t + 10)
    assert not of(CloseSocket, effects)
    assert d.state.link is LinkStatus.OPEN


def test_a_hole_the_server_cannot_fill_is_asked_for_once() -> None:
    d = Drive()
    d.settled_open(session_start(1), event("REQUEST_POLY_AGENT_JOIN", 2), joined(3))
    d.frame(event("POLY_AGENT_THINKING", 5))  # the server never had a 4
    d.wake()
    d(LinkClosed(1, 1000))
    d.open(batch(event("POLY_AGENT_THINKING", 5)))
    d.wake()
    assert d.state.conversation.gaps == ((4, 4),)
    effects = d.wake(d.t + 30)
    assert not of(CloseSocket, effects), "no second attempt for the same hole"
    d(LinkClosed(2, 1006))
    effects = d.wake()
    assert of(OpenSocket, effects) == [OpenSocket(3, "sess-1", 5)]


# --- what the server sends that the client must survive ---------------------------------------


def test_a_dropped_array_element_is_reported_as_a_violation() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    bad = event(
        "POLY_AGENT_MESSAGE",
        5,
        {"message_id": "m5", "text": "Hi", "attachments": [1, {"title": "ok"}]},
    )
    effects = d.frame(bad)
    (violation,) = of(ProtocolViolation, effects)
    assert violation.error.path == "payload.attachments[0]"
    assert d.state.conversation.transcript[-1].text == "Hi"
    assert d.state.counters.protocol_violations == 1


def test_picking_a_suggestion_with_a_lone_surrogate_sends_replacement_text() -> None:
    d = Drive()
    offer = event(
        "POLY_AGENT_MESSAGE",
        5,
        {"message_id": "m5", "text": "?", "response_suggestions": [{"message_text": "ok\ud800"}]},
    )
    d.settled_open(*HISTORY, offer)
    effects = d(PickSuggestion(0, "p1"))
    (frame,) = sent(effects)
    assert frame["payload"] == {"text": "ok\ufffd"}
    with pytest.raises(LocalProtocolError, match="surrogate"):
        d(SendText("typed \ud800 by the app"))


# --- joining ------------------------------------------------------------------------------------


def test_a_failed_join_seen_only_in_the_replay_is_retried_after_the_reconnect() -> None:
    d = Drive()
    d.settled_open(session_start(1))  # a new session: the join goes out
    d(LinkClosed(1, 1006))  # ...and the link drops before its answer arrives
    d.wake()
    failed = event(
        "SYSTEM_MESSAGE",
        3,
        {"message": "Sorry, I'm unable to start a conversation right now. Please try again later.",
         "level": "SYSTEM_MESSAGE_LEVEL_ERROR"},
    )  # fmt: skip
    effects = d.open(batch(event("REQUEST_POLY_AGENT_JOIN", 2), failed)) + d.wake()
    assert sent_types(effects) == [JOIN]


def test_the_rejoin_budget_is_whole_again_once_the_agent_joined() -> None:
    d = Drive(max_join_retries=1)
    d.settled_open(*HISTORY)
    lost = event(
        "SYSTEM_MESSAGE", 5, {"message": "Error: Conversation not found",
                              "level": "SYSTEM_MESSAGE_LEVEL_ERROR"}
    )  # fmt: skip
    assert sent_types(d.frame(lost)) == [JOIN]
    d.frame(event("REQUEST_POLY_AGENT_JOIN", 6))
    d.frame(joined(7))  # a new episode with the agent
    again = {**lost, "id": "e8", "sequence": 8}
    assert sent_types(d.frame(again)) == [JOIN], "one retry per episode, not per session"
    d.frame(event("REQUEST_POLY_AGENT_JOIN", 9))
    once_more = {**lost, "id": "e10", "sequence": 10}
    assert JOIN not in sent_types(d.frame(once_more)), "this episode's budget is spent"


def test_a_join_answered_by_errors_alone_is_bounded() -> None:
    d = Drive(max_join_retries=2)
    d.settled_open(session_start(1))
    joins = 1
    for sequence in range(2, 10):
        error = event(
            "SYSTEM_MESSAGE", sequence, {"message": "Error: Conversation not found",
                                         "level": "SYSTEM_MESSAGE_LEVEL_ERROR"}
        )  # fmt: skip
        joins += sent_types(d.frame(error)).count(JOIN)
    assert joins == 3, "the first join and two retries"
