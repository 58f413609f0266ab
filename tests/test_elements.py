"""Element arrays are lenient: one bad attachment, suggestion or call action costs only itself.

A message whose ``attachments`` (or ``response_suggestions``, ``chat_call_actions``) array holds
an element that is not a valid object keeps its text and its good elements; each dropped element
is reported on the event's ``rejected`` as a :class:`RemoteProtocolError` whose path names it,
and the reducer records it in ``Conversation.protocol_errors``. Anything else wrong with the
frame still rejects it whole.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from polyai_messaging.core import Conversation, RemoteProtocolError
from polyai_messaging.core import _events as events
from polyai_messaging.core import _reducer as reducer
from polyai_messaging.core import _wire as wire

E = "EVENT_TYPE_"
CARD = {"title": "Menu", "content_url": "https://example.com/menu"}
OPTION = {"message_text": "Book a table"}
CALL = {"title": "Reservations", "contact_number": "+44 20 7946 0000"}


def frame(kind: str, payload: dict[str, Any], sequence: int = 4) -> dict[str, Any]:
    return {"type": E + kind, "id": f"e{sequence}", "sequence": sequence, "payload": payload}


def agent_message(**payload: Any) -> dict[str, Any]:
    return frame("POLY_AGENT_MESSAGE", {"message_id": "m1", "text": "Here you go", **payload})


def rejections(event: Any) -> list[tuple[str, str]]:
    return [(error.path, error.reason) for error in event.rejected]


# --- decoding ------------------------------------------------------------------------------

LENIENT: list[tuple[dict[str, Any], str, list[Any], list[tuple[str, str]]]] = [
    (
        agent_message(attachments=[1, CARD]),
        "attachments",
        [events.Attachment(title="Menu", content_url="https://example.com/menu")],
        [("payload.attachments[0]", "expected object")],
    ),
    (
        agent_message(attachments=["x"]),
        "attachments",
        [],
        [("payload.attachments[0]", "expected object")],
    ),
    (
        agent_message(attachments=[{}, {"content_url": 3}]),
        "attachments",
        [events.Attachment()],
        [("payload.attachments[1].content_url", "expected string")],
    ),
    (
        agent_message(response_suggestions=[OPTION, {}, {"message_text": None}, [], OPTION]),
        "response_suggestions",
        [events.Suggestion("Book a table"), events.Suggestion("Book a table")],
        [
            ("payload.response_suggestions[1].message_text", "required field missing"),
            ("payload.response_suggestions[2].message_text", "expected string"),
            ("payload.response_suggestions[3]", "expected object"),
        ],
    ),
    (
        agent_message(chat_call_actions=[{"title": "Call", "contact_number": 5}, "+44", CALL]),
        "chat_call_actions",
        [events.ChatCallAction(title="Reservations", contact_number="+44 20 7946 0000")],
        [
            ("payload.chat_call_actions[0].contact_number", "expected string"),
            ("payload.chat_call_actions[1]", "expected object"),
        ],
    ),
    (
        frame(
            "POLY_AGENT_MESSAGE_CHUNK",
            {"message_id": "m1", "chunk_index": 1, "attachments": [CARD, None]},
        ),
        "attachments",
        [events.Attachment(title="Menu", content_url="https://example.com/menu")],
        [("payload.attachments[1]", "expected object")],
    ),
    (
        frame(
            "LIVE_AGENT_MESSAGE",
            {"message_id": "m1", "agent_id": "a", "response_suggestions": [OPTION, "Yes"]},
        ),
        "response_suggestions",
        [events.Suggestion("Book a table")],
        [("payload.response_suggestions[1]", "expected object")],
    ),
]


@pytest.mark.parametrize(("value", "field", "kept", "errors"), LENIENT)
def test_a_bad_element_costs_only_itself(
    value: dict[str, Any], field: str, kept: list[Any], errors: list[tuple[str, str]]
) -> None:
    for event in (wire.decode_object(value), wire.decode(json.dumps(value))):
        assert type(event) is events.KNOWN_TYPES[value["type"]]
        assert (event.id, event.sequence) == (value["id"], value["sequence"])
        assert event.payload.message_id == "m1"
        assert list(getattr(event.payload, field)) == kept
        assert rejections(event) == errors
        assert all(isinstance(error, RemoteProtocolError) for error in event.rejected)


def test_bad_elements_in_several_arrays_are_all_reported() -> None:
    event = wire.decode_object(
        agent_message(attachments=[CARD, 5], response_suggestions=[True, OPTION])
    )
    assert event.payload.text == "Here you go"
    assert len(event.payload.attachments) == 1
    assert event.payload.response_suggestions == (events.Suggestion("Book a table"),)
    assert rejections(event) == [
        ("payload.attachments[1]", "expected object"),
        ("payload.response_suggestions[0]", "expected object"),
    ]


def test_a_valid_frame_rejects_nothing() -> None:
    event = wire.decode_object(agent_message(attachments=[CARD], response_suggestions=[OPTION]))
    assert event.rejected == ()


@pytest.mark.parametrize(
    ("payload", "path", "reason"),
    [
        # the message is bad elsewhere too: the element is not the only problem
        ({"message_id": 7, "attachments": [1]}, "payload.message_id", "expected string"),
        ({"message_id": "m1", "text": 5, "attachments": [1]}, "payload.text", "expected string"),
        ({"attachments": [1]}, "payload.message_id", "required field missing"),
        # the array itself is not an array: there are no elements to keep
        ({"message_id": "m1", "attachments": {}}, "payload.attachments", "expected list"),
        ({"message_id": "m1", "attachments": "x"}, "payload.attachments", "expected list"),
    ],
)
def test_a_frame_bad_elsewhere_is_still_rejected(
    payload: dict[str, Any], path: str, reason: str
) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        wire.decode_object(frame("POLY_AGENT_MESSAGE", payload))
    assert (info.value.path, info.value.reason) == (path, reason)


def test_rejected_is_never_read_from_the_wire() -> None:
    value = {**agent_message(), "rejected": [1, 2]}
    assert wire.decode_object(value).rejected == ()
    assert wire.decode_object({"type": E + "HEARTBEAT", "rejected": "x"}).rejected == ()
    event = wire.decode_object({**agent_message(attachments=[1]), "rejected": [1, 2]})
    assert rejections(event) == [("payload.attachments[0]", "expected object")]
    with pytest.raises(RemoteProtocolError) as info:
        wire.decode_object({**frame("POLY_AGENT_MESSAGE", {"message_id": 7}), "rejected": [1]})
    assert info.value.path == "payload.message_id"


def test_two_decodings_of_one_frame_are_equal() -> None:
    value = agent_message(attachments=[1, CARD])
    assert wire.decode_object(value) == wire.decode_object(value)


def test_inside_a_batch_the_path_starts_at_the_element() -> None:
    batch = wire.decode_object(
        frame(
            "EVENT_BATCH",
            {
                "events": [
                    frame("POLY_AGENT_THINKING", {}, 3),
                    agent_message(response_suggestions=[OPTION, 7]),
                ]
            },
        )
    )
    assert [type(e) for e in batch.events] == [events.PolyAgentThinking, events.PolyAgentMessage]
    assert batch.events[1].payload.response_suggestions == (events.Suggestion("Book a table"),)
    assert rejections(batch) == [
        ("payload.events[1].payload.response_suggestions[1]", "expected object")
    ]
    # reported once, by the batch
    assert batch.events[1].rejected == ()


# --- folding -------------------------------------------------------------------------------


def test_the_message_is_kept_and_the_error_recorded() -> None:
    event = wire.decode_object(agent_message(attachments=[1, CARD], response_suggestions=[OPTION]))
    conversation = reducer.apply(Conversation(), event)
    (message,) = conversation.transcript
    assert message.text == "Here you go"
    assert [a.title for a in message.attachments] == ["Menu"]
    assert [s.message_text for s in message.suggestions] == ["Book a table"]
    assert conversation.protocol_errors == ("payload.attachments[0]: expected object",)
    assert conversation.cursor == 4


def test_a_batch_records_its_inner_elements_once() -> None:
    batch = wire.decode_object(
        frame("EVENT_BATCH", {"events": [agent_message(attachments=[CARD, []]), 3]})
    )
    conversation = reducer.apply(Conversation(), batch)
    assert conversation.protocol_errors == (
        "payload.events[0].payload.attachments[1]: expected object",
        "payload.events[1]: expected a JSON object",
    )
    assert [m.text for m in conversation.transcript] == ["Here you go"]
