"""The scripted agent: join, echoes, replies, streaming and every trigger."""

from __future__ import annotations

import pytest

from polyai_messaging.emulator import ERROR_TRIGGERS, TRIGGERS, AgentPhase
from polyai_messaging.emulator._agent_catalogue import GREETING

from .helpers import Client, Event, Harness, close_code, types

pytestmark = pytest.mark.anyio

CUSTOM = {"custom": {"client_event_id": "ce-1", "local_id": "draft_1"}}


def assembled(chunks: list[Event]) -> tuple[str, list[object], list[object]]:
    """Text, attachments and suggestions of a chunk series, checking its shape."""
    assert {chunk["payload"]["message_id"] for chunk in chunks} == {
        chunks[0]["payload"]["message_id"]
    }
    assert [chunk["payload"]["chunk_index"] for chunk in chunks] == list(range(1, len(chunks) + 1))
    assert [chunk["payload"]["is_complete"] for chunk in chunks] == [False] * (len(chunks) - 1) + [
        True
    ]
    text = "".join(chunk["payload"]["text"] for chunk in chunks)
    attachments = [a for chunk in chunks for a in chunk["payload"]["attachments"]]
    suggestions = [s for chunk in chunks for s in chunk["payload"]["response_suggestions"]]
    return text, attachments, suggestions


async def test_join_flow_order_and_greeting(harness: Harness) -> None:
    async with harness.session_socket() as client:
        await client.send("REQUEST_POLY_AGENT_JOIN", metadata=CUSTOM)
        frames = [await client.frame() for _ in range(4)]
    echo, joined, thinking, greeting = frames
    assert types(frames) == [
        "REQUEST_POLY_AGENT_JOIN",
        "POLY_AGENT_JOINED",
        "POLY_AGENT_THINKING",
        "POLY_AGENT_MESSAGE",
    ]
    assert [frame["sequence"] for frame in frames] == [2, 3, 4, 5]
    assert echo["metadata"] == CUSTOM
    assert joined["payload"] == {
        "agent_name": "Ada",
        "agent_avatar_url": "https://example.com/avatars/ada.png",
    }
    assert thinking["payload"] == {}
    payload = greeting["payload"]
    assert payload["text"] == GREETING
    assert payload["message_id"].startswith("msg_")
    assert 2 <= len(payload["response_suggestions"]) <= 3
    assert all(set(s) == {"message_text"} for s in payload["response_suggestions"])
    (attachment,) = payload["attachments"]
    assert attachment["content_type"] == "ATTACHMENT_CONTENT_TYPE_URL"
    assert set(attachment) == {
        "title",
        "preview_image_url",
        "content_url",
        "content_type",
        "call_to_action_text",
    }
    assert "metadata" not in greeting


async def test_streaming_greeting(harness: Harness) -> None:
    async with harness.session_socket(streaming=True) as client:
        frames = await client.join()
    assert types(frames[:3]) == [
        "REQUEST_POLY_AGENT_JOIN",
        "POLY_AGENT_JOINED",
        "POLY_AGENT_THINKING",
    ]
    chunks = frames[3:]
    assert len(chunks) >= 3
    assert set(types(chunks)) == {"POLY_AGENT_MESSAGE_CHUNK"}
    text, attachments, suggestions = assembled(chunks)
    assert text == GREETING
    assert len(attachments) == 1
    assert 2 <= len(suggestions) <= 3
    assert chunks[-1]["payload"]["text"] == ""  # the final chunk only carries the suggestions
    # Every chunk is journaled with its own sequence.
    sequences = [chunk["sequence"] for chunk in chunks]
    assert sequences == list(range(sequences[0], sequences[0] + len(chunks)))


async def test_user_message_echo_and_reply(harness: Harness) -> None:
    async with harness.session_socket() as client:
        await client.join()
        await client.say("Where is my order 123?", CUSTOM)
        echo, thinking, reply = [await client.frame() for _ in range(3)]
    assert echo["type"] == "EVENT_TYPE_USER_MESSAGE"
    assert echo["payload"]["text"] == "Where is my order 123?"
    assert echo["payload"]["message_id"].startswith("msg_")
    assert echo["metadata"] == CUSTOM
    assert isinstance(echo["sequence"], int)
    assert thinking["type"] == "EVENT_TYPE_POLY_AGENT_THINKING"
    assert reply["type"] == "EVENT_TYPE_POLY_AGENT_MESSAGE"
    assert "Where is my order 123?" in reply["payload"]["text"]
    assert reply["payload"]["response_suggestions"]


async def test_replies_are_deterministic_per_text(harness: Harness) -> None:
    replies = []
    for _ in range(2):
        async with harness.session_socket() as client:
            await client.join()
            await client.say("hello there")
            replies.append((await client.until("POLY_AGENT_MESSAGE"))[-1]["payload"]["text"])
    assert replies[0] == replies[1]
    async with harness.session_socket() as client:
        await client.join()
        await client.say("something else")
        other = (await client.until("POLY_AGENT_MESSAGE"))[-1]["payload"]["text"]
    assert other != replies[0]


async def test_each_resend_gets_its_own_message_id(harness: Harness) -> None:
    async with harness.session_socket() as client:
        await client.join()
        await client.say("same", CUSTOM)
        await client.say("same", CUSTOM)
        frames = await client.until("POLY_AGENT_MESSAGE")
        frames += await client.until("POLY_AGENT_MESSAGE")
    echoes = [f for f in frames if f["type"] == "EVENT_TYPE_USER_MESSAGE"]
    assert len({echo["payload"]["message_id"] for echo in echoes}) == 2


async def test_message_before_join_is_conversation_not_found(harness: Harness) -> None:
    async with harness.session_socket() as client:
        await client.say("hi", CUSTOM)
        echo, error = await client.frame(), await client.frame()
    assert echo["type"] == "EVENT_TYPE_USER_MESSAGE"
    assert error["type"] == "EVENT_TYPE_SYSTEM_MESSAGE"
    assert error["payload"] == {
        "level": "SYSTEM_MESSAGE_LEVEL_ERROR",
        "message": "Error: Conversation not found",
    }
    assert error["metadata"] == CUSTOM
    assert isinstance(error["sequence"], int)  # journaled: everyone in the session sees it


async def test_second_join_is_only_echoed(harness: Harness) -> None:
    async with harness.session_socket() as client:
        await client.join()
        await client.send("REQUEST_POLY_AGENT_JOIN")
        assert types([await client.frame()]) == ["REQUEST_POLY_AGENT_JOIN"]
        assert await client.silent(0.2)


async def live_agent(client: Client) -> list[Event]:
    await client.join()
    await client.say("I want a human please")
    return await client.until("LIVE_AGENT_MESSAGE")


async def test_server_managed_handoff(harness: Harness) -> None:
    async with harness.session_socket() as client:
        frames = await live_agent(client)
        assert types(frames) == [
            "USER_MESSAGE",
            "POLY_AGENT_TRIGGERED_HANDOFF",
            "POLY_AGENT_LEFT",
            "HANDOFF_ACCEPTED",
            "HANDOFF_QUEUE_STATUS",
            "HANDOFF_QUEUE_STATUS",
            "LIVE_AGENT_JOINED",
            "LIVE_AGENT_TYPING",
            "LIVE_AGENT_MESSAGE",
        ]
        queue = [f["payload"] for f in frames if f["type"] == "EVENT_TYPE_HANDOFF_QUEUE_STATUS"]
        assert [q["position_in_queue"] for q in queue] == [2, 1]
        assert all(q["queue_name"] and q["estimated_wait_seconds"] > 0 for q in queue)
        agent = frames[6]["payload"]["agent"]
        assert agent["name"] == "Sarah"
        assert set(agent) == {"id", "name", "avatar_url"}
        typing = frames[7]
        assert typing["sequence"] is None
        assert typing["payload"] == {"state": "TYPING_STATE_STARTED", "agent_id": agent["id"]}
        assert frames[8]["payload"]["agent_id"] == agent["id"]
        assert (await client.frame())["payload"]["state"] == "TYPING_STATE_STOPPED"
        assert harness.state.session(client.session_id).phase is AgentPhase.LIVE_AGENT

        # Later messages go to the live agent.
        await client.say("Can you check table availability?")
        turn = await client.until("LIVE_AGENT_MESSAGE")
        assert types(turn) == ["USER_MESSAGE", "LIVE_AGENT_TYPING", "LIVE_AGENT_MESSAGE"]
        assert "table availability" in turn[-1]["payload"]["text"]
        await client.frame()  # typing stopped

        await client.say("ok bye")
        ending = await client.until("SESSION_END")
        assert types(ending) == ["USER_MESSAGE", "LIVE_AGENT_LEFT", "SESSION_END"]
        assert ending[-1]["payload"] == {"reason": "REASON_NATURAL_END"}
        assert await close_code(client) == 1000
    journal = harness.state.session(client.session_id).journal.types()
    assert "EVENT_TYPE_LIVE_AGENT_TYPING" not in journal  # transient


async def test_client_managed_handoff(harness: Harness) -> None:
    async with harness.session_socket() as client:
        await client.join()
        await client.say("Please arrange a CALLBACK")
        frames = await client.until("POLY_AGENT_LEFT")
        assert await client.silent(0.2)
    assert types(frames) == [
        "USER_MESSAGE",
        "POLY_AGENT_TRIGGERED_HANDOFF",
        "CLIENT_HANDOFF_REQUIRED",
        "POLY_AGENT_LEFT",
    ]
    assert frames[2]["payload"] == {"reason": "COMPLEX_QUERY", "queue_name": "Support Queue"}


async def test_failed_handoff_then_rejoin(harness: Harness) -> None:
    async with harness.session_socket() as client:
        await client.join()
        await client.say("handoff fail")
        frames = await client.until("HANDOFF_FAILED")
        assert types(frames) == [
            "USER_MESSAGE",
            "POLY_AGENT_TRIGGERED_HANDOFF",
            "POLY_AGENT_LEFT",
            "HANDOFF_ACCEPTED",
            "HANDOFF_FAILED",
        ]
        # No agent now; the client may bring the AI back.
        await client.say("anyone?")
        assert (await client.until("SYSTEM_MESSAGE"))[-1]["payload"]["message"] == (
            "Error: Conversation not found"
        )
        rejoin = await client.join()
        assert types(rejoin)[:2] == ["REQUEST_POLY_AGENT_JOIN", "POLY_AGENT_JOINED"]


async def test_handoff_timeout(harness: Harness) -> None:
    async with harness.session_socket() as client:
        await client.join()
        await client.say("test a Handoff Timeout")
        frames = await client.until("HANDOFF_TIMEOUT")
    assert types(frames) == [
        "USER_MESSAGE",
        "POLY_AGENT_TRIGGERED_HANDOFF",
        "POLY_AGENT_LEFT",
        "HANDOFF_ACCEPTED",
        "HANDOFF_QUEUE_STATUS",
        "HANDOFF_TIMEOUT",
    ]


@pytest.mark.parametrize("text", ["Parlez-vous FRANÇAIS ?", "french please"])
async def test_language_change(harness: Harness, text: str) -> None:
    async with harness.session_socket() as client:
        await client.join()
        await client.say(text)
        frames = await client.until("POLY_AGENT_MESSAGE")
    assert types(frames) == [
        "USER_MESSAGE",
        "LANGUAGE_CHANGED",
        "POLY_AGENT_THINKING",
        "POLY_AGENT_MESSAGE",
    ]
    assert frames[1]["payload"] == {"language_code": "fr-FR"}
    assert isinstance(frames[1]["sequence"], int)


async def test_goodbye_ends_the_session(harness: Harness) -> None:
    async with harness.session_socket() as client:
        await client.join()
        await client.say("Goodbye!")
        frames = await client.until("SESSION_END")
        assert types(frames) == [
            "USER_MESSAGE",
            "POLY_AGENT_THINKING",
            "POLY_AGENT_MESSAGE",
            "SESSION_END",
        ]
        assert frames[-1]["payload"] == {"reason": "REASON_NATURAL_END"}
        assert await close_code(client) == 1000
    assert harness.state.session(client.session_id).end_reason == "REASON_NATURAL_END"


@pytest.mark.parametrize("name", sorted(ERROR_TRIGGERS))
async def test_error_triggers(harness: Harness, name: str) -> None:
    async with harness.session_socket() as client:
        await client.join()
        await client.say(f"please ERROR:{name} now", CUSTOM)
        frames = await client.until("SYSTEM_MESSAGE")
    error = frames[-1]
    assert error["payload"] == {
        "level": "SYSTEM_MESSAGE_LEVEL_ERROR",
        "message": ERROR_TRIGGERS[name],
    }
    assert error["metadata"] == CUSTOM
    assert isinstance(error["sequence"], int)
    assert "POLY_AGENT_MESSAGE" not in types(frames)


async def test_catalogue_strings_are_exact() -> None:
    assert ERROR_TRIGGERS["stream-error"] == "Sorry, I encountered an error. Please try again."
    assert ERROR_TRIGGERS["conversation-id-not-found"] == (
        "Error: Conversation ID not found in session"
    )
    assert len(ERROR_TRIGGERS) == 12
    assert {"human", "callback", "handoff fail", "handoff timeout", "goodbye"} <= set(TRIGGERS)
    assert all(f"error:{name}" in TRIGGERS for name in ERROR_TRIGGERS)


async def test_stream_error_in_streaming_mode(harness: Harness) -> None:
    async with harness.session_socket(streaming=True) as client:
        await client.join()
        await client.say("error:stream-error")
        frames = await client.until("SYSTEM_MESSAGE")
    chunks = [f for f in frames if f["type"] == "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK"]
    assert types(frames)[:2] == ["USER_MESSAGE", "POLY_AGENT_THINKING"]
    assert chunks
    assert not any(chunk["payload"]["is_complete"] for chunk in chunks)
    assert [c["payload"]["chunk_index"] for c in chunks] == list(range(1, len(chunks) + 1))


async def test_conversation_lost_errors_allow_rejoin(harness: Harness) -> None:
    async with harness.session_socket() as client:
        await client.join()
        await client.say("error:unable-to-start")
        await client.until("SYSTEM_MESSAGE")
        rejoin = await client.join()
    assert "POLY_AGENT_JOINED" in types(rejoin)


async def test_forward_failed_during_live_handoff(harness: Harness) -> None:
    async with harness.session_socket() as client:
        await live_agent(client)
        await client.frame()  # typing stopped
        await client.say("error:forward-failed")
        frames = await client.until("SYSTEM_MESSAGE")
    assert frames[-1]["payload"]["message"] == "Failed to forward message to live agent"


@pytest.mark.parametrize("name", ["nonsense", "rate_limit"])
async def test_unknown_error_name_gets_a_hint(harness: Harness, name: str) -> None:
    async with harness.session_socket() as client:
        await client.join()
        await client.say(f"error:{name}")
        reply = (await client.until("POLY_AGENT_MESSAGE"))[-1]
    assert f"I don't know the error '{name}'" in reply["payload"]["text"]  # the whole name
    assert "error:high-load" in reply["payload"]["text"]
