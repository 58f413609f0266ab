"""Client frames on the socket: validation, heartbeats, ending, idle expiry, fan-out."""

from __future__ import annotations

import json

import anyio
import pytest

from polyai_messaging.emulator import EmulatorConfig

from .helpers import Harness, close_code, rejection, start, types

pytestmark = pytest.mark.anyio

INVALID = "Unknown event type or invalid message format"


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("{not json", INVALID),
        ('{"type": "EVENT_TYPE_FLY", "payload": {}}', INVALID),
        ('"just a string"', INVALID),
        (
            '{"type": "EVENT_TYPE_POLY_AGENT_MESSAGE", "payload": {}}',
            "Event type not allowed: EVENT_TYPE_POLY_AGENT_MESSAGE",
        ),
        (
            '{"type": "EVENT_TYPE_SESSION_START", "payload": {}}',
            "Event type not allowed: EVENT_TYPE_SESSION_START",
        ),
    ],
)
async def test_invalid_frames_get_a_system_message_and_the_socket_stays_open(
    harness: Harness, frame: str, message: str
) -> None:
    async with harness.session_socket() as client:
        await client.ws.send_message(frame)
        error = await client.frame()
        assert error["type"] == "EVENT_TYPE_SYSTEM_MESSAGE"
        assert error["payload"] == {"level": "SYSTEM_MESSAGE_LEVEL_ERROR", "message": message}
        assert error["sequence"] is None  # not journaled: it answers one socket
        await client.send("HEARTBEAT")
        assert (await client.frame())["type"] == "EVENT_TYPE_HEARTBEAT"
    assert harness.state.session(client.session_id).journal.types() == ["EVENT_TYPE_SESSION_START"]


async def test_error_echoes_metadata(harness: Harness) -> None:
    async with harness.session_socket() as client:
        frame = {
            "type": "EVENT_TYPE_HANDOFF_FAILED",
            "payload": {},
            "metadata": {"custom": {"a": "b"}},
        }
        await client.ws.send_message(json.dumps(frame))
        error = await client.frame()
    assert error["metadata"] == {"custom": {"a": "b"}}


async def test_binary_frames_are_invalid(harness: Harness) -> None:
    async with harness.session_socket() as client:
        await client.ws.send_message(b'{"type": "EVENT_TYPE_HEARTBEAT", "payload": {}}')
        assert (await client.frame())["payload"]["message"] == INVALID


async def test_oversized_frame_is_message_too_large() -> None:
    async with (
        start(EmulatorConfig.fast(max_frame_bytes=1000)) as harness,
        harness.session_socket() as client,
    ):
        await client.join()
        await client.say("x" * 2000)
        error = await client.frame()
        assert error["payload"] == {
            "level": "SYSTEM_MESSAGE_LEVEL_ERROR",
            "message": "Message too large",
        }
        await client.say("small")
        assert (await client.frame())["type"] == "EVENT_TYPE_USER_MESSAGE"


async def test_frame_at_the_limit_is_accepted(harness: Harness) -> None:
    async with harness.session_socket() as client:
        frame = json.dumps({"type": "EVENT_TYPE_HEARTBEAT", "payload": {"pad": ""}})
        padding = 131072 - len(frame.encode())
        await client.send("HEARTBEAT", {"pad": "y" * padding})
        assert (await client.frame())["type"] == "EVENT_TYPE_HEARTBEAT"


async def test_heartbeat_echo_is_transient(harness: Harness) -> None:
    async with harness.session_socket() as client:
        await client.send("HEARTBEAT", metadata={"custom": {"n": "1"}})
        echo = await client.frame()
    assert echo["type"] == "EVENT_TYPE_HEARTBEAT"
    assert echo["sequence"] is None
    assert echo["id"]
    assert echo["timestamp"].endswith("Z")
    assert echo["metadata"] == {"custom": {"n": "1"}}
    assert len(harness.state.session(client.session_id).journal) == 1


async def test_user_typing_is_not_echoed(harness: Harness) -> None:
    async with harness.session_socket() as client:
        await client.send("USER_TYPING", {"state": "TYPING_STATE_STARTED"})
        await client.send("HEARTBEAT")
        assert (await client.frame())["type"] == "EVENT_TYPE_HEARTBEAT"


async def test_user_end_session(harness: Harness) -> None:
    async with harness.session_socket() as client:
        await client.join()
        await client.send("USER_END_SESSION", metadata={"custom": {"k": "v"}})
        echo, end = await client.frame(), await client.frame()
        assert echo["type"] == "EVENT_TYPE_USER_END_SESSION"
        assert echo["metadata"] == {"custom": {"k": "v"}}
        assert end["type"] == "EVENT_TYPE_SESSION_END"
        assert end["payload"] == {"reason": "REASON_USER_END"}
        assert end["sequence"] == echo["sequence"] + 1
        assert await close_code(client) == 1000


async def test_nothing_follows_session_end() -> None:
    async with (
        start(EmulatorConfig.fast(close_grace_seconds=0.3)) as harness,
        harness.session_socket() as client,
    ):
        await client.send("USER_END_SESSION")
        await client.until("SESSION_END")
        await client.send("HEARTBEAT")
        assert await close_code(client) == 1000  # no heartbeat echo before the close


async def test_idle_timeout_expires_the_session() -> None:
    async with start(EmulatorConfig.fast(idle_timeout_seconds=0.3)) as harness:
        token, session_id = await harness.new_session()
        async with harness.connect(session_id, token) as client:
            await client.batch()
            end = (await client.until("SESSION_END", timeout=3))[-1]
            assert end["payload"] == {"reason": "REASON_USER_ABANDONED"}
            assert await close_code(client) == 1000
        assert harness.state.session(session_id).expired
        rejected = await rejection(harness.emulator.ws_connect_url(session_id, token))
        assert rejected.status_code == 404


async def test_heartbeats_keep_the_session_alive() -> None:
    async with start(EmulatorConfig.fast(idle_timeout_seconds=0.5)) as harness:
        async with harness.session_socket() as client:
            for _ in range(10):  # 1 s in total, twice the idle timeout
                await anyio.sleep(0.1)
                await client.send("HEARTBEAT")
                assert (await client.frame())["type"] == "EVENT_TYPE_HEARTBEAT"
        assert not harness.state.session(client.session_id).expired


async def test_expire_session_from_tests(harness: Harness) -> None:
    async with harness.session_socket() as client:
        harness.state.expire_session(client.session_id)
        assert (await client.frame())["payload"] == {"reason": "REASON_USER_ABANDONED"}
        assert await close_code(client) == 1000


async def test_fan_out_to_every_socket(harness: Harness) -> None:
    token, session_id = await harness.new_session()
    async with (
        harness.connect(session_id, token) as first,
        harness.connect(session_id, token) as second,
    ):
        await first.batch()
        await second.batch()
        await first.join()
        frames = await second.until("POLY_AGENT_MESSAGE")
        assert types(frames) == [
            "REQUEST_POLY_AGENT_JOIN",
            "POLY_AGENT_JOINED",
            "POLY_AGENT_THINKING",
            "POLY_AGENT_MESSAGE",
        ]
        await second.say("from the second tab", {"custom": {"tab": "2"}})
        echo_on_first = await first.frame()
        assert echo_on_first["payload"]["text"] == "from the second tab"
        assert echo_on_first["metadata"] == {"custom": {"tab": "2"}}
        assert (await second.frame())["id"] == echo_on_first["id"]


async def test_agent_keeps_working_while_disconnected() -> None:
    """A reply produced while no socket is open arrives in the next replay."""
    async with start(EmulatorConfig.fast(reply_delay_seconds=0.2)) as harness:
        token, session_id = await harness.new_session()
        async with harness.connect(session_id, token) as client:
            await client.batch()
            await client.send("REQUEST_POLY_AGENT_JOIN")
            assert (await client.frame())["sequence"] == 2
        with anyio.fail_after(5):
            while harness.state.session(session_id).journal.last_sequence < 5:
                await anyio.sleep(0.02)
        async with harness.connect(session_id, token, cursor=2) as client:
            assert types(await client.batch()) == [
                "POLY_AGENT_JOINED",
                "POLY_AGENT_THINKING",
                "POLY_AGENT_MESSAGE",
            ]


async def test_ws_rate_limit_drops_excess_frames() -> None:
    async with (
        start(EmulatorConfig.fast(ws_rate_limit_per_second=1.0)) as harness,
        harness.session_socket() as client,
    ):
        for _ in range(5):  # a burst of one is allowed, then one frame per second
            await client.send("HEARTBEAT")
        echoes = 0
        while not await client.silent(0.2):
            echoes += 1
        assert echoes == 1


async def test_publish_injects_arbitrary_events(harness: Harness) -> None:
    async with harness.session_socket() as client:
        event = harness.state.publish(client.session_id, "EVENT_TYPE_FROM_THE_FUTURE", {"x": 1})
        assert event is not None
        received = await client.frame()
    assert received == event
    assert received["sequence"] == 2
