"""``reducer.apply``: ordering, de-duplication, cursor and gaps, streams, facts, echoes, phase."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from immutables import Map

from polyai_messaging.core import (
    END_CONVERSATION_REASON,
    RECENT_ID_MEMORY,
    Agent,
    Conversation,
    LiveAgent,
    MessageRecord,
    Phase,
    Role,
    ServerEvent,
    SystemHint,
    SystemMessagePayload,
    UnexpectedPhaseEvent,
    hint_for,
)
from polyai_messaging.core import _events as events_module
from polyai_messaging.core import _message_rules as message_rules
from polyai_messaging.core import _reducer as reducer
from polyai_messaging.core import _wire as wire
from strategies import CATALOGUE

E = "EVENT_TYPE_"


def ev(
    kind: str,
    sequence: int | None,
    payload: dict[str, Any] | None = None,
    *,
    event_id: str | None = "auto",
    custom: dict[str, str] | None = None,
    timestamp: str | None = None,
) -> ServerEvent:
    """A decoded server event, built through the real decoder."""
    frame: dict[str, Any] = {"type": E + kind, "sequence": sequence, "payload": payload or {}}
    if event_id == "auto":
        event_id = f"id-{sequence}" if sequence is not None else None
    if event_id is not None:
        frame["id"] = event_id
    if custom is not None:
        frame["metadata"] = {"custom": custom}
    if timestamp is not None:
        frame["timestamp"] = timestamp
    return wire.decode_object(frame)


def fold(*events: ServerEvent, start: Conversation | None = None) -> Conversation:
    return reducer.fold(events, start)


def chunk(
    sequence: int,
    index: int,
    text: str,
    *,
    message_id: str = "m1",
    final: bool = False,
    attachments: list[dict[str, str]] | None = None,
    suggestions: list[str] | None = None,
    event_id: str = "auto",
) -> ServerEvent:
    return ev(
        "POLY_AGENT_MESSAGE_CHUNK",
        sequence,
        {
            "message_id": message_id,
            "text": text,
            "chunk_index": index,
            "is_complete": final,
            "attachments": attachments or [],
            "response_suggestions": [{"message_text": s} for s in suggestions or []],
        },
        event_id=event_id,
    )


def agent_message(sequence: int, message_id: str, text: str, **extra: Any) -> ServerEvent:
    return ev("POLY_AGENT_MESSAGE", sequence, {"message_id": message_id, "text": text, **extra})


def user_echo(
    sequence: int, text: str, message_id: str, custom: dict[str, str] | None = None
) -> ServerEvent:
    return ev("USER_MESSAGE", sequence, {"text": text, "message_id": message_id}, custom=custom)


A1 = {"title": "Our Locations", "content_url": "https://example.com/locations"}
A2 = {"title": "Menu", "content_url": "https://example.com/menu"}


# --- ordering, batches, de-duplication ------------------------------------------------------


def test_transcript_is_ordered_by_sequence_whatever_the_arrival() -> None:
    events = [
        agent_message(2, "a", "first"),
        user_echo(3, "second", "u1"),
        agent_message(4, "b", "third"),
    ]
    for arrival in (events, events[::-1], [events[1], events[2], events[0]]):
        conversation = fold(*arrival)
        assert [m.text for m in conversation.transcript] == ["first", "second", "third"]
        assert [m.sequence for m in conversation.transcript] == [2, 3, 4]
        assert [m.role for m in conversation.transcript] == [Role.AGENT, Role.USER, Role.AGENT]


def test_batches_are_flattened_and_their_own_envelope_ignored() -> None:
    batch = wire.decode_object(
        {
            "type": E + "EVENT_BATCH",
            "id": "batch-1",
            "sequence": 99,
            "payload": {
                "events": [
                    {"id": "a", "sequence": 1, "type": E + "SESSION_START", "payload": {}},
                    {"id": "b", "sequence": 2, "type": E + "LANGUAGE_CHANGED", "payload": 7},
                    {
                        "id": "c",
                        "sequence": 3,
                        "type": E + "LANGUAGE_CHANGED",
                        "payload": {"language_code": "fr-FR"},
                    },
                ]
            },
        }
    )
    conversation = reducer.apply(Conversation(), batch)
    assert conversation.cursor == 3
    assert sorted(conversation.journal.keys()) == [1, 3]
    assert conversation.gaps == ((2, 2),)
    assert conversation.language == "fr-FR"
    assert conversation.events_applied == 2
    assert conversation.protocol_errors == ("payload.events[1].payload: expected object",)


def test_duplicate_ids_are_dropped() -> None:
    message = agent_message(2, "a", "hello")
    conversation = fold(message, message, message)
    assert len(conversation.transcript) == 1
    assert conversation.events_applied == 1
    assert conversation.duplicates_dropped == 2
    assert conversation.protocol_errors == ()


def test_same_id_at_another_sequence_is_a_duplicate() -> None:
    first = agent_message(2, "a", "hello")
    moved = ev("POLY_AGENT_MESSAGE", 5, {"message_id": "b", "text": "x"}, event_id="id-2")
    conversation = fold(first, moved)
    assert [m.text for m in conversation.transcript] == ["hello"]
    assert conversation.cursor == 2
    assert conversation.duplicates_dropped == 1


def test_the_first_copy_of_a_sequence_wins() -> None:
    # Another id at a known sequence means the server's history diverged: the session driver
    # detects that on replay (test_session: reset). The reducer keeps what it has.
    first = agent_message(2, "a", "hello")
    clash = ev("POLY_AGENT_MESSAGE", 2, {"message_id": "b", "text": "x"}, event_id="other")
    conversation = fold(first, clash)
    assert [m.text for m in conversation.transcript] == ["hello"]
    assert conversation.duplicates_dropped == 1
    assert [e.id for e in conversation.log] == ["id-2"]


def test_transient_duplicates_are_dropped_with_bounded_memory() -> None:
    def typing(n: int) -> ServerEvent:
        return ev("LIVE_AGENT_TYPING", None, {"state": "TYPING_STATE_STARTED"}, event_id=f"t{n}")

    conversation = fold(typing(0), typing(0))
    assert conversation.duplicates_dropped == 1
    for n in range(1, 3 * RECENT_ID_MEMORY):
        conversation = reducer.apply(conversation, typing(n))
    remembered = len(conversation.recent_ids) + len(conversation.older_ids)
    assert remembered <= 2 * RECENT_ID_MEMORY
    # the most recent ids are still known ...
    assert reducer.apply(conversation, typing(3 * RECENT_ID_MEMORY - 1)).duplicates_dropped == 2
    # ... the oldest are forgotten (bounded memory), so a very late copy is applied again
    assert reducer.apply(conversation, typing(0)).duplicates_dropped == 1
    # transient events never move the cursor or count as history
    assert (conversation.cursor, conversation.events_applied) == (0, 0)


def test_transient_events_without_id_are_never_deduplicated() -> None:
    heartbeat = wire.decode('{"type":"EVENT_TYPE_HEARTBEAT"}')
    conversation = fold(heartbeat, heartbeat)
    assert conversation.duplicates_dropped == 0
    assert (conversation.cursor, conversation.events_applied, conversation.gaps) == (0, 0, ())


# --- cursor and gaps -----------------------------------------------------------------------


def test_cursor_includes_unknown_types() -> None:
    unknown = wire.decode_object(
        {"type": "EVENT_TYPE_SESSION_IDLE_WARNING", "id": "u", "sequence": 7, "payload": {}}
    )
    conversation = fold(ev("SESSION_START", 1), unknown)
    assert conversation.cursor == 7
    assert conversation.events_applied == 1  # known types only
    assert conversation.timeline[-1] == unknown
    assert conversation.gaps == ((2, 6),)


def test_gaps_open_and_close() -> None:
    conversation = fold(ev("SESSION_START", 1), ev("POLY_AGENT_THINKING", 4))
    assert conversation.gaps == ((2, 3),)
    conversation = fold(ev("POLY_AGENT_THINKING", 8), start=conversation)
    assert conversation.gaps == ((2, 3), (5, 7))
    conversation = fold(ev("POLY_AGENT_THINKING", 6), start=conversation)
    assert conversation.gaps == ((2, 3), (5, 5), (7, 7))
    conversation = fold(*(ev("POLY_AGENT_THINKING", s) for s in (2, 3, 5, 7)), start=conversation)
    assert conversation.gaps == ()
    assert conversation.cursor == 8


def test_a_first_event_above_one_leaves_a_gap_from_one() -> None:
    assert fold(ev("POLY_AGENT_THINKING", 3)).gaps == ((1, 2),)


# --- streams -------------------------------------------------------------------------------


def worked_example() -> list[ServerEvent]:
    """The documented worked example of a streamed reply."""
    return [
        chunk(5, 1, "Hello ", attachments=[A1], suggestions=["S1"]),
        chunk(6, 2, "there, "),
        chunk(7, 3, "how can I help?", final=True),
    ]


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0), (2, 0, 1)])
def test_chunks_concatenate_without_separator_in_chunk_index_order(
    order: tuple[int, int, int],
) -> None:
    events = worked_example()
    conversation = fold(*(events[i] for i in order))
    (message,) = conversation.transcript
    assert message.text == "Hello there, how can I help?"
    assert [a.title for a in message.attachments] == ["Our Locations"]
    assert [s.message_text for s in message.suggestions] == ["S1"]
    assert message.complete
    assert message.message_id == "m1"
    assert message.sequence == 5
    assert conversation.streams == ()


def test_attachments_and_suggestions_are_appended_never_replaced() -> None:
    conversation = fold(
        chunk(1, 1, "a", attachments=[A1], suggestions=["one"]),
        chunk(2, 2, "b", suggestions=["two"]),
        chunk(3, 3, "", final=True, attachments=[A2], suggestions=["three"]),
    )
    (message,) = conversation.transcript
    assert message.text == "ab"  # the final chunk may have empty text
    assert [a.content_url for a in message.attachments] == [A1["content_url"], A2["content_url"]]
    assert [s.message_text for s in message.suggestions] == ["one", "two", "three"]
    assert [s.message_text for s in conversation.suggestions] == ["one", "two", "three"]


def test_a_stream_is_complete_only_with_its_final_chunk_and_every_earlier_one() -> None:
    first, second, last = worked_example()
    conversation = fold(first, last)
    (message,) = conversation.transcript
    assert not message.complete
    assert message.text == "Hello "  # only the contiguous prefix is shown
    assert [s.message_id for s in conversation.streams] == ["m1"]
    assert conversation.streams[0].text == "Hello "
    conversation = fold(second, start=conversation)
    assert conversation.transcript[0].complete
    assert conversation.transcript[0].text == "Hello there, how can I help?"
    assert conversation.streams == ()


def test_a_stream_without_its_first_chunk_shows_nothing_yet() -> None:
    conversation = fold(chunk(6, 2, "there"), chunk(7, 3, "!", final=True))
    (stream,) = conversation.streams
    assert (stream.text, stream.complete, stream.sequence) == ("", False, 6)


def test_a_stream_without_final_chunk_stays_partial() -> None:
    conversation = fold(chunk(1, 1, "Hel"), chunk(2, 2, "lo"))
    (stream,) = conversation.streams
    assert (stream.text, stream.complete) == ("Hello", False)
    assert conversation.transcript == conversation.streams


def test_concurrent_streams() -> None:
    conversation = fold(
        chunk(3, 1, "Hi ", message_id="x"),
        chunk(4, 1, "Your ", message_id="y"),
        chunk(5, 2, "there", message_id="x", final=True),
        chunk(6, 2, "order", message_id="y"),
        chunk(7, 3, " is late", message_id="y", final=True),
    )
    assert [(m.message_id, m.text, m.complete) for m in conversation.transcript] == [
        ("x", "Hi there", True),
        ("y", "Your order is late", True),
    ]


def test_duplicate_chunks_are_ignored() -> None:
    events = worked_example()
    # the same event twice, and the same chunk replayed under a new id and
    # sequence (the server may do either)
    replayed = chunk(9, 2, "there, ", event_id="replay-2")
    conversation = fold(events[0], events[1], events[1], replayed, events[2])
    (message,) = conversation.transcript
    assert message.text == "Hello there, how can I help?"
    assert conversation.duplicates_dropped == 1


def test_consolidated_message_with_the_same_message_id_is_one_message() -> None:
    consolidated = agent_message(
        8,
        "m1",
        "Hello there, how can I help?",
        attachments=[A1],
        response_suggestions=[{"message_text": "S1"}],
    )
    for events in ([*worked_example(), consolidated], [consolidated, *worked_example()[::-1]]):
        conversation = fold(*events)
        (message,) = conversation.transcript
        assert message.text == "Hello there, how can I help?"
        assert message.sequence == 5
        assert message.complete


def test_consolidated_message_completes_a_partial_stream() -> None:
    conversation = fold(chunk(5, 1, "Hello "), agent_message(9, "m1", "Hello world"))
    (message,) = conversation.transcript
    assert (message.text, message.complete, message.sequence) == ("Hello world", True, 5)
    assert conversation.streams == ()


# --- agents, indicators, suggestions --------------------------------------------------------


def test_agent_info_is_latest_by_sequence() -> None:
    first = ev("POLY_AGENT_JOINED", 3, {"agent_name": "Ada", "agent_avatar_url": "https://a"})
    second = ev("POLY_AGENT_JOINED", 9, {"agent_name": "Grace", "avatar_url": "https://g"})
    for order in ((first, second), (second, first)):
        conversation = fold(*order)
        assert conversation.agent == Agent(name="Grace", avatar_url="https://g")
        assert conversation.agent_joined
    assert not Conversation().agent_joined
    assert Conversation().agent is None


def test_live_agent_info_nested_and_flat() -> None:
    nested = ev("LIVE_AGENT_JOINED", 4, {"agent": {"id": "a42", "name": "Sarah"}})
    flat = ev("LIVE_AGENT_JOINED", 7, {"agent_id": "a7", "agent_name": "Tom", "avatar_url": "u"})
    assert fold(nested).live_agent == LiveAgent("a42", "Sarah", None)
    assert fold(flat, nested).live_agent == LiveAgent("a7", "Tom", "u")


def test_live_agent_message_is_a_live_agent_entry() -> None:
    conversation = fold(
        ev("LIVE_AGENT_MESSAGE", 4, {"message_id": "l1", "agent_id": "a42", "text": "Hi!"})
    )
    (message,) = conversation.transcript
    assert (message.role, message.agent_id, message.text) == (Role.LIVE_AGENT, "a42", "Hi!")


def test_thinking_is_cleared_by_the_agent_message_or_first_chunk() -> None:
    conversation = fold(ev("POLY_AGENT_THINKING", 3))
    assert conversation.agent_thinking
    conversation = fold(chunk(4, 1, "Hel"), start=conversation)
    assert not conversation.agent_thinking
    conversation = fold(ev("POLY_AGENT_THINKING", 6), start=conversation)
    assert conversation.agent_thinking
    conversation = fold(agent_message(7, "m2", "done"), start=conversation)
    assert not conversation.agent_thinking
    # a replayed, older THINKING does not switch the indicator back on
    conversation = fold(ev("POLY_AGENT_THINKING", 2), start=conversation)
    assert not conversation.agent_thinking


def test_live_typing_is_cleared_by_stopped_or_a_live_message() -> None:
    def typing(n: int, state: str) -> ServerEvent:
        return ev("LIVE_AGENT_TYPING", None, {"state": state, "agent_id": "a"}, event_id=f"t{n}")

    conversation = fold(ev("LIVE_AGENT_JOINED", 3), typing(1, "TYPING_STATE_STARTED"))
    assert conversation.live_agent_typing
    conversation = fold(typing(2, "TYPING_STATE_STOPPED"), start=conversation)
    assert not conversation.live_agent_typing
    conversation = fold(typing(3, "TYPING_STATE_STARTED"), start=conversation)
    assert conversation.live_agent_typing
    conversation = fold(
        ev("LIVE_AGENT_MESSAGE", 4, {"message_id": "l1", "text": "Hi"}), start=conversation
    )
    assert not conversation.live_agent_typing
    assert conversation.without_indicators() == conversation.without_indicators()


def test_without_indicators_clears_both() -> None:
    conversation = fold(
        ev("POLY_AGENT_THINKING", 3),
        ev("LIVE_AGENT_TYPING", None, {"state": "TYPING_STATE_STARTED"}, event_id="t"),
    )
    assert conversation.agent_thinking
    assert conversation.live_agent_typing
    cleared = conversation.without_indicators()
    assert not cleared.agent_thinking
    assert not cleared.live_agent_typing
    assert cleared.cursor == conversation.cursor


def test_suggestions_come_from_the_last_message_if_an_agent_sent_it() -> None:
    with_suggestions = agent_message(
        2, "a", "Pick one", response_suggestions=[{"message_text": "Yes"}, {"message_text": "No"}]
    )
    conversation = fold(with_suggestions)
    assert [s.message_text for s in conversation.suggestions] == ["Yes", "No"]
    assert fold(with_suggestions, user_echo(3, "Yes", "u1")).suggestions == ()
    assert fold(with_suggestions, agent_message(4, "b", "ok")).suggestions == ()


# --- latest-by-sequence facts ---------------------------------------------------------------


def test_queue_and_language_are_latest_by_sequence() -> None:
    events = [
        ev("HANDOFF_QUEUE_STATUS", 5, {"queue_name": "General", "position_in_queue": 3}),
        ev("HANDOFF_QUEUE_STATUS", 8, {"queue_name": "General", "position": 1}),
        ev("LANGUAGE_CHANGED", 6, {"language_code": "fr-FR"}),
        ev("LANGUAGE_CHANGED", 4, {"language_code": "de-DE"}),
    ]
    for arrival in (events, events[::-1]):
        conversation = fold(*arrival)
        assert conversation.queue is not None
        assert conversation.queue.queue_position == 1
        assert conversation.language == "fr-FR"
    # the same language replayed is idempotent
    assert fold(*events, events[2]).language == "fr-FR"


def test_capabilities_from_session_start() -> None:
    conversation = fold(
        ev(
            "SESSION_START",
            1,
            {"capabilities": {"streaming": True, "heartbeat_interval_seconds": 15, "x": 1}},
        )
    )
    assert conversation.capabilities is not None
    assert conversation.capabilities.streaming is True
    assert conversation.capabilities.heartbeat_interval_seconds == 15
    assert dict(conversation.capabilities.extra) == {"x": 1}
    assert Conversation().capabilities is None


def test_client_handoff() -> None:
    conversation = fold(
        ev("POLY_AGENT_JOINED", 2),
        ev("POLY_AGENT_TRIGGERED_HANDOFF", 3),
        ev("CLIENT_HANDOFF_REQUIRED", 4, {"reason": "POLICY", "queue_name": "Phone", "route": "r"}),
        ev("POLY_AGENT_LEFT", 5),
    )
    assert conversation.client_handoff is not None
    assert (conversation.client_handoff.reason, conversation.client_handoff.queue_name) == (
        "POLICY",
        "Phone",
    )
    assert conversation.phase is Phase.HANDOFF
    assert conversation.anomalies == ()


@pytest.mark.parametrize(
    "reason", ["REASON_USER_END", "REASON_USER_ABANDONED", "REASON_NATURAL_END", "REASON_NEW"]
)
def test_end_reason(reason: str) -> None:
    conversation = fold(ev("POLY_AGENT_JOINED", 2), ev("SESSION_END", 3, {"reason": reason}))
    assert conversation.end_reason == reason
    assert conversation.phase is Phase.ENDED
    assert conversation.ended


def test_session_end_without_reason() -> None:
    conversation = fold(ev("SESSION_END", 3))
    assert (conversation.phase, conversation.end_reason) == (Phase.ENDED, None)


# --- system messages -----------------------------------------------------------------------

HINTS = {
    "Unknown event type or invalid message format": SystemHint.INVALID_CLIENT_EVENT,
    "Event type not allowed: EVENT_TYPE_POLY_AGENT_MESSAGE": SystemHint.INVALID_CLIENT_EVENT,
    "Our system is experiencing high load. Please try again in a moment.": SystemHint.RETRY_LATER,
    "Sorry, I'm unable to start a conversation right now. Please try again later.": (
        SystemHint.REJOIN
    ),
    "Sorry, I'm having trouble responding right now. Please try again.": SystemHint.RESEND,
    "Sorry, I encountered an error. Please try again.": SystemHint.RESEND,
    "Error: Session not found": SystemHint.START_NEW_SESSION,
    "Error: Unable to retrieve session": SystemHint.RETRY_LATER,
    "Error: Connector not found": SystemHint.CONFIGURATION,
    "Error: Conversation not found": SystemHint.REJOIN,
    "Error: Conversation ID not found in session": SystemHint.REJOIN,
    "Sorry, we could not connect you to an agent. Please try again.": SystemHint.RETRY_LATER,
    "Failed to forward message to live agent": SystemHint.RESEND,
    "Sorry, handoff could not be initiated.": SystemHint.CONFIGURATION,
}


def test_the_hint_table_covers_the_catalogue() -> None:
    assert set(HINTS) == set(CATALOGUE)


@pytest.mark.parametrize(("text", "hint"), sorted(HINTS.items()))
@pytest.mark.parametrize(
    "level", ["SYSTEM_MESSAGE_LEVEL_ERROR", "SYSTEM_MESSAGE_LEVEL_WARNING", None]
)
def test_system_messages_have_level_and_hint(
    text: str, hint: SystemHint, level: str | None
) -> None:
    payload = {"message": text} if level is None else {"message": text, "level": level}
    expected_level = level or "SYSTEM_MESSAGE_LEVEL_ERROR"  # a missing level reads as ERROR
    assert hint_for(text) is hint
    assert hint_for(text.upper()) is hint
    # journaled: a transcript entry
    (message,) = fold(ev("SYSTEM_MESSAGE", 4, payload)).transcript
    assert (message.role, message.text, message.level, message.hint) == (
        Role.SYSTEM,
        text,
        expected_level,
        hint,
    )
    # transient: a notice
    conversation = fold(ev("SYSTEM_MESSAGE", None, payload, event_id="n1"))
    assert conversation.transcript == ()
    (notice,) = conversation.notices
    assert (notice.level, notice.message, notice.hint) == (expected_level, text, hint)


def _variants(text: str) -> list[str]:
    """``text`` with and without the ``Error: `` prefix, in several cases."""
    bare = text.removeprefix("Error: ")
    forms = [bare, "Error: " + bare, "error: " + bare, "ERROR - " + bare]
    return [case(form) for form in forms for case in (str, str.lower, str.upper, str.swapcase)]


@pytest.mark.parametrize(("text", "hint"), sorted(HINTS.items()))
def test_hints_match_substrings_in_any_case_with_or_without_prefix(
    text: str, hint: SystemHint
) -> None:
    for variant in _variants(text):
        assert hint_for(variant) is hint, variant
        assert hint_for(f"[gateway] {variant} (request 42)") is hint, variant


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("Conversation not found", SystemHint.REJOIN),
        ("conversation id not found for this session", SystemHint.REJOIN),
        ("UNABLE TO START A CONVERSATION", SystemHint.REJOIN),
        ("Session not found", SystemHint.START_NEW_SESSION),
        ("session not found: abc", SystemHint.START_NEW_SESSION),
        ("Connector not found", SystemHint.CONFIGURATION),
        ("Unable to retrieve session", SystemHint.RETRY_LATER),
    ],
)
def test_hints_for_the_vendor_sdk_phrasings(text: str, hint: SystemHint) -> None:
    assert hint_for(text) is hint


@pytest.mark.parametrize(
    "level",
    ["SYSTEM_MESSAGE_LEVEL_ERROR", "system_message_level_error", "System_Message_Level_Error"],
)
def test_the_error_level_is_read_in_any_case(level: str) -> None:
    assert SystemMessagePayload(message="x", level=level).is_error
    error = ev("SYSTEM_MESSAGE", 6, {"level": level, "message": "Our system is busy."})
    assert not fold(ev("POLY_AGENT_THINKING", 5), error).agent_thinking


def test_other_levels_are_not_errors() -> None:
    for level in ("SYSTEM_MESSAGE_LEVEL_WARNING", "system_message_level_info", "ERROR", ""):
        assert not SystemMessagePayload(message="x", level=level).is_error


def test_other_system_texts_have_no_hint() -> None:
    assert hint_for("Welcome back!") is SystemHint.NONE
    assert hint_for("Message too large") is SystemHint.INVALID_CLIENT_EVENT


def test_notices_keep_arrival_order() -> None:
    texts = ["first", "second", "third"]
    conversation = fold(
        *(
            ev("SYSTEM_MESSAGE", None, {"message": t, "level": "SYSTEM_MESSAGE_LEVEL_INFO"},
               event_id=f"n{i}")
            for i, t in enumerate(texts)
        )
    )  # fmt: skip
    assert [n.message for n in conversation.notices] == texts


# --- echoes --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["client_event_id", "local_id"])
def test_echo_matching_by_correlation_key(key: str) -> None:
    conversation = fold(user_echo(6, "Hello, I need some help.", "srv-1", {key: "5b0f"}))
    message = conversation.delivered("5b0f")
    assert message is not None
    assert (message.text, message.client_event_id, message.message_id, message.role) == (
        "Hello, I need some help.",
        "5b0f",
        "srv-1",
        Role.USER,
    )
    assert conversation.delivered("other") is None


def test_resends_with_the_same_client_event_id_are_shown_once() -> None:
    copies = [
        user_echo(6, "Book a table", "srv-1", {"client_event_id": "c1"}),
        user_echo(9, "Book a table", "srv-2", {"client_event_id": "c1"}),
        user_echo(12, "Book a table", "srv-3", {"client_event_id": "c1"}),
    ]
    for arrival in (copies, copies[::-1]):
        conversation = fold(*arrival)
        (message,) = conversation.transcript
        assert (message.sequence, message.message_id) == (6, "srv-1")
        assert conversation.delivered("c1") == message
        assert conversation.events_applied == 3


def test_echoes_are_read_from_the_records_and_an_echo_updates_one_map() -> None:
    """``echoes`` is built from the records' keys when read; folding an echo changes the
    records map (its message) and no other map of the conversation."""
    before = fold(
        user_echo(3, "hi", "srv-0"),
        user_echo(4, "server id", "client:c0"),  # a server message_id that looks like a key
        agent_message(5, "client:c9", "agent"),
    )
    assert dict(before.echoes) == {}
    after = reducer.apply(before, user_echo(6, "Book", "srv-1", {"client_event_id": "c1"}))
    assert dict(after.echoes) == {"c1": "client:c1"}
    record = after.record("client:c1")
    assert record is not None
    assert after.delivered("c1") == record.view()
    assert after.delivered("c0") is None
    assert after.delivered("c9") is None
    maps = [name for name, value in before.__dict__.items() if isinstance(value, Map)]
    changed = [name for name in maps if after.__dict__[name] is not before.__dict__[name]]
    assert changed == ["records"]


def test_echoes_without_correlation_are_separate_messages() -> None:
    conversation = fold(user_echo(3, "hi", "srv-1"), user_echo(4, "hi", "srv-2"))
    assert [m.message_id for m in conversation.transcript] == ["srv-1", "srv-2"]
    assert len({m.key for m in conversation.transcript}) == 2


def test_other_echoes_do_not_enter_the_transcript() -> None:
    conversation = fold(
        ev("REQUEST_POLY_AGENT_JOIN", 2, custom={"client_event_id": "j"}),
        ev("USER_END_SESSION", 3),
        wire.decode('{"type":"EVENT_TYPE_HEARTBEAT"}'),
    )
    assert conversation.transcript == ()
    assert conversation.delivered("j") is None
    assert conversation.cursor == 3


# --- phases --------------------------------------------------------------------------------


def test_a_full_server_managed_handoff() -> None:
    steps = [
        (ev("SESSION_START", 1), Phase.CONNECTING),
        (ev("POLY_AGENT_JOINED", 2, {"agent_name": "Ada"}), Phase.ACTIVE),
        (ev("POLY_AGENT_TRIGGERED_HANDOFF", 3), Phase.HANDOFF),
        (ev("POLY_AGENT_LEFT", 4), Phase.HANDOFF),
        (ev("HANDOFF_ACCEPTED", 5), Phase.QUEUED),
        (ev("HANDOFF_QUEUE_STATUS", 6, {"position_in_queue": 2}), Phase.QUEUED),
        (ev("LIVE_AGENT_JOINED", 7, {"agent": {"name": "Sarah"}}), Phase.ACTIVE),
        (ev("LIVE_AGENT_LEFT", 8), Phase.ACTIVE),
        (ev("SESSION_END", 9, {"reason": "REASON_NATURAL_END"}), Phase.ENDED),
    ]
    conversation = Conversation()
    for event, phase in steps:
        conversation = reducer.apply(conversation, event)
        assert conversation.phase is phase
    assert conversation.anomalies == ()


@pytest.mark.parametrize("failure", ["HANDOFF_FAILED", "HANDOFF_TIMEOUT"])
def test_a_failed_handoff_returns_to_active(failure: str) -> None:
    conversation = fold(
        ev("POLY_AGENT_JOINED", 2),
        ev("POLY_AGENT_TRIGGERED_HANDOFF", 3),
        ev("HANDOFF_ACCEPTED", 4),
        ev("HANDOFF_QUEUE_STATUS", 5),
        ev(failure, 6),
    )
    assert conversation.phase is Phase.ACTIVE
    assert not conversation.ended


def test_unexpected_phase_events_are_applied_and_reported() -> None:
    conversation = fold(
        ev("POLY_AGENT_JOINED", 2),
        ev("HANDOFF_ACCEPTED", 3),  # without TRIGGERED_HANDOFF
        ev("LIVE_AGENT_JOINED", 4, {"agent": {"name": "Sarah"}}),
    )
    assert conversation.phase is Phase.ACTIVE
    assert conversation.live_agent == LiveAgent(None, "Sarah", None)
    assert conversation.anomalies == (
        UnexpectedPhaseEvent(3, E + "HANDOFF_ACCEPTED", Phase.ACTIVE),
    )


def test_phase_is_decided_by_the_highest_sequence() -> None:
    late = ev("POLY_AGENT_JOINED", 2)
    conversation = fold(ev("POLY_AGENT_TRIGGERED_HANDOFF", 10), ev("HANDOFF_ACCEPTED", 11), late)
    assert conversation.phase is Phase.QUEUED
    # anomalies are judged in sequence order: TRIGGERED at 10 came after JOINED at 2
    assert conversation.anomalies == ()
    assert fold(late, ev("POLY_AGENT_TRIGGERED_HANDOFF", 10)).phase is Phase.HANDOFF


def test_session_end_is_absorbing_whatever_arrives_later() -> None:
    ended = fold(ev("POLY_AGENT_JOINED", 2), ev("SESSION_END", 5))
    later = fold(
        ev("LIVE_AGENT_JOINED", 6), ev("LANGUAGE_CHANGED", 7, {"language_code": "x"}), start=ended
    )
    assert later.phase is Phase.ENDED
    assert later.language == "x"  # facts still apply
    assert later.cursor == 7
    assert [(a.trigger, a.phase) for a in later.anomalies] == [
        (E + "LIVE_AGENT_JOINED", Phase.ENDED)
    ]


def test_apply_is_pure() -> None:
    before = fold(ev("SESSION_START", 1))
    snapshot = (before.cursor, before.journal, before.records, before.phase)
    after = reducer.apply(before, agent_message(2, "a", "hello"))
    assert (before.cursor, before.journal, before.records, before.phase) == snapshot
    assert after.cursor == 2
    assert before.transcript == ()


def test_summary() -> None:
    conversation = fold(ev("SESSION_START", 1), agent_message(3, "a", "hi"))
    assert conversation.summary() == {
        "phase": "connecting",
        "cursor": 3,
        "gaps": 1,
        "events": 2,
        "messages": 1,
    }


def test_message_timestamp_is_that_of_the_event_that_places_it() -> None:
    late = chunk(5, 1, "a")  # no timestamp (replayed events may lack it)
    early = ev(
        "POLY_AGENT_MESSAGE_CHUNK",
        6,
        {"message_id": "m1", "text": "b", "chunk_index": 2},
        timestamp="2024-02-12T12:00:06Z",
    )
    assert fold(early, late).transcript[0].timestamp is None
    assert fold(late, early).transcript[0].timestamp is None


def test_recent_id_under_another_sequence_is_a_duplicate() -> None:
    first = ev("LANGUAGE_CHANGED", 3, {"language_code": "fr-FR"}, event_id="same")
    resent = ev("LANGUAGE_CHANGED", 7, {"language_code": "de-DE"}, event_id="same")
    conversation = fold(first, resent)
    assert conversation.duplicates_dropped == 1
    assert (conversation.language, conversation.cursor) == ("fr-FR", 3)


def test_sequenced_duplicates_are_dropped_however_old() -> None:
    def language(n: int) -> ServerEvent:
        return ev("LANGUAGE_CHANGED", n, {"language_code": f"x-{n}"}, event_id=f"e{n}")

    conversation = fold(*(language(n) for n in range(1, 4 * RECENT_ID_MEMORY)))
    assert conversation.duplicates_dropped == 0
    replayed = reducer.apply(conversation, language(1))  # its id is long forgotten
    assert replayed.duplicates_dropped == 1
    assert replayed.events_applied == conversation.events_applied


@pytest.mark.parametrize("sequence", [6, None])
def test_agent_error_ends_thinking(sequence: int | None) -> None:
    thinking = ev("POLY_AGENT_THINKING", 5)
    error = ev(
        "SYSTEM_MESSAGE",
        sequence,
        {"level": "SYSTEM_MESSAGE_LEVEL_ERROR", "message": "Our system is experiencing high load."},
        event_id="err",
    )
    assert fold(thinking).agent_thinking
    assert not fold(thinking, error).agent_thinking


def test_info_notice_does_not_end_thinking() -> None:
    info = ev("SYSTEM_MESSAGE", 6, {"level": "SYSTEM_MESSAGE_LEVEL_INFO", "message": "FYI"})
    assert fold(ev("POLY_AGENT_THINKING", 5), info).agent_thinking


def test_stream_cut_by_an_error_is_interrupted_in_any_order() -> None:
    first = ev("POLY_AGENT_MESSAGE_CHUNK", 3, {"message_id": "m", "text": "Hel", "chunk_index": 1})
    error = ev(
        "SYSTEM_MESSAGE",
        4,
        {"level": "SYSTEM_MESSAGE_LEVEL_ERROR", "message": "Sorry, I encountered an error."},
    )
    for order in ((first, error), (error, first)):
        conversation = fold(*order)
        (stream,) = conversation.streams
        assert (stream.text, stream.complete, stream.interrupted) == ("Hel", False, True)
        assert conversation.streaming == ()
    (still,) = fold(first).streaming
    assert not still.interrupted


# --- empty ids -----------------------------------------------------------------------------


def test_an_empty_event_id_is_no_id() -> None:
    """``id: ""`` names nothing: two such events are two events, and the cursor moves on."""
    first = ev("LANGUAGE_CHANGED", 1, {"language_code": "fr-FR"}, event_id="")
    second = ev("LANGUAGE_CHANGED", 2, {"language_code": "de-DE"}, event_id="")
    conversation = fold(first, second)
    assert (conversation.cursor, conversation.events_applied) == (2, 2)
    assert conversation.duplicates_dropped == 0
    assert conversation.language == "de-DE"
    # a sequenced copy is still dropped, by its sequence
    assert fold(second, start=conversation).duplicates_dropped == 1


def test_empty_id_transient_events_are_not_deduplicated() -> None:
    typing = ev("LIVE_AGENT_TYPING", None, {"state": "TYPING_STATE_STARTED"}, event_id="")
    assert fold(typing, typing).duplicates_dropped == 0
    heartbeat = ev("HEARTBEAT", None, event_id="")
    empty = Conversation()
    assert reducer.apply(empty, heartbeat) is empty  # nothing to remember


def test_messages_from_events_with_empty_ids_are_kept_apart() -> None:
    errors = [
        ev("SYSTEM_MESSAGE", sequence, {"message": text}, event_id="")
        for sequence, text in ((3, "Error: Session not found"), (4, "Failed to forward"))
    ]
    echoes = [ev("USER_MESSAGE", sequence, {"text": "hi"}, event_id="") for sequence in (5, 6)]
    for order in ((*errors, *echoes), (*echoes[::-1], *errors[::-1])):
        conversation = fold(*order)
        assert [m.sequence for m in conversation.transcript] == [3, 4, 5, 6]
        assert len({m.key for m in conversation.transcript}) == 4


# --- message keys --------------------------------------------------------------------------


def live_message(sequence: int, message_id: str, text: str) -> ServerEvent:
    return ev("LIVE_AGENT_MESSAGE", sequence, {"message_id": message_id, "text": text})


def system_message(sequence: int, event_id: str, text: str = "Failed to forward") -> ServerEvent:
    return ev("SYSTEM_MESSAGE", sequence, {"message": text}, event_id=event_id)


@pytest.mark.parametrize(
    "pair",
    [
        (agent_message(3, "m", "agent"), live_message(4, "m", "live")),
        (agent_message(3, "m", "agent"), user_echo(4, "user", "m")),
        (live_message(3, "m", "live"), user_echo(4, "user", "m")),
        (agent_message(3, "client:c1", "agent"), user_echo(4, "user", "s1", {"local_id": "c1"})),
        (user_echo(3, "server id", "client:c1"), user_echo(4, "user", "s1", {"local_id": "c1"})),
        (agent_message(3, "event:x", "agent"), system_message(4, "x")),
        (user_echo(3, "user", "event:x"), system_message(4, "x")),
        (chunk(3, 1, "chunk", message_id="m", final=True), live_message(4, "m", "live")),
    ],
)
def test_a_message_id_never_hides_a_message_of_another_kind(
    pair: tuple[ServerEvent, ServerEvent],
) -> None:
    for order in (pair, pair[::-1]):
        conversation = fold(*order)
        assert [m.sequence for m in conversation.transcript] == [3, 4]
        assert len({m.key for m in conversation.transcript}) == 2


def test_the_server_message_id_is_kept_whatever_the_key() -> None:
    conversation = fold(
        agent_message(2, "a1", "whole"),
        chunk(3, 1, "streamed", message_id="s1", final=True),
        live_message(4, "l1", "live"),
        user_echo(5, "mine", "u1", {"client_event_id": "c1"}),
        user_echo(6, "other socket", "u2"),
    )
    assert [m.message_id for m in conversation.transcript] == ["a1", "s1", "l1", "u1", "u2"]
    assert [m.client_event_id for m in conversation.transcript][3] == "c1"


def test_an_empty_message_id_is_no_id() -> None:
    conversation = fold(
        agent_message(2, "", "one"),
        agent_message(3, "", "two"),
        ev("LIVE_AGENT_MESSAGE", 4, {"message_id": "", "text": "three"}),
        ev("LIVE_AGENT_MESSAGE", 5, {"message_id": "", "text": "four"}),
        user_echo(6, "five", "", {"client_event_id": ""}),
        user_echo(7, "six", "", {"client_event_id": ""}),
    )
    assert [m.text for m in conversation.transcript] == [
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
    ]
    assert conversation.delivered("") is None


_KINDS = ("agent", "chunk", "live", "user", "client", "system")
_IDS = ("a", "b", "agent:a", "client:a", "user:a", "event:a", "live_agent:a", ":", "a:")


@given(st.lists(st.tuples(st.sampled_from(_KINDS), st.sampled_from(_IDS)), max_size=12))
def test_keys_are_one_per_message_kind_and_id(specs: list[tuple[str, str]]) -> None:
    """Messages merge only when they are the same kind of message with the same id (an agent
    message and a chunk of it count as one kind); nothing else can collide."""
    events = []
    for number, (kind, name) in enumerate(specs, start=1):
        if kind == "agent":
            events.append(agent_message(number, name, "t"))
        elif kind == "chunk":
            events.append(chunk(number, number, "t", message_id=name, event_id=name + "!"))
        elif kind == "live":
            events.append(live_message(number, name, "t"))
        elif kind == "user":
            events.append(user_echo(number, "t", name))
        elif kind == "client":
            events.append(user_echo(number, "t", f"srv-{number}", {"client_event_id": name}))
        else:
            events.append(system_message(number, name + f"/{number}"))
    kinds = {"chunk": "agent"}
    expected = {
        (kinds.get(kind, kind), name if kind != "system" else number)
        for number, (kind, name) in enumerate(specs, start=1)
    }
    conversation = fold(*events)
    assert len(conversation.transcript) == len(expected)
    assert len({m.key for m in conversation.transcript}) == len(expected)


# --- the end -------------------------------------------------------------------------------


@pytest.mark.parametrize("end_sequence", [2, 5])
def test_the_end_interrupts_every_open_stream_in_any_order(end_sequence: int) -> None:
    events = [
        chunk(3, 1, "Hel", message_id="x"),
        chunk(4, 1, "Wor", message_id="y"),
        ev("SESSION_END", end_sequence, {"reason": "REASON_NATURAL_END"}),
    ]
    for order in (events, events[::-1]):
        conversation = fold(*order)
        assert conversation.streaming == ()
        assert [(m.text, m.complete, m.interrupted) for m in conversation.streams] == [
            ("Hel", False, True),
            ("Wor", False, True),
        ]
        assert conversation.transcript == conversation.streams
    (still,) = fold(events[0]).streaming
    assert not still.interrupted


def test_a_stream_completed_after_the_end_is_complete() -> None:
    conversation = fold(chunk(3, 1, "Hel"), ev("SESSION_END", 5), chunk(4, 2, "lo", final=True))
    (message,) = conversation.transcript
    assert (message.text, message.complete, message.interrupted) == ("Hello", True, False)


# --- presence ------------------------------------------------------------------------------


def test_nobody_is_present_before_a_join() -> None:
    conversation = Conversation()
    assert not conversation.agent_present
    assert not conversation.live_agent_present
    assert (conversation.agent_left_reason, conversation.live_agent_left_reason) == (None, None)


def test_a_left_agent_is_not_present_but_still_the_latest_announced() -> None:
    events = [
        ev("POLY_AGENT_JOINED", 2, {"agent_name": "Ada"}),
        ev("POLY_AGENT_LEFT", 5, {"reason": "HANDOFF"}),
        ev("LIVE_AGENT_JOINED", 7, {"agent": {"id": "a42", "name": "Sarah"}}),
        ev("LIVE_AGENT_LEFT", 9, {"reason": "SHIFT_OVER"}),
    ]
    for order in (events, events[::-1]):
        conversation = fold(*order)
        assert not conversation.agent_present
        assert not conversation.live_agent_present
        assert conversation.agent == Agent(name="Ada", avatar_url=None)
        assert conversation.live_agent == LiveAgent("a42", "Sarah", None)
        assert conversation.agent_left_reason == "HANDOFF"
        assert conversation.live_agent_left_reason == "SHIFT_OVER"
    present = fold(*events[:1], *events[2:3])
    assert (present.agent_present, present.live_agent_present) == (True, True)


def test_a_join_after_a_departure_makes_the_agent_present_again() -> None:
    events = [
        ev("POLY_AGENT_JOINED", 2, {"agent_name": "Ada"}),
        ev("POLY_AGENT_LEFT", 5),
        ev("POLY_AGENT_JOINED", 8, {"agent_name": "Ada"}),
        ev("LIVE_AGENT_LEFT", 3, {"reason": "r"}),
        ev("LIVE_AGENT_JOINED", 6),
    ]
    for order in (events, events[::-1]):
        conversation = fold(*order)
        assert conversation.agent_present
        assert conversation.live_agent_present
        assert conversation.agent_left_reason is None  # the departure gave none
        assert conversation.live_agent_left_reason == "r"  # the latest departure's, still


@given(st.data())
def test_presence_is_decided_by_the_highest_sequence(data: st.DataObject) -> None:
    kinds = data.draw(
        st.lists(st.sampled_from(["POLY_AGENT_JOINED", "POLY_AGENT_LEFT"]), min_size=1, max_size=6)
    )
    events = [ev(kind, number, {}) for number, kind in enumerate(kinds, start=1)]
    joined = [n for n, kind in enumerate(kinds, start=1) if kind == "POLY_AGENT_JOINED"]
    left = [n for n, kind in enumerate(kinds, start=1) if kind == "POLY_AGENT_LEFT"]
    conversation = fold(*data.draw(st.permutations(events)))
    assert conversation.agent_present == (max(joined, default=0) > max(left, default=0))


def goodbye(sequence: int, *, end: bool = True) -> ServerEvent:
    return agent_message(sequence, f"bye{sequence}", "Goodbye!", end_conversation=end)


def test_end_conversation_ends_the_conversation_at_that_message() -> None:
    conversation = fold(ev("POLY_AGENT_JOINED", 2), chunk(3, 1, "Hel"), goodbye(4))
    assert conversation.ended
    assert conversation.phase is Phase.ENDED
    assert conversation.end_reason == END_CONVERSATION_REASON == "end_conversation"
    assert conversation.anomalies == ()
    assert conversation.streaming == ()
    assert [m.text for m in conversation.transcript] == ["Hel", "Goodbye!"]
    assert not fold(ev("POLY_AGENT_JOINED", 2), goodbye(4, end=False)).ended


@pytest.mark.parametrize(
    ("end_sequence", "reason"),
    [(6, "REASON_NATURAL_END"), (3, END_CONVERSATION_REASON)],
)
def test_the_latest_end_by_sequence_gives_the_reason(end_sequence: int, reason: str) -> None:
    events = [
        ev("POLY_AGENT_JOINED", 2),
        goodbye(5),
        ev("SESSION_END", end_sequence, {"reason": "REASON_NATURAL_END"}),
    ]
    for order in (events, events[::-1], [events[1], events[0], events[2]]):
        conversation = fold(*order)
        assert (conversation.phase, conversation.end_reason) == (Phase.ENDED, reason)


def test_a_session_end_after_end_conversation_is_no_anomaly() -> None:
    events = [ev("POLY_AGENT_JOINED", 2), goodbye(5), ev("SESSION_END", 6)]
    for order in (events, events[::-1]):
        assert fold(*order).anomalies == ()


# --- the join decision ---------------------------------------------------------------------

NOT_FOUND = {"level": "SYSTEM_MESSAGE_LEVEL_ERROR", "message": "Error: Conversation not found"}
JOIN_FACTS = {
    "joined": lambda n: ev("POLY_AGENT_JOINED", n),
    "echo": lambda n: ev("REQUEST_POLY_AGENT_JOIN", n),
    "rejoin_error": lambda n: ev("SYSTEM_MESSAGE", n, NOT_FOUND),
    "rejoin_info": lambda n: ev(
        "SYSTEM_MESSAGE", n, {**NOT_FOUND, "level": "SYSTEM_MESSAGE_LEVEL_INFO"}
    ),
    "other_error": lambda n: ev("SYSTEM_MESSAGE", n, {"message": "Error: Session not found"}),
    "left": lambda n: ev("POLY_AGENT_LEFT", n),
}


def test_a_join_is_needed_until_the_agent_joined_or_our_request_was_echoed() -> None:
    assert Conversation().join_needed
    assert fold(ev("SESSION_START", 1)).join_needed
    assert not fold(ev("SESSION_START", 1), ev("REQUEST_POLY_AGENT_JOIN", 2)).join_needed
    assert not fold(ev("SESSION_START", 1), ev("POLY_AGENT_JOINED", 3)).join_needed


def test_a_rejoin_error_after_the_join_asks_for_another() -> None:
    joined = fold(ev("REQUEST_POLY_AGENT_JOIN", 2), ev("POLY_AGENT_JOINED", 3))
    error = fold(ev("SYSTEM_MESSAGE", 7, NOT_FOUND), start=joined)
    assert error.join_needed
    assert not fold(ev("REQUEST_POLY_AGENT_JOIN", 8), start=error).join_needed
    # a transient error notice counts too
    notice = ev("SYSTEM_MESSAGE", None, NOT_FOUND, event_id="n1")
    assert fold(notice, start=joined).join_needed


@given(st.data())
def test_join_needed_follows_the_latest_facts_by_sequence(data: st.DataObject) -> None:
    kinds = data.draw(st.lists(st.sampled_from(sorted(JOIN_FACTS)), max_size=6))
    events = [JOIN_FACTS[kind](n) for n, kind in enumerate(kinds, start=1)]

    def last(*wanted: str) -> int:
        return max((n for n, kind in enumerate(kinds, start=1) if kind in wanted), default=0)

    expected = (last("joined", "echo") == 0) or last("rejoin_error") > last("joined", "echo")
    assert fold(*data.draw(st.permutations(events))).join_needed is expected


def test_conversations_keep_a_shared_key_instance_dict() -> None:
    """Fewer than 30 fields: CPython 3.11 shares instance-dict keys only below that, and the
    per-event copy of an unshared dict slows ``apply`` by about 5% (see ``Conversation``)."""
    assert len(attrs.fields(Conversation)) < 30


def test_a_sequenced_event_is_ranked_by_its_own_sequence_object() -> None:
    """No number is made per event to rank it: records and chunks keep the event's sequence
    (a float per event was 20 bytes held per event of a long conversation)."""
    first, second = chunk(1000, 1, "Hel", message_id="s"), agent_message(1001, "w", "whole")
    conversation = fold(first, second)
    keys = {m.message_id: m.key for m in conversation.transcript}
    streaming, whole = conversation.record(keys["s"]), conversation.record(keys["w"])
    assert streaming is not None
    assert whole is not None
    assert streaming.rank is first.sequence
    assert streaming.chunks[1][0] is first.sequence
    assert whole.rank is second.sequence
    assert whole.whole is not None
    assert whole.whole[0] is second.sequence


def test_event_classes_hold_no_weak_reference_slot() -> None:
    """A conversation holds every event it received: a ``__weakref__`` slot on each event and
    each part of it was 17 bytes per event held."""
    classes = [cls for cls in vars(events_module).values() if isinstance(cls, type)]
    slotted = [cls for cls in classes if attrs.has(cls) and "__slots__" in cls.__dict__]
    assert len(slotted) > 40
    assert [cls for cls in slotted if cls.__weakrefoffset__] == []


def test_records_are_found_by_key_complete_or_streaming() -> None:
    conversation = fold(chunk(3, 1, "Hel", message_id="s"), agent_message(4, "w", "whole"))
    keys = {m.message_id: m.key for m in conversation.transcript}
    streaming, whole = conversation.record(keys["s"]), conversation.record(keys["w"])
    assert streaming is not None
    assert whole is not None
    assert (streaming.rank, whole.rank) == (3, 4)
    assert conversation.record("s") is None
    assert conversation.record("agent:nothing") is None


# --- cost of out-of-order delivery ----------------------------------------------------------


def test_gaps_after_a_sequence() -> None:
    conversation = fold(*(ev("POLY_AGENT_THINKING", s) for s in (1, 4, 6, 10)))
    assert conversation.gaps == ((2, 3), (5, 5), (7, 9))
    assert conversation.gaps_after(0) == ((2, 3), (5, 5), (7, 9))
    assert conversation.gaps_after(2) == ((5, 5), (7, 9))
    assert conversation.gaps_after(5) == ((7, 9),)
    assert conversation.gaps_after(10) == ()
    assert Conversation().gaps_after(0) == ()


@given(st.data())
def test_gaps_after_is_the_gaps_that_start_above(data: st.DataObject) -> None:
    received = data.draw(st.sets(st.integers(1, 60), max_size=40))
    order = data.draw(st.permutations(sorted(received)))
    conversation = fold(*(ev("POLY_AGENT_THINKING", s) for s in order))
    missing = [s for s in range(1, conversation.cursor + 1) if s not in received]
    assert [s for first, last in conversation.gaps for s in range(first, last + 1)] == missing
    above = data.draw(st.integers(-1, 62))
    assert conversation.gaps_after(above) == tuple(g for g in conversation.gaps if g[0] > above)


def _thinking(count: int) -> list[ServerEvent]:
    return [ev("POLY_AGENT_THINKING", s) for s in range(1, count + 1)]


def _lines_run(events: list[ServerEvent]) -> int:
    """How many lines of Python folding ``events`` runs: a count of work that, unlike a
    timing, is the same on any machine. (Loops inside comprehensions count per iteration.)"""
    count = 0

    def trace(frame: FrameType, event: str, arg: object) -> Callable[..., object] | None:
        nonlocal count
        if event == "line":
            count += 1
        return trace

    sys.settrace(trace)
    try:
        reducer.fold(events)
    finally:
        sys.settrace(None)
    return count


def test_out_of_order_delivery_costs_about_what_in_order_does() -> None:
    """Evens then odds opens a gap per event, then fills each: not a pass over every gap."""
    work = {}
    for count in (1_000, 4_000):
        events = _thinking(count)
        shuffled = events[1::2] + events[0::2]
        work[count] = (_lines_run(events), _lines_run(shuffled))
        conversation = reducer.fold(shuffled)
        assert (conversation.cursor, conversation.gaps) == (count, ())
    in_order, out_of_order = work[4_000]
    assert out_of_order < 3 * in_order
    # Linear: four times the events, about four times the work (a pass over every gap per
    # event would be sixteen times).
    assert out_of_order < 5 * work[1_000][1]


def test_a_long_stream_whose_final_chunk_comes_first_is_linear() -> None:
    work = {}
    for count in (1_000, 4_000):
        chunks = [chunk(i, i, "w", final=i == count) for i in range(1, count + 1)]
        final_first = [chunks[-1], *chunks[:-1]]
        work[count] = (_lines_run(chunks), _lines_run(final_first))
        (message,) = reducer.fold(final_first).transcript
        assert (len(message.text), message.complete) == (count, True)
    in_order, final_first_work = work[4_000]
    assert final_first_work < 3 * in_order
    assert final_first_work < 5 * work[1_000][1]


@settings(max_examples=100, deadline=None)
@given(st.permutations(list(range(1, 30))), st.sets(st.integers(1, 29), max_size=8))
def test_event_at_finds_what_is_held_in_any_arrival_order(
    order: list[int], withheld: set[int]
) -> None:
    events = [ev("POLY_AGENT_THINKING", n) for n in order if n not in withheld]
    conversation = fold(*events)
    held = {e.sequence: e for e in conversation.timeline}
    for sequence in range(0, 32):
        assert conversation.event_at(sequence) is held.get(sequence)


def test_an_empty_message_is_kept_in_the_transcript() -> None:
    """An entirely empty stream, and an agent message with no text, are messages of the
    conversation (they may carry suggestions); the vendor SDKs drop them, a renderer may."""
    conversation = fold(
        chunk(1, 1, "", final=True),
        ev(
            "POLY_AGENT_MESSAGE",
            2,
            {"message_id": "m2", "text": "", "response_suggestions": [{"message_text": "Yes"}]},
        ),
        chunk(3, 1, "Hi", message_id="m3"),
        chunk(4, 2, "", message_id="m3", final=True),
    )
    assert [
        (m.text, m.complete, [s.message_text for s in m.suggestions])
        for m in conversation.transcript
    ] == [
        ("", True, []),
        ("", True, ["Yes"]),
        ("Hi", True, []),  # an empty final chunk ends the message and adds nothing
    ]


# --- what folding builds and holds per event ---------------------------------------------------


def test_a_streams_next_chunk_builds_no_marks() -> None:
    """The marks move when a message is first stored or completed, not on every chunk of an open
    stream (each chunk rebuilt them, unchanged); a fold writes only the mark that moved."""

    def marks(conversation: Conversation) -> tuple[Any, ...]:
        return (conversation.mark_last, conversation.mark_breaker, conversation.mark_reply)

    opened = fold(chunk(1, 1, "Hel"))
    second = fold(chunk(2, 2, "lo "), start=opened)
    third = fold(chunk(3, 3, "there"), start=second)
    assert all(a is b for a, b in zip(marks(second), marks(opened), strict=True))
    assert all(a is b for a, b in zip(marks(third), marks(opened), strict=True))
    done = fold(chunk(4, 4, "", final=True), start=third)
    assert done.mark_last is third.mark_last  # the same message is still the last
    assert done.mark_breaker is third.mark_breaker
    assert done.mark_reply is not third.mark_reply  # now complete: the reply
    assert done.marks == (done.mark_last, done.mark_breaker, done.mark_reply)
    assert done.reply_complete()


def test_a_sequenced_chunk_or_whole_message_is_held_as_its_event_not_a_pair() -> None:
    """A record holds each sequenced chunk's (or whole message's) event, which the log holds
    anyway, and builds the documented ``(rank, payload)`` pairs only when they are read: a pair
    per chunk held was 64 bytes."""
    first, second = chunk(10, 1, "Hel", message_id="s"), chunk(11, 2, "lo", message_id="s")
    whole = agent_message(12, "w", "whole")
    conversation = fold(first, second, whole)
    keys = {m.message_id: m.key for m in conversation.transcript}
    streaming, complete = conversation.record(keys["s"]), conversation.record(keys["w"])
    assert streaming is not None
    assert complete is not None
    held_chunks = streaming[4]
    assert held_chunks[1] is first
    assert held_chunks[2] is second
    assert complete[3] is whole
    assert [c.sequence for c in conversation.log] == [10, 11, 12]
    # read by name, they are as documented
    assert dict(streaming.chunks) == {1: (10, first.payload), 2: (11, second.payload)}
    assert complete.whole == (12, whole.payload)
    assert complete.whole[0] is whole.sequence


def test_a_live_chunk_is_held_as_its_rank_and_payload() -> None:
    """An unsequenced chunk ranks between two sequences: its event does not carry that rank."""
    live = chunk(1, 1, "Hel", event_id="live-1")
    live = attrs.evolve(live, sequence=None)
    conversation = fold(ev("SESSION_START", 1), live)
    (record,) = conversation.open_streams.values()
    assert record[4][1] == (1.5, live.payload)
    assert record.chunks[1] == (1.5, live.payload)
    assert conversation.transcript[0].text == "Hel"


def test_a_whole_message_is_recorded_by_building_one_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An echo or a system message builds its record once (it was built, then rebuilt whole)."""
    built: list[Any] = []
    real = message_rules._new_record

    def counting(cls: Any, values: Any) -> Any:
        built.append(values)
        return real(cls, values)

    monkeypatch.setattr(message_rules, "_new_record", counting)
    error = {"level": "SYSTEM_MESSAGE_LEVEL_ERROR", "message": "Error: message too large"}
    fold(user_echo(1, "hi", "u1", custom={"client_event_id": "c1"}), ev("SYSTEM_MESSAGE", 2, error))
    assert len(built) == 2


def test_a_stream_builds_its_message_record_once_when_it_completes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each chunk of an open stream rebuilds the stream's state as a plain tuple: the
    ``MessageRecord`` is built once, when the stream completes (views build their own)."""
    built: list[Any] = []
    real = message_rules._new_record

    def counting(cls: Any, values: Any) -> Any:
        built.append(values)
        return real(cls, values)

    monkeypatch.setattr(message_rules, "_new_record", counting)
    streaming = fold(*(chunk(n, n, "lo ") for n in range(1, 12)))
    assert built == []
    (record,) = streaming.open_streams.values()
    assert type(record) is MessageRecord
    assert record.prefix == 11
    assert streaming.transcript[0].text == "lo " * 11
    done = reducer.apply(streaming, chunk(12, 12, "!", final=True))
    assert len(built) == 1
    assert type(done.record("agent:m1")) is MessageRecord
    assert done.transcript[0].text == "lo " * 11 + "!"
    assert done.transcript[0].complete


def test_an_event_of_a_class_the_decoder_does_not_make_is_still_folded() -> None:
    """``apply`` is total: an instance of a subclass of an event class (an application's own)
    is logged and counted, with no rule of its own."""

    @attrs.frozen(kw_only=True)
    class Custom(events_module.PolyAgentThinking):
        pass

    conversation = fold(ev("SESSION_START", 1), Custom(id="x", sequence=2))
    assert conversation.cursor == 2
    assert conversation.events_applied == 2
    assert not conversation.agent_thinking
