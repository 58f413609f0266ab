"""The central property: a session's history folds to one conversation, however it arrives.

Journals come from :func:`strategies.journals` (realistic, valid). Deliveries permute them, split
them into ``EVENT_BATCH`` frames (encoded to JSON and decoded again, sometimes in the Appendix B
inner form), and duplicate events. Every delivery must give the same projection (every fact
except the transient ones: indicators, notices, ``duplicates_dropped``), and that projection must
be what a correct client concludes from the journal (:class:`strategies.Expected`).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyai_messaging.core import Conversation, ServerEvent
from polyai_messaging.core import _reducer as reducer
from polyai_messaging.core import _wire as wire
from strategies import (
    ExpectedMessage,
    Journal,
    batch_frame,
    deliveries,
    dumps,
    examples,
    journals,
    project,
)

E = "EVENT_TYPE_"
SETTINGS = settings(
    max_examples=examples(50), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def decoded(frames: list[dict[str, Any]]) -> list[ServerEvent]:
    return [wire.decode_object(frame) for frame in frames]


def fold_text(frames: list[dict[str, Any]], start: Conversation | None = None) -> Conversation:
    """Fold frames the way a client receives them: as JSON text through ``wire.decode``."""
    conversation = start if start is not None else Conversation()
    for frame in frames:
        conversation = reducer.apply(conversation, wire.decode(dumps(frame)))
    return conversation


def expected_key(message: ExpectedMessage) -> str:
    """The key the documented scheme gives an expected message (see ``Message.key``)."""
    if message.role == "system":
        return "system-event:" + message.key.removeprefix("event:")
    if message.key.startswith("client:"):
        return message.key
    return f"{message.role}:{message.key}"


def canonical(journal: Journal) -> Conversation:
    return reducer.fold(decoded(journal.frames))


def facts(conversation: Conversation) -> dict[str, Any]:
    """Every order-independent fact: the shared projection and this module's own."""
    return {
        **project(conversation),
        "agent_present": conversation.agent_present,
        "live_agent_present": conversation.live_agent_present,
        "agent_left_reason": conversation.agent_left_reason,
        "live_agent_left_reason": conversation.live_agent_left_reason,
    }


def last_sequence(journal: Journal, kind: str) -> int:
    return max((f["sequence"] for f in journal.sequenced if f["type"] == E + kind), default=0)


REJOIN_TEXTS = {
    "Sorry, I'm unable to start a conversation right now. Please try again later.",
    "Error: Conversation not found",
    "Error: Conversation ID not found in session",
}


def join_needed(journal: Journal) -> bool:
    """Whether a correct client sends a join after this journal, arriving in its natural order."""
    cursor, joined, rejoin = 0, -1.0, -1.0
    for frame in journal.frames:
        sequence = frame.get("sequence")
        rank = cursor + 0.5 if sequence is None else sequence
        cursor = max(cursor, sequence or 0)
        kind, payload = frame["type"], frame.get("payload", {})
        if kind in (E + "POLY_AGENT_JOINED", E + "REQUEST_POLY_AGENT_JOIN"):
            joined = max(joined, rank)
        elif (
            kind == E + "SYSTEM_MESSAGE"
            and payload["level"] == "SYSTEM_MESSAGE_LEVEL_ERROR"
            and payload["message"] in REJOIN_TEXTS
        ):
            rejoin = max(rejoin, rank)
    return joined < 0 or rejoin > joined


def assert_same(expected: Conversation, actual: Conversation) -> None:
    left, right = facts(expected), facts(actual)
    for key in left:
        assert left[key] == right[key], key


@SETTINGS
@given(journals())
def test_natural_order_gives_what_a_correct_client_concludes(journal: Journal) -> None:
    conversation = canonical(journal)
    expected = journal.expected
    assert conversation.cursor == expected.cursor == len(journal.sequenced)
    assert conversation.gaps == ()
    assert conversation.phase is expected.phase
    assert conversation.events_applied == expected.known_events
    assert len(conversation.anomalies) == expected.anomalies
    assert conversation.language == expected.language
    assert conversation.end_reason == expected.end_reason
    assert conversation.agent_joined == (expected.agent_name is not None)
    assert conversation.join_needed is join_needed(journal)
    for who in ("POLY_AGENT", "LIVE_AGENT"):
        present = last_sequence(journal, who + "_JOINED") > last_sequence(journal, who + "_LEFT")
        name = "agent_present" if who == "POLY_AGENT" else "live_agent_present"
        assert getattr(conversation, name) is present
    assert (conversation.agent.name if conversation.agent else None) == expected.agent_name
    live = conversation.live_agent
    assert ((live.id, live.name, live.avatar_url) if live else None) == expected.live_agent
    queue = conversation.queue
    assert (queue.queue_name if queue else None) == expected.queue_name
    assert (queue.queue_position if queue else None) == expected.queue_position
    handoff = conversation.client_handoff
    assert (handoff.reason if handoff else None) == expected.client_handoff_reason
    assert conversation.capabilities is not None
    assert conversation.capabilities.streaming is expected.streaming
    got = [
        (
            m.role.value,
            m.key,
            m.sequence,
            m.text,
            m.complete,
            tuple(s.message_text for s in m.suggestions),
            tuple(a.content_url for a in m.attachments),
        )
        for m in conversation.transcript
    ]
    want = [
        (
            m.role,
            expected_key(m),
            m.sequence,
            m.text,
            m.complete,
            m.suggestions,
            m.attachment_urls,
        )
        for m in expected.messages
    ]
    assert got == want
    assert [m.key for m in conversation.streams] == [
        expected_key(m) for m in expected.messages if not m.complete
    ]
    for client_event_id in expected.client_event_ids:
        message = conversation.delivered(client_event_id)
        assert message is not None
        assert message.client_event_id == client_event_id


@SETTINGS
@given(st.data())
def test_any_permutation_batching_and_duplication_folds_to_the_same_conversation(
    data: st.DataObject,
) -> None:
    journal = data.draw(journals())
    frames = data.draw(deliveries(journal.frames))
    assert_same(canonical(journal), fold_text(frames))


@settings(max_examples=examples(80), deadline=None)
@given(st.data())
def test_any_permutation_of_decoded_events_folds_to_the_same_conversation(
    data: st.DataObject,
) -> None:
    journal = data.draw(journals(max_actions=5))
    events = decoded(journal.frames)
    shuffled = data.draw(st.permutations(events))
    assert_same(reducer.fold(events), reducer.fold(shuffled))


@SETTINGS
@given(st.data())
def test_reconnect_with_overlapping_replay(data: st.DataObject) -> None:
    """Live up to ``seen``, drop, then a replay from an older cursor, then the rest live."""
    journal = data.draw(journals())
    events = journal.sequenced
    seen = data.draw(st.integers(0, len(events)))
    cursor = data.draw(st.integers(0, seen))
    replay_end = data.draw(st.integers(seen, len(events)))
    first = [batch_frame(events[:1]), *events[1:seen]] if seen else []
    replayed = events[cursor:replay_end]
    replay = [batch_frame(replayed[i : i + 3]) for i in range(0, len(replayed), 3)]
    rest = events[replay_end:]
    conversation = fold_text([*first, *replay, *rest])
    assert_same(canonical(journal), conversation)
    assert conversation.duplicates_dropped == max(0, min(seen, replay_end) - cursor)


@SETTINGS
@given(st.data())
def test_folding_a_delivery_twice_changes_nothing(data: st.DataObject) -> None:
    journal = data.draw(journals())
    frames = data.draw(deliveries(journal.frames, duplicates=False))
    once = fold_text(frames)
    twice = fold_text(frames, once)
    assert_same(once, twice)
    assert twice.duplicates_dropped == once.duplicates_dropped + sum(
        1 for frame in journal.frames if frame.get("id") is not None
    )


@SETTINGS
@given(journals())
def test_transient_events_leave_the_history_alone(journal: Journal) -> None:
    with_transient = canonical(journal)
    without = reducer.fold(decoded(journal.sequenced))
    assert_same(without, with_transient)


@SETTINGS
@given(st.data())
def test_missing_events_are_gaps_until_they_arrive(data: st.DataObject) -> None:
    journal = data.draw(journals())
    events = journal.sequenced
    # SESSION_START is always there, and the last event fixes the cursor: hold back others.
    candidates = st.sets(st.integers(2, len(events) - 1), max_size=5)
    held_back = data.draw(candidates if len(events) >= 3 else st.just(set()))
    partial = fold_text([e for e in events if e["sequence"] not in held_back])
    missing = sorted(held_back)
    assert partial.cursor == len(events)
    assert [s for first, last in partial.gaps for s in range(first, last + 1)] == missing
    complete = fold_text([e for e in events if e["sequence"] in held_back], partial)
    assert complete.gaps == ()
    assert_same(canonical(journal), complete)


@SETTINGS
@given(st.data())
def test_deriving_a_conversation_never_changes_an_older_one(data: st.DataObject) -> None:
    """Every version keeps its facts while later ones are derived from it, forks included."""
    journal = data.draw(journals())
    events = [wire.decode(dumps(frame)) for frame in data.draw(deliveries(journal.frames))]
    versions = [Conversation()]
    for event in events:
        versions.append(reducer.apply(versions[-1], event))
    snapshots = [facts(version) for version in versions]
    fork = data.draw(st.integers(0, len(versions) - 1))
    forked = reducer.fold(events[fork:][::-1], versions[fork])
    assert_same(versions[-1], forked)
    for version, snapshot in zip(versions, snapshots, strict=True):
        assert facts(version) == snapshot


@SETTINGS
@given(st.data())
def test_folding_at_once_is_applying_one_by_one_and_leaves_the_start_as_it_was(
    data: st.DataObject,
) -> None:
    """``fold`` changes one copy in place (its records map included); what it returns is what
    applying the events one at a time returns, and the conversation it started from, which an
    application may still hold, is unchanged."""
    journal = data.draw(journals())
    frames = data.draw(deliveries(journal.frames))
    events = [wire.decode(dumps(frame)) for frame in frames]
    split = data.draw(st.integers(0, len(events)))
    start = reducer.fold(events[:split])
    before = (list(start.log), dict(start.records), start.transcript, start.marks)
    one_by_one = start
    for event in events[split:]:
        one_by_one = reducer.apply(one_by_one, event)
    at_once = reducer.fold(events[split:], start)
    assert at_once == one_by_one
    assert list(at_once.log) == list(one_by_one.log)
    assert at_once.transcript == one_by_one.transcript
    assert at_once.marks == one_by_one.marks
    assert (list(start.log), dict(start.records), start.transcript, start.marks) == before
