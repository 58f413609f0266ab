"""Wire format: decoding every receivable type, the envelope, tolerance, errors, encoding.

Examples are the documented shapes of the server's events and the client's commands. Malformed
frames must raise :class:`RemoteProtocolError` with the readable path of the offending field, and a
fuzz test in the spirit of h11's (``fuzz/afl-server.py``) checks that ``decode`` never raises
anything else and that ``apply`` accepts whatever ``decode`` returns.
"""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyai_messaging.core import KNOWN_TYPES, Conversation, LocalProtocolError, RemoteProtocolError
from polyai_messaging.core import _commands as commands
from polyai_messaging.core import _events as events
from polyai_messaging.core import _reducer as reducer
from polyai_messaging.core import _wire as wire
from strategies import Journal, examples, journals

ENVELOPE = {
    "id": "018d91c7-7b12-7474-9a84-7e8c0e9e4f1a",
    "sequence": 5,
    "timestamp": "2024-02-12T12:00:00Z",
}

ATTACHMENT = {
    "title": "Our locations",
    "preview_image_url": "https://example.com/thumb.png",
    "content_url": "https://example.com/locations",
    "content_type": "ATTACHMENT_CONTENT_TYPE_URL",
    "call_to_action_text": "View locations",
}


def frame(kind: str, payload: Any = None, **envelope: Any) -> str:
    value: dict[str, Any] = {**ENVELOPE, **envelope, "type": kind}
    if payload is not None:
        value["payload"] = payload
    return json.dumps(value)


def decode(kind: str, payload: Any = None, **envelope: Any) -> Any:
    return wire.decode(frame(kind, payload, **envelope))


# --- every receivable type, from its documented example ------------------------------------

E = "EVENT_TYPE_"

DOCUMENTED: list[tuple[str, dict[str, Any], type[Any], Any]] = [
    (
        E + "POLY_AGENT_JOINED",
        {"agent_name": "Ada", "agent_avatar_url": "https://example.com/avatars/ada.png"},
        events.PolyAgentJoined,
        lambda e: (
            (e.payload.agent_name, e.payload.avatar)
            == ("Ada", "https://example.com/avatars/ada.png")
        ),
    ),
    (E + "POLY_AGENT_THINKING", {}, events.PolyAgentThinking, lambda e: True),
    (
        E + "POLY_AGENT_MESSAGE",
        {
            "message_id": "msg_abc123",
            "text": "I'd be happy to help you book a table!",
            "attachments": [ATTACHMENT],
            "response_suggestions": [
                {"message_text": "The Italian place on Main Street"},
                {"message_text": "Show me all available restaurants"},
            ],
        },
        events.PolyAgentMessage,
        lambda e: (
            e.payload.message_id == "msg_abc123"
            and e.payload.attachments == (events.Attachment(**ATTACHMENT),)
            and [s.message_text for s in e.payload.response_suggestions]
            == ["The Italian place on Main Street", "Show me all available restaurants"]
        ),
    ),
    (
        E + "POLY_AGENT_MESSAGE_CHUNK",
        {
            "message_id": "msg_abc123",
            "text": "I'd be happy to ",
            "attachments": [],
            "response_suggestions": [],
            "chunk_index": 1,
            "is_complete": False,
        },
        events.PolyAgentMessageChunk,
        lambda e: (
            (e.payload.chunk_index, e.payload.is_complete, e.payload.text)
            == (1, False, "I'd be happy to ")
        ),
    ),
    (E + "POLY_AGENT_LEFT", {}, events.PolyAgentLeft, lambda e: e.payload.reason is None),
    (E + "POLY_AGENT_TRIGGERED_HANDOFF", {}, events.PolyAgentTriggeredHandoff, lambda e: True),
    (
        E + "LIVE_AGENT_JOINED",
        {
            "agent": {
                "id": "agent_42",
                "name": "Sarah",
                "avatar_url": "https://example.com/avatars/sarah.png",
            }
        },
        events.LiveAgentJoined,
        lambda e: (
            e.payload.live_agent
            == events.LiveAgent("agent_42", "Sarah", "https://example.com/avatars/sarah.png")
        ),
    ),
    (
        E + "LIVE_AGENT_TYPING",
        {"state": "TYPING_STATE_STARTED", "agent_id": "agent_42"},
        events.LiveAgentTyping,
        lambda e: (e.payload.state, e.payload.agent_id) == ("TYPING_STATE_STARTED", "agent_42"),
    ),
    (
        E + "LIVE_AGENT_MESSAGE",
        {
            "message_id": "msg_live_789",
            "agent_id": "agent_42",
            "text": "Hi! I can see your booking request. Let me check availability.",
            "attachments": [],
            "response_suggestions": [],
        },
        events.LiveAgentMessage,
        lambda e: (e.payload.message_id, e.payload.agent_id) == ("msg_live_789", "agent_42"),
    ),
    (E + "LIVE_AGENT_LEFT", {}, events.LiveAgentLeft, lambda e: True),
    (E + "HANDOFF_ACCEPTED", {}, events.HandoffAccepted, lambda e: e.payload.queue_name is None),
    (
        E + "HANDOFF_QUEUE_STATUS",
        {"queue_name": "General Support", "position_in_queue": 3, "estimated_wait_seconds": 180},
        events.HandoffQueueStatus,
        lambda e: (
            (e.payload.queue_name, e.payload.queue_position, e.payload.estimated_wait_seconds)
            == ("General Support", 3, 180)
        ),
    ),
    (
        E + "CLIENT_HANDOFF_REQUIRED",
        {"reason": "COMPLEX_QUERY", "queue_name": "Support Queue"},
        events.ClientHandoffRequired,
        lambda e: (e.payload.reason, e.payload.queue_name) == ("COMPLEX_QUERY", "Support Queue"),
    ),
    (E + "HANDOFF_FAILED", {}, events.HandoffFailed, lambda e: True),
    (E + "HANDOFF_TIMEOUT", {}, events.HandoffTimeout, lambda e: True),
    (
        E + "SESSION_START",
        {
            "capabilities": {
                "streaming": True,
                "max_message_size_bytes": 131072,
                "max_reconnect_attempts": 5,
                "heartbeat_interval_seconds": 30,
            }
        },
        events.SessionStart,
        lambda e: e.payload.capabilities == events.Capabilities(True, 131072, 5, 30),
    ),
    (
        E + "SESSION_END",
        {"reason": "REASON_USER_END"},
        events.SessionEnd,
        lambda e: e.payload.reason == "REASON_USER_END",
    ),
    (
        E + "SYSTEM_MESSAGE",
        {
            "level": "SYSTEM_MESSAGE_LEVEL_ERROR",
            "message": "Event type not allowed: EVENT_TYPE_POLY_AGENT_MESSAGE",
        },
        events.SystemMessage,
        lambda e: (
            e.payload.level == "SYSTEM_MESSAGE_LEVEL_ERROR"
            and e.payload.message.startswith("Event type not allowed")
        ),
    ),
    (
        E + "LANGUAGE_CHANGED",
        {"language_code": "fr-FR"},
        events.LanguageChanged,
        lambda e: e.payload.language_code == "fr-FR",
    ),
    (
        E + "EVENT_BATCH",
        {
            "events": [
                {"id": "a", "sequence": 1, "type": E + "SESSION_START", "payload": {}},
                {
                    "id": "b",
                    "sequence": 2,
                    "type": E + "POLY_AGENT_MESSAGE",
                    "payload": {"message_id": "m"},
                },
            ]
        },
        events.EventBatch,
        lambda e: (
            [type(i) for i in e.events] == [events.SessionStart, events.PolyAgentMessage]
            and [i.sequence for i in e.events] == [1, 2]
            and e.rejected == ()
        ),
    ),
    (E + "REQUEST_POLY_AGENT_JOIN", {}, events.PolyAgentJoinRequested, lambda e: True),
    (
        E + "USER_MESSAGE",
        {"text": "Hello, I need some help.", "message_id": "srv-1"},
        events.UserMessageEcho,
        lambda e: (e.payload.text, e.payload.message_id) == ("Hello, I need some help.", "srv-1"),
    ),
    (E + "USER_END_SESSION", {}, events.UserEndSessionEcho, lambda e: True),
    (E + "HEARTBEAT", {}, events.HeartbeatEcho, lambda e: True),
]


def test_the_table_covers_the_24_receivable_types() -> None:
    assert len(KNOWN_TYPES) == 24
    assert {kind for kind, *_ in DOCUMENTED} == set(KNOWN_TYPES)
    assert len(DOCUMENTED) == 24


@pytest.mark.parametrize(("kind", "payload", "cls", "check"), DOCUMENTED, ids=str)
def test_documented_example_decodes_to_its_class(
    kind: str, payload: dict[str, Any], cls: type[Any], check: Any
) -> None:
    event = decode(kind, payload)
    assert type(event) is cls
    assert KNOWN_TYPES[kind] is cls
    assert check(event)
    if cls is not events.EventBatch:
        assert event.id == ENVELOPE["id"]
        assert event.sequence == 5
        assert event.timestamp == datetime(2024, 2, 12, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("kind", sorted(events.ECHO_TYPES))
def test_echoes_keep_their_metadata(kind: str) -> None:
    event = decode(kind, {}, metadata={"custom": {"client_event_id": "5b0f", "draft": "x"}})
    assert event.metadata.custom == {"client_event_id": "5b0f", "draft": "x"}
    assert event.metadata.client_event_id == "5b0f"


# --- envelope ----------------------------------------------------------------------------


def test_sequence_may_be_null_for_transient_events() -> None:
    event = decode(E + "LIVE_AGENT_TYPING", {"state": "TYPING_STATE_STOPPED"}, sequence=None)
    assert event.sequence is None
    assert event.payload.state == "TYPING_STATE_STOPPED"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-02-12T12:00:00Z", datetime(2024, 2, 12, 12, tzinfo=UTC)),
        ("2024-02-12T12:00:00.5Z", datetime(2024, 2, 12, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2024-02-12T12:00:00.123Z", datetime(2024, 2, 12, 12, 0, 0, 123000, tzinfo=UTC)),
        ("2024-02-12T12:00:00.123456Z", datetime(2024, 2, 12, 12, 0, 0, 123456, tzinfo=UTC)),
        # nanoseconds (Go's RFC3339Nano): truncated to microseconds
        ("2024-02-12T12:00:00.123456789Z", datetime(2024, 2, 12, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2024-02-12T13:00:00+01:00", datetime(2024, 2, 12, 12, tzinfo=UTC)),
        ("2024-02-12T04:00:00.250-08:00", datetime(2024, 2, 12, 12, 0, 0, 250000, tzinfo=UTC)),
        (
            "2024-02-12T17:30:00.999999999+05:30",
            datetime(2024, 2, 12, 12, 0, 0, 999999, tzinfo=UTC),
        ),
    ],
)
def test_timestamps(text: str, expected: datetime) -> None:
    event = decode(E + "POLY_AGENT_THINKING", {}, timestamp=text)
    assert event.timestamp == expected
    assert event.timestamp.utcoffset() is not None


def test_offsets_are_kept() -> None:
    event = decode(E + "POLY_AGENT_THINKING", {}, timestamp="2024-02-12T17:30:00+05:30")
    assert event.timestamp.utcoffset() == timedelta(hours=5, minutes=30)


def test_heartbeat_echo_without_id_sequence_or_timestamp() -> None:
    event = wire.decode('{"type":"EVENT_TYPE_HEARTBEAT"}')
    assert type(event) is events.HeartbeatEcho
    assert (event.id, event.sequence, event.timestamp, event.metadata) == (None, None, None, None)


@pytest.mark.parametrize("payload", ["", ',"payload":null'])
def test_missing_or_null_payload_means_empty(payload: str) -> None:
    event = wire.decode('{"type":"EVENT_TYPE_SESSION_START","id":"x","sequence":1' + payload + "}")
    assert type(event) is events.SessionStart
    assert event.payload.capabilities == events.Capabilities()


def test_missing_payload_with_required_fields_names_the_field() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        wire.decode('{"type":"EVENT_TYPE_POLY_AGENT_MESSAGE","id":"x","sequence":1}')
    assert info.value.path == "payload.message_id"
    assert str(info.value) == "payload.message_id: required field missing"


def test_extra_fields_are_ignored_everywhere() -> None:
    event = decode(
        E + "POLY_AGENT_MESSAGE",
        {
            "message_id": "m",
            "text": "hi",
            "future_field": {"nested": [1, 2]},
            "attachments": [{**ATTACHMENT, "width": 300}],
            "response_suggestions": [{"message_text": "ok", "payload": "tap-1"}],
            "chat_call_actions": [{"title": "Call us", "contact_number": "+441234"}],
        },
        trace_id="abc",
        region="us-1",
    )
    assert type(event) is events.PolyAgentMessage
    assert event.payload.text == "hi"
    assert event.payload.attachments[0].content_url == ATTACHMENT["content_url"]
    assert event.payload.response_suggestions == (events.Suggestion("ok"),)


def test_agent_message_fields_the_sdks_read() -> None:
    event = decode(
        E + "POLY_AGENT_MESSAGE",
        {
            "message_id": "m",
            "text": "Call us",
            "agent_name": "Ada",
            "avatar_url": "https://example.com/avatars/ada.png",
            "end_conversation": True,
            "chat_call_actions": [
                {"title": "Reservations", "contact_number": "+44 20 7946 0000"},
                {"contact_number": "+44 20 7946 0001", "extra": 1},
                {},
            ],
        },
    )
    payload = event.payload
    assert (payload.agent_name, payload.avatar_url, payload.end_conversation) == (
        "Ada",
        "https://example.com/avatars/ada.png",
        True,
    )
    assert payload.chat_call_actions == (
        events.ChatCallAction(title="Reservations", contact_number="+44 20 7946 0000"),
        events.ChatCallAction(title=None, contact_number="+44 20 7946 0001"),
        events.ChatCallAction(),
    )
    assert "ChatCallAction" in events.__all__


def test_agent_message_fields_the_sdks_read_are_optional() -> None:
    payload = decode(E + "POLY_AGENT_MESSAGE", {"message_id": "m"}).payload
    assert (payload.agent_name, payload.avatar_url) == (None, None)
    assert (payload.chat_call_actions, payload.end_conversation) == ((), False)
    nulls = {"message_id": "m", "agent_name": None, "avatar_url": None}
    payload = decode(E + "POLY_AGENT_MESSAGE", nulls).payload
    assert (payload.agent_name, payload.avatar_url) == (None, None)


# --- metadata, capabilities, queue alias, live agent forms ---------------------------------


@pytest.mark.parametrize(
    ("custom", "expected_map", "correlation"),
    [
        ({"client_event_id": "c-1"}, {"client_event_id": "c-1"}, "c-1"),
        ({"local_id": "draft_abc123"}, {"local_id": "draft_abc123"}, "draft_abc123"),
        (
            {"local_id": "l", "client_event_id": "c"},
            {"local_id": "l", "client_event_id": "c"},
            "c",
        ),
        # non-string values are not part of the string map
        ({"client_event_id": 7, "local_id": "l", "n": None}, {"local_id": "l"}, "l"),
        ({}, {}, None),
    ],
)
def test_metadata_custom_is_a_string_map(
    custom: dict[str, Any], expected_map: dict[str, str], correlation: str | None
) -> None:
    event = decode(E + "USER_MESSAGE", {"text": "hi"}, metadata={"custom": custom})
    assert dict(event.metadata.custom) == expected_map
    assert event.metadata.client_event_id == correlation


@pytest.mark.parametrize("custom", [None, "x", [1], 3])
def test_metadata_without_a_custom_object_is_empty(custom: Any) -> None:
    event = decode(E + "USER_MESSAGE", {"text": "hi"}, metadata={"custom": custom})
    assert event.metadata == events.Metadata()
    assert event.metadata.client_event_id is None


def test_capabilities_keep_unknown_keys_and_missing_known_ones_are_none() -> None:
    event = decode(
        E + "SESSION_START",
        {"capabilities": {"streaming": False, "context_id": "ctx-9", "limits": {"a": 1}}},
    )
    caps = event.payload.capabilities
    assert caps.streaming is False
    assert caps.heartbeat_interval_seconds is None
    assert caps.max_message_size_bytes is None
    assert dict(caps.extra) == {"context_id": "ctx-9", "limits": {"a": 1}}


@pytest.mark.parametrize(
    ("payload", "position"),
    [
        ({"position_in_queue": 3}, 3),
        ({"position": 4}, 4),
        ({"position": 4, "position_in_queue": 2}, 2),
        ({"position_in_queue": 0}, 0),
        ({}, None),
    ],
)
def test_queue_position_alias(payload: dict[str, Any], position: int | None) -> None:
    event = decode(E + "HANDOFF_QUEUE_STATUS", {**payload, "display_message": "Hang on"})
    assert event.payload.queue_position == position
    assert event.payload.display_message == "Hang on"


@pytest.mark.parametrize(
    "payload",
    [
        {"agent": {"id": "agent_42", "name": "Sarah", "avatar_url": "https://a/s.png"}},
        {"agent_id": "agent_42", "agent_name": "Sarah", "avatar_url": "https://a/s.png"},
        {"agent": {"id": "agent_42"}, "agent_name": "Sarah", "avatar_url": "https://a/s.png"},
    ],
    ids=["nested", "flat", "mixed"],
)
def test_live_agent_nested_and_flat_forms(payload: dict[str, Any]) -> None:
    event = decode(E + "LIVE_AGENT_JOINED", payload)
    assert event.payload.live_agent == events.LiveAgent("agent_42", "Sarah", "https://a/s.png")


def test_poly_agent_avatar_falls_back_to_avatar_url() -> None:
    event = decode(E + "POLY_AGENT_JOINED", {"agent_name": "Ada", "avatar_url": "https://a/x"})
    assert event.payload.avatar == "https://a/x"


def test_live_agent_typing_without_state_means_started() -> None:
    assert decode(E + "LIVE_AGENT_TYPING", {}).payload.state == "TYPING_STATE_STARTED"


# --- unknown types -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind",
    [
        "EVENT_TYPE_SESSION_IDLE_WARNING",
        "EVENT_TYPE_SHOW_CSAT_REQUEST",
        "event_type_heartbeat",  # wrong case is another type
        "",
        "NOT_EVEN_PREFIXED",
    ],
)
def test_unknown_types_keep_raw_type_and_payload(kind: str) -> None:
    payload = {"whatever": [1, {"deep": None}], "n": 1.5}
    event = decode(kind, payload, metadata={"custom": {"client_event_id": "c"}})
    assert type(event) is events.UnknownEvent
    assert event.type == kind
    assert event.payload == payload
    assert (event.id, event.sequence) == (ENVELOPE["id"], 5)
    assert event.metadata.client_event_id == "c"


def test_unknown_type_without_payload() -> None:
    event = wire.decode('{"type":"EVENT_TYPE_USER_READ_MESSAGE","id":"x","sequence":3}')
    assert type(event) is events.UnknownEvent
    assert event.payload == {}


def test_unknown_type_envelope_is_still_checked() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        wire.decode('{"type":"EVENT_TYPE_X","sequence":"3"}')
    assert info.value.path == "sequence"


# --- batches -------------------------------------------------------------------------------


def inner(kind: str, sequence: int, payload: Any, *, form: str = "payload") -> dict[str, Any]:
    value: dict[str, Any] = {"id": f"id-{sequence}", "sequence": sequence, "type": kind}
    key = "payload" if form == "payload" else kind.removeprefix(E).lower()
    value[key] = payload
    return value


def test_batch_inner_payload_under_the_type_derived_key() -> None:
    batch = decode(
        E + "EVENT_BATCH",
        {
            "events": [
                inner(
                    E + "POLY_AGENT_MESSAGE",
                    1,
                    {"message_id": "m", "text": "hello"},
                    form="key",
                ),
                inner(E + "LANGUAGE_CHANGED", 2, {"language_code": "de-DE"}, form="key"),
                inner(E + "HANDOFF_QUEUE_STATUS", 3, {"position": 2}, form="key"),
                inner(E + "SESSION_IDLE_WARNING", 4, {"seconds": 60}, form="key"),
            ]
        },
    )
    first, second, third, fourth = batch.events
    assert first.payload.text == "hello"
    assert second.payload.language_code == "de-DE"
    assert third.payload.queue_position == 2
    assert type(fourth) is events.UnknownEvent
    assert fourth.payload == {"seconds": 60}
    assert batch.rejected == ()


def test_batch_inner_payload_key_wins_over_derived_key() -> None:
    item = inner(E + "LANGUAGE_CHANGED", 1, {"language_code": "fr-FR"})
    item["language_changed"] = {"language_code": "xx"}
    batch = decode(E + "EVENT_BATCH", {"events": [item]})
    assert batch.events[0].payload.language_code == "fr-FR"


def test_batch_keeps_good_elements_and_reports_bad_ones() -> None:
    batch = decode(
        E + "EVENT_BATCH",
        {
            "events": [
                inner(E + "SESSION_START", 1, {}),
                7,
                inner(E + "POLY_AGENT_MESSAGE_CHUNK", 3, {"message_id": "m", "chunk_index": "2"}),
                {"sequence": 4, "payload": {}},
                inner(E + "POLY_AGENT_THINKING", 5, {}),
                inner(E + "POLY_AGENT_THINKING", -1, {}),
            ]
        },
    )
    assert [e.sequence for e in batch.events] == [1, 5]
    paths = [(e.path, e.reason) for e in batch.rejected]
    assert paths == [
        ("payload.events[1]", "expected a JSON object"),
        ("payload.events[2].payload.chunk_index", "expected int"),
        ("payload.events[3].type", "missing"),
        ("payload.events[5].sequence", f"expected int in [0, {wire.MAX_SEQUENCE}]"),
    ]
    assert all(isinstance(e, RemoteProtocolError) for e in batch.rejected)


def test_nested_batches_are_flattened() -> None:
    nested = {
        "type": E + "EVENT_BATCH",
        "payload": {"events": [inner(E + "POLY_AGENT_THINKING", 2, {}), 1]},
    }
    batch = decode(E + "EVENT_BATCH", {"events": [inner(E + "SESSION_START", 1, {}), nested]})
    assert [e.sequence for e in batch.events] == [1, 2]
    assert [e.path for e in batch.rejected] == ["payload.events[1].payload.events[1]"]


def nested_batch(levels: int) -> dict[str, Any]:
    """``levels`` batches, each inside the previous, each also holding one event of its own.

    The event of the batch at level ``n`` (1 is the outermost) has sequence ``n``. Built as
    dicts: a JSON parser would hit its own recursion limit first.
    """
    frame: dict[str, Any] = {"type": E + "EVENT_BATCH", "payload": {"events": []}}
    innermost = frame
    for level in range(1, levels + 1):
        innermost["payload"]["events"].append(inner(E + "POLY_AGENT_THINKING", level, {}))
        if level < levels:
            deeper: dict[str, Any] = {"type": E + "EVENT_BATCH", "payload": {"events": []}}
            innermost["payload"]["events"].append(deeper)
            innermost = deeper
    return frame


def test_batches_nested_up_to_the_limit_are_flattened() -> None:
    batch = wire.decode_object(nested_batch(wire.MAX_BATCH_DEPTH))
    assert [e.sequence for e in batch.events] == list(range(1, wire.MAX_BATCH_DEPTH + 1))
    assert batch.rejected == ()


@pytest.mark.parametrize("levels", [wire.MAX_BATCH_DEPTH + 1, 600, 5000])
def test_a_batch_nested_too_deep_is_one_rejected_element(levels: int) -> None:
    batch = wire.decode_object(nested_batch(levels))
    # The batches within the limit keep their own events; the first one beyond it is refused
    # whole, named by its path.
    assert [e.sequence for e in batch.events] == list(range(1, wire.MAX_BATCH_DEPTH + 1))
    (error,) = batch.rejected
    assert error.path == ".".join(["payload.events[1]"] * wire.MAX_BATCH_DEPTH)
    assert "nested" in error.reason
    conversation = reducer.apply(Conversation(), batch)
    assert conversation.cursor == wire.MAX_BATCH_DEPTH
    assert len(conversation.protocol_errors) == 1


def test_the_batch_depth_limit_is_small() -> None:
    assert 2 <= wire.MAX_BATCH_DEPTH <= 16


def test_empty_batches() -> None:
    for text in (
        '{"type":"EVENT_TYPE_EVENT_BATCH"}',
        '{"type":"EVENT_TYPE_EVENT_BATCH","payload":null}',
        '{"type":"EVENT_TYPE_EVENT_BATCH","payload":{}}',
        '{"type":"EVENT_TYPE_EVENT_BATCH","payload":{"events":null}}',
        '{"type":"EVENT_TYPE_EVENT_BATCH","payload":{"events":[]}}',
    ):
        batch = wire.decode(text)
        assert type(batch) is events.EventBatch
        assert (batch.events, batch.rejected) == ((), ())


# --- malformed frames: exact readable paths -------------------------------------------------

MALFORMED: list[tuple[str | bytes, str, str]] = [
    ('{"type":"EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK","payload":{"message_id":"m","chunk_index":"1"}}',
     "payload.chunk_index", "expected int"),
    ('{"type":"EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK","payload":{"message_id":"m","chunk_index":1.0}}',
     "payload.chunk_index", "expected int"),
    ('{"type":"EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK","payload":{"message_id":"m","chunk_index":1,"is_complete":"true"}}',
     "payload.is_complete", "expected bool"),
    ('{"type":"EVENT_TYPE_POLY_AGENT_MESSAGE","payload":{"message_id":7}}',
     "payload.message_id", "expected string"),
    ('{"type":"EVENT_TYPE_POLY_AGENT_MESSAGE","payload":{"message_id":"m","text":null}}',
     "payload.text", "expected string"),
    ('{"type":"EVENT_TYPE_POLY_AGENT_MESSAGE","payload":{"message_id":"m","attachments":{}}}',
     "payload.attachments", "expected list"),
    ('{"type":"EVENT_TYPE_POLY_AGENT_MESSAGE","payload":{"message_id":"m","agent_name":5}}',
     "payload.agent_name", "expected string"),
    ('{"type":"EVENT_TYPE_POLY_AGENT_MESSAGE","payload":{"message_id":"m","avatar_url":["u"]}}',
     "payload.avatar_url", "expected string"),
    ('{"type":"EVENT_TYPE_POLY_AGENT_MESSAGE","payload":{"message_id":"m","chat_call_actions":{}}}',
     "payload.chat_call_actions", "expected list"),
    ('{"type":"EVENT_TYPE_HANDOFF_QUEUE_STATUS","payload":{"estimated_wait_seconds":true}}',
     "payload.estimated_wait_seconds", "expected int"),
    ('{"type":"EVENT_TYPE_SESSION_START","payload":{"capabilities":{"streaming":"yes"}}}',
     "payload.capabilities.streaming", "expected bool"),
    ('{"type":"EVENT_TYPE_SESSION_START","payload":{"capabilities":[]}}',
     "payload.capabilities", "expected object"),
    ('{"type":"EVENT_TYPE_LIVE_AGENT_JOINED","payload":{"agent":{"name":5}}}',
     "payload.agent.name", "expected string"),
    ('{"type":"EVENT_TYPE_LIVE_AGENT_JOINED","payload":{"agent":"Sarah"}}',
     "payload.agent", "expected object"),
    ('{"type":"EVENT_TYPE_LANGUAGE_CHANGED","payload":{"language_code":["fr"]}}',
     "payload.language_code", "expected string"),
    ('{"type":"EVENT_TYPE_SYSTEM_MESSAGE","payload":{"level":"SYSTEM_MESSAGE_LEVEL_INFO"}}',
     "payload.message", "required field missing"),
    ('{"type":"EVENT_TYPE_POLY_AGENT_THINKING","payload":5}', "payload", "expected object"),
    ('{"type":"EVENT_TYPE_X","payload":"x"}', "payload", "expected object"),
    ('{"type":"EVENT_TYPE_EVENT_BATCH","payload":[]}', "payload", "expected object"),
    ('{"type":"EVENT_TYPE_EVENT_BATCH","payload":{"events":{}}}', "payload.events",
     "expected list"),
    ('{"type":"EVENT_TYPE_EVENT_BATCH","payload":{"events":0}}', "payload.events",
     "expected list"),
    ('{"type":"EVENT_TYPE_HEARTBEAT","id":5}', "id", "expected string"),
    ('{"type":"EVENT_TYPE_HEARTBEAT","sequence":"5"}', "sequence", "expected int"),
    ('{"type":"EVENT_TYPE_HEARTBEAT","sequence":true}', "sequence", "expected int"),
    ('{"type":"EVENT_TYPE_HEARTBEAT","sequence":-1}', "sequence",
     f"expected int in [0, {2**53 - 1}]"),
    (f'{{"type":"EVENT_TYPE_HEARTBEAT","sequence":{2**53}}}', "sequence",
     f"expected int in [0, {2**53 - 1}]"),
    ('{"type":"EVENT_TYPE_HEARTBEAT","sequence":1' + "0" * 400 + "}", "sequence",
     f"expected int in [0, {2**53 - 1}]"),
    ('{"type":"EVENT_TYPE_HEARTBEAT","timestamp":"yesterday"}', "timestamp",
     "expected ISO 8601 timestamp"),
    ('{"type":"EVENT_TYPE_HEARTBEAT","timestamp":1707739200}', "timestamp",
     "expected ISO 8601 string"),
    ('{"type":"EVENT_TYPE_HEARTBEAT","metadata":"x"}', "metadata", "expected object"),
    ('{"type":"EVENT_TYPE_X","timestamp":"2024-13-01T00:00:00Z"}', "timestamp",
     "expected ISO 8601 timestamp"),
    ('{"payload":{}}', "type", "missing"),
    ('{"type":null}', "type", "expected string"),
    ('{"type":5}', "type", "expected string"),
    ("[1,2]", "", "expected a JSON object"),
    ('"EVENT_TYPE_HEARTBEAT"', "", "expected a JSON object"),
    ("null", "", "expected a JSON object"),
    ("{", "", "invalid JSON (JSONDecodeError)"),
    ("", "", "invalid JSON (JSONDecodeError)"),
    ('{"type":"EVENT_TYPE_HEARTBEAT"} trailing', "", "invalid JSON (JSONDecodeError)"),
    ("1" * 5000, "", "invalid JSON (ValueError)"),
    (b'{"type":"EVENT_TYPE_HEARTBEAT"}', "", "binary frames are not part of the protocol"),
    (bytearray(b"\x00\x01"), "", "binary frames are not part of the protocol"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "path", "reason"), MALFORMED)
def test_malformed_frames_name_the_path(text: str | bytes, path: str, reason: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        wire.decode(text)
    assert info.value.path == path
    assert info.value.reason == reason
    assert str(info.value) == (f"{path}: {reason}" if path else reason)


def test_decode_object_takes_parsed_values() -> None:
    event = wire.decode_object({"type": E + "LANGUAGE_CHANGED", "payload": {"language_code": "x"}})
    assert type(event) is events.LanguageChanged
    with pytest.raises(RemoteProtocolError):
        wire.decode_object('{"type":"EVENT_TYPE_HEARTBEAT"}')


# --- encoding ------------------------------------------------------------------------------

CLIENT_TYPES = {
    E + "REQUEST_POLY_AGENT_JOIN",
    E + "USER_MESSAGE",
    E + "USER_TYPING",
    E + "USER_END_SESSION",
    E + "HEARTBEAT",
}


def test_exactly_the_five_client_types_are_encodable() -> None:
    members = typing.get_args(commands.ClientCommand)
    assert {cls.TYPE for cls in members} == CLIENT_TYPES
    assert len(members) == 5


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            commands.RequestPolyAgentJoin(),
            '{"type":"EVENT_TYPE_REQUEST_POLY_AGENT_JOIN","payload":{}}',
        ),
        (
            commands.UserMessage(text="Hello, I need some help."),
            '{"type":"EVENT_TYPE_USER_MESSAGE","payload":{"text":"Hello, I need some help."}}',
        ),
        (
            commands.UserTyping(state="TYPING_STATE_STARTED"),
            '{"type":"EVENT_TYPE_USER_TYPING","payload":{"state":"TYPING_STATE_STARTED"}}',
        ),
        (commands.UserEndSession(), '{"type":"EVENT_TYPE_USER_END_SESSION","payload":{}}'),
        (commands.Heartbeat(), '{"type":"EVENT_TYPE_HEARTBEAT","payload":{}}'),
        (
            commands.UserMessage(text="héllo 🙂", client_event_id="c-1"),
            '{"type":"EVENT_TYPE_USER_MESSAGE","payload":{"text":"héllo 🙂"},'
            '"metadata":{"custom":{"client_event_id":"c-1"}}}',
        ),
        (
            commands.UserMessage(text="x", custom={"local_id": "draft_abc123"}),
            '{"type":"EVENT_TYPE_USER_MESSAGE","payload":{"text":"x"},'
            '"metadata":{"custom":{"local_id":"draft_abc123"}}}',
        ),
        (
            commands.Heartbeat(custom={"k": "v"}),
            '{"type":"EVENT_TYPE_HEARTBEAT","payload":{},"metadata":{"custom":{"k":"v"}}}',
        ),
    ],
)
def test_encoding(command: commands.ClientCommand, expected: str) -> None:
    text = wire.encode(command)
    assert text == expected
    value = json.loads(text)
    assert value["type"] in CLIENT_TYPES
    assert isinstance(value["payload"], dict)
    assert not {"id", "sequence", "timestamp"} & value.keys()
    assert wire.encoded_size(command) == len(text.encode("utf-8"))


def test_metadata_custom_must_be_a_string_map() -> None:
    with pytest.raises(LocalProtocolError, match=r"metadata\.custom"):
        commands.UserMessage(text="x", custom={"n": 1})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="state"):
        commands.UserTyping(state="TYPING")


@given(
    text=st.text(max_size=50),
    client_event_id=st.text(min_size=1, max_size=20),
    custom=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)
def test_a_user_message_round_trips_through_its_echo(
    text: str, client_event_id: str, custom: dict[str, str]
) -> None:
    """What we send, echoed by the server (id, sequence, timestamp, message_id added)."""
    sent = json.loads(
        wire.encode(commands.UserMessage(text=text, client_event_id=client_event_id, custom=custom))
    )
    assert sent["metadata"]["custom"]["client_event_id"] == client_event_id
    echo = {**sent, **ENVELOPE, "payload": {**sent["payload"], "message_id": "srv"}}
    event = wire.decode(json.dumps(echo))
    assert type(event) is events.UserMessageEcho
    assert event.payload.text == text
    assert event.metadata.client_event_id == client_event_id
    assert dict(event.metadata.custom) == {**custom, "client_event_id": client_event_id}


# --- totality (h11 fuzz spirit) --------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

type_names = st.sampled_from(sorted(KNOWN_TYPES)) | st.text(max_size=12)

frame_like = st.fixed_dictionaries(
    {"type": type_names},
    optional={
        "id": st.text(max_size=5) | json_values,
        "sequence": st.integers(-3, 2**60) | st.none() | json_values,
        "timestamp": st.sampled_from(["2024-02-12T12:00:00Z", "2024-02-12T12:00:00.1234567+01:00"])
        | json_values,
        "payload": st.dictionaries(
            st.sampled_from(
                [
                    "message_id", "text", "chunk_index", "is_complete", "attachments",
                    "response_suggestions", "agent", "agent_id", "state", "capabilities",
                    "events", "reason", "level", "message", "language_code", "position",
                ]
            ),
            json_values,
            max_size=5,
        )
        | json_values,
        "metadata": st.fixed_dictionaries({"custom": json_values}) | json_values,
    },
)  # fmt: skip


def check_total(value: Any) -> None:
    """decode returns an event or raises RemoteProtocolError; apply and views never raise."""
    for attempt in (lambda: wire.decode_object(value), lambda: wire.decode(json.dumps(value))):
        try:
            event = attempt()
        except RemoteProtocolError:
            continue
        conversation = reducer.apply(Conversation(), event)
        conversation = reducer.apply(conversation, event)
        exercise(conversation)


def exercise(conversation: Conversation) -> None:
    _ = (
        conversation.transcript,
        conversation.streams,
        conversation.suggestions,
        conversation.anomalies,
        conversation.timeline,
        conversation.agent_thinking,
        conversation.live_agent_typing,
        conversation.summary(),
    )


FUZZ = settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@FUZZ
@given(json_values)
def test_any_json_value_decodes_or_raises_remote_protocol_error(value: Any) -> None:
    check_total(value)


@FUZZ
@given(frame_like)
def test_any_frame_shaped_value_decodes_or_raises_remote_protocol_error(value: Any) -> None:
    check_total(value)
    check_total({"type": E + "EVENT_BATCH", "payload": {"events": [value, value]}})


@FUZZ
@given(st.text(max_size=200) | st.binary(max_size=50))
def test_any_text_decodes_or_raises_remote_protocol_error(text: str | bytes) -> None:
    try:
        event = wire.decode(text)
    except RemoteProtocolError:
        return
    exercise(reducer.apply(Conversation(), event))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.extend(_paths(item, (*prefix, index)))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_valid_journals_decode_or_raise_and_fold(data: st.DataObject) -> None:
    """Valid frames with one value replaced anywhere; the survivors fold without error."""
    journal: Journal = data.draw(journals(max_actions=3))
    conversation = Conversation()
    for original in journal.frames:
        mutated: Any = original
        if data.draw(st.booleans()):
            path = data.draw(st.sampled_from(_paths(original)))
            mutated = _replace(original, path, data.draw(json_values))
        try:
            event = wire.decode(json.dumps(mutated))
        except RemoteProtocolError:
            continue
        conversation = reducer.apply(conversation, event)
    exercise(conversation)


def test_events_hold_no_instance_dict_and_share_repeated_ids() -> None:
    """A long conversation holds every event: they are slotted, and the chunks of one reply
    share one copy of its message_id."""
    first, second = (
        wire.decode(
            json.dumps(
                {
                    "type": "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK",
                    "id": f"e{n}",
                    "sequence": n,
                    "payload": {"message_id": "msg_" + "x" * 30, "chunk_index": n, "text": "t"},
                }
            )
        )
        for n in (1, 2)
    )
    assert not hasattr(first, "__dict__")
    assert not hasattr(first.payload, "__dict__")
    assert first.payload.message_id is second.payload.message_id


# --- what a decoded event holds ---------------------------------------------------------------


def test_short_chunk_texts_are_one_shared_object_and_long_ones_are_not_remembered() -> None:
    """A conversation holds every chunk: a short fragment (a word or two) recurs, so equal ones
    share one string; long ones rarely recur and are not remembered."""

    def text_of(text: str, index: int) -> str:
        payload = {"message_id": "m", "chunk_index": index, "text": text}
        return decode(E + "POLY_AGENT_MESSAGE_CHUNK", payload).payload.text  # type: ignore[no-any-return]

    # built at run time, so that the two frames' texts are never one constant
    short, long = "".join(["sure", "! "]), "".join(["let me check ", "availability "])
    first, second = text_of(short, 1), text_of(short, 2)
    assert first == second == short
    assert first is second
    assert text_of(long, 3) is not text_of(long, 4)


def test_the_shared_fragments_are_bounded() -> None:
    from polyai_messaging.core import _decoders

    for n in range(_decoders.FRAGMENT_MEMORY + 10):
        payload = {"message_id": "m", "chunk_index": 1, "text": f"w{n}"}
        decode(E + "POLY_AGENT_MESSAGE_CHUNK", payload)
    assert 0 < len(_decoders._fragments) <= _decoders.FRAGMENT_MEMORY
