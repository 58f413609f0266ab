"""What an agent message says beyond its text: who sent it, and the calls it offers.

``agent_name``, ``avatar_url`` and ``chat_call_actions`` (``{title, contact_number}``) are
optional fields of agent messages that the vendor's SDKs read. They reach the transcript's
:class:`Message` and both renderings of a conversation.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from polyai_messaging.core import ChatCallAction, Conversation, Role, render_text, to_json
from polyai_messaging.core import _reducer as reducer
from polyai_messaging.core import _wire as wire
from strategies import examples, journals
from test_confluence import expected_key

E = "EVENT_TYPE_"
RESERVATIONS = {"title": "Reservations", "contact_number": "+44 20 7946 0000"}


def fold(*frames: dict[str, Any]) -> Conversation:
    return reducer.fold(wire.decode_object(frame) for frame in frames)


def agent_message(sequence: int, **payload: Any) -> dict[str, Any]:
    return {
        "type": E + "POLY_AGENT_MESSAGE",
        "id": f"e{sequence}",
        "sequence": sequence,
        "payload": {"message_id": f"m{sequence}", "text": "Call us", **payload},
    }


def test_a_whole_agent_message_shows_its_sender_and_call_actions() -> None:
    conversation = fold(
        agent_message(
            3,
            agent_name="Ada",
            avatar_url="https://example.com/ada.png",
            chat_call_actions=[RESERVATIONS, {"contact_number": "999"}],
        )
    )
    (message,) = conversation.transcript
    assert message.role is Role.AGENT
    assert (message.agent_name, message.avatar_url) == ("Ada", "https://example.com/ada.png")
    assert message.call_actions == (
        ChatCallAction("Reservations", "+44 20 7946 0000"),
        ChatCallAction(None, "999"),
    )


def test_a_message_with_only_call_actions_still_shows() -> None:
    conversation = fold(agent_message(3, text="", chat_call_actions=[RESERVATIONS]))
    (message,) = conversation.transcript
    assert message.text == ""
    assert [action.title for action in message.call_actions] == ["Reservations"]


def test_a_live_agent_message_shows_its_sender() -> None:
    conversation = fold(
        {
            "type": E + "LIVE_AGENT_MESSAGE",
            "id": "l",
            "sequence": 5,
            "payload": {
                "message_id": "lm",
                "agent_id": "agent_42",
                "agent_name": "Sarah",
                "avatar_url": "https://example.com/sarah.png",
                "text": "Hi",
            },
        }
    )
    (message,) = conversation.transcript
    assert (message.agent_name, message.avatar_url) == ("Sarah", "https://example.com/sarah.png")
    assert message.call_actions == ()


def test_streams_and_other_messages_have_none() -> None:
    conversation = fold(
        {
            "type": E + "POLY_AGENT_MESSAGE_CHUNK",
            "id": "c",
            "sequence": 1,
            "payload": {"message_id": "s", "text": "Hel", "chunk_index": 1},
        },
        {
            "type": E + "USER_MESSAGE",
            "id": "u",
            "sequence": 2,
            "payload": {"message_id": "um", "text": "Hi"},
        },
        {
            "type": E + "SYSTEM_MESSAGE",
            "id": "y",
            "sequence": 3,
            "payload": {"message": "Error: Session not found"},
        },
    )
    assert [(m.agent_name, m.avatar_url, m.call_actions) for m in conversation.transcript] == [
        (None, None, ())
    ] * 3


def test_to_json_lists_the_call_actions_of_each_message() -> None:
    conversation = fold(
        agent_message(3, chat_call_actions=[RESERVATIONS, {"title": "Desk"}]),
        agent_message(4),
    )
    first, second = to_json(conversation)["transcript"]
    assert first["call_actions"] == [
        {"title": "Reservations", "contact_number": "+44 20 7946 0000"},
        {"title": "Desk", "contact_number": None},
    ]
    assert second["call_actions"] == []


def test_render_text_shows_each_call_action_on_its_own_line() -> None:
    conversation = fold(agent_message(3, chat_call_actions=[RESERVATIONS, {"title": "Desk"}]))
    lines = render_text(conversation).splitlines()
    at = lines.index("#3    agent: Call us")
    assert lines[at + 1 : at + 3] == [
        "      [call] Reservations <+44 20 7946 0000>",
        "      [call] Desk <>",
    ]


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(journals(max_actions=4))
def test_generated_journals_carry_the_fields_to_the_transcript(journal: Any) -> None:
    conversation = reducer.fold(wire.decode_object(frame) for frame in journal.frames)
    got = {
        m.key: (m.agent_name, tuple((a.title, a.contact_number) for a in m.call_actions))
        for m in conversation.transcript
    }
    want = {expected_key(m): (m.agent_name, m.call_actions) for m in journal.expected.messages}
    assert got == want


def test_a_call_action_without_a_title_renders_as_call() -> None:
    text = render_text(fold(agent_message(3, chat_call_actions=[{"contact_number": "+1 555"}])))
    assert "      [call] call <+1 555>" in text.splitlines()
