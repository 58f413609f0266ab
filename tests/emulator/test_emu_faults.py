"""Fault injection, switched at runtime through ``emulator.state``."""

from __future__ import annotations

import json

import anyio
import anyio.abc
import pytest

from polyai_messaging.emulator import REFUSAL_BODIES, EmulatorConfig, Faults, parse_faults

from .helpers import Harness, close_code, rejection, start, types

pytestmark = pytest.mark.anyio

ABNORMAL_CLOSURE = 1006  # the TCP connection ended without a WebSocket close frame


async def joined(harness: Harness) -> tuple[str, str]:
    async with harness.session_socket() as client:
        await client.join()
    return client.token, client.session_id


async def test_drop_after_aborts_without_close_frame(harness: Harness) -> None:
    token, session_id = await harness.new_session()
    harness.state.faults = parse_faults("drop-after=2:1")
    async with harness.connect(session_id, token) as client:
        await client.batch()  # frame 1
        await client.send("HEARTBEAT")
        assert (await client.frame())["type"] == "EVENT_TYPE_HEARTBEAT"  # frame 2
        assert await close_code(client) == ABNORMAL_CLOSURE
    # ":1" dropped one socket only; the session itself is intact.
    async with harness.connect(session_id, token) as client:
        await client.batch()
        await client.send("HEARTBEAT")
        await client.send("HEARTBEAT")
        assert types([await client.frame(), await client.frame()]) == ["HEARTBEAT", "HEARTBEAT"]


async def test_drop_after_zero_drops_before_the_replay(harness: Harness) -> None:
    token, session_id = await harness.new_session()
    harness.state.set_faults("drop-after=0")
    async with harness.connect(session_id, token) as client:
        assert await close_code(client) == ABNORMAL_CLOSURE


async def test_drop_falls_back_to_close_4002_without_transport_access(harness: Harness) -> None:
    harness.state.transport_aborter = None
    token, session_id = await harness.new_session()
    harness.state.faults = Faults(drop_after=1)
    async with harness.connect(session_id, token) as client:
        await client.batch()
        assert await close_code(client) == 4002


async def test_faults_switched_on_an_open_socket(harness: Harness) -> None:
    async with harness.session_socket() as client:
        harness.state.faults = parse_faults("drop-after=1")  # counts restart now
        await client.send("HEARTBEAT")
        assert (await client.frame())["type"] == "EVENT_TYPE_HEARTBEAT"
        assert await close_code(client) == ABNORMAL_CLOSURE


async def test_drop_sockets_now(harness: Harness) -> None:
    async with harness.session_socket() as client:
        assert harness.state.drop_sockets(client.session_id) == 1
        assert await close_code(client) == ABNORMAL_CLOSURE


async def test_duplicate_sends_every_frame_twice(harness: Harness) -> None:
    token, session_id = await harness.new_session()
    harness.state.faults = parse_faults("duplicate")
    async with harness.connect(session_id, token) as client:
        first, second = await client.frame(), await client.frame()
        assert first == second
        assert first["type"] == "EVENT_TYPE_EVENT_BATCH"
        await client.send("HEARTBEAT")
        echo, again = await client.frame(), await client.frame()
        assert echo == again
        harness.state.faults = Faults()
        await client.send("HEARTBEAT")
        assert (await client.frame())["type"] == "EVENT_TYPE_HEARTBEAT"
        assert await client.silent(0.1)


async def test_overlap_resends_recent_events_after_the_replay(harness: Harness) -> None:
    token, session_id = await joined(harness)
    last = harness.state.session(session_id).journal.last_sequence
    harness.state.faults = parse_faults("overlap")
    async with harness.connect(session_id, token, cursor=last) as client:
        assert await client.batch() == []
        overlap = [await client.frame() for _ in range(3)]
    assert [event["sequence"] for event in overlap] == [last - 2, last - 1, last]
    journal = harness.state.session(session_id).journal.events
    assert overlap == journal[-3:]


async def test_reorder_reverses_batches(harness: Harness) -> None:
    token, session_id = await joined(harness)
    harness.state.faults = parse_faults("reorder")
    async with harness.connect(session_id, token) as client:
        events = await client.batch()
    assert [event["sequence"] for event in events] == [5, 4, 3, 2, 1]


async def test_delay_slows_every_frame(harness: Harness) -> None:
    async with harness.session_socket() as client:
        harness.state.faults = parse_faults("delay=0.2")
        started = anyio.current_time()
        await client.send("HEARTBEAT")
        await client.frame()
        assert anyio.current_time() - started >= 0.2


@pytest.mark.parametrize("status", sorted(REFUSAL_BODIES))
async def test_refuse_handshakes(harness: Harness, status: int) -> None:
    token, session_id = await harness.new_session()
    url = harness.emulator.ws_connect_url(session_id, token)
    harness.state.faults = parse_faults(f"refuse={status}:2")
    for _ in range(2):
        rejected = await rejection(url)
        assert rejected.status_code == status
        assert rejected.body is not None
        assert json.loads(rejected.body)["message"] == REFUSAL_BODIES[status]
    async with harness.connect(session_id, token) as client:
        assert types(await client.batch()) == ["SESSION_START"]


async def test_faults_from_the_configuration() -> None:
    async with start(EmulatorConfig.fast(faults=parse_faults("refuse=404"))) as harness:
        token, session_id = await harness.new_session()
        url = harness.emulator.ws_connect_url(session_id, token)
        assert (await rejection(url)).status_code == 404
        async with harness.connect(session_id, token) as client:
            await client.batch()


async def test_freeze_keeps_the_connection_open_but_silent(harness: Harness) -> None:
    token, session_id = await harness.new_session()
    harness.state.faults = parse_faults("freeze-after=1:1")
    async with harness.connect(session_id, token) as frozen:
        await frozen.batch()
        await frozen.send("HEARTBEAT")
        assert await frozen.silent(0.3)  # no echo, and no close either
        assert harness.state.open_socket_count(session_id) == 1
        # The session itself carries on: another socket works and sees events.
        async with harness.connect(session_id, token) as other:
            await other.batch()
            await other.join()
        assert await frozen.silent(0.1)
    # Once the client gives up and closes, the emulator notices.
    with anyio.fail_after(5):
        while harness.state.open_socket_count(session_id):
            await anyio.sleep(0.01)


async def serve_until(
    config: EmulatorConfig,
    stop: anyio.Event,
    *,
    task_status: anyio.abc.TaskStatus[Harness] = anyio.TASK_STATUS_IGNORED,
) -> None:
    async with start(config) as harness:
        task_status.started(harness)
        await stop.wait()


async def test_frozen_socket_does_not_block_shutdown() -> None:
    stop = anyio.Event()
    config = EmulatorConfig.fast(faults=parse_faults("freeze-after=1"))
    async with anyio.create_task_group() as tasks:
        harness: Harness = await tasks.start(serve_until, config, stop)
        token, session_id = await harness.new_session()
        async with harness.connect(session_id, token) as frozen:
            await frozen.batch()
            stopping = anyio.current_time()
            stop.set()
            # Frozen sockets are aborted at shutdown rather than waited for.
            assert await close_code(frozen) == ABNORMAL_CLOSURE
    assert anyio.current_time() - stopping < 1.5


def test_unknown_fault_name() -> None:
    with pytest.raises(ValueError, match="unknown fault 'jitter'"):
        parse_faults("jitter=3")


@pytest.mark.parametrize("code", [1000, 1001, 3000, 4001, 4999])
async def test_close_ends_the_next_socket_right_after_its_replay(
    harness: Harness, code: int
) -> None:
    token, session_id = await joined(harness)
    harness.state.set_faults(f"close={code}")
    async with harness.connect(session_id, token) as client:
        assert types(await client.batch())[0] == "SESSION_START"
        assert await close_code(client, frames_allowed=False) == code
    # One socket only: the next one is served as usual, and the session carries on.
    async with harness.connect(session_id, token) as client:
        assert len(await client.batch()) == len(harness.state.session(session_id).journal)
        await client.send("HEARTBEAT")
        assert (await client.frame())["type"] == "EVENT_TYPE_HEARTBEAT"
    assert not harness.state.session(session_id).ended


async def test_close_counts_sockets_and_sends_nothing_live(harness: Harness) -> None:
    token, session_id = await harness.new_session()
    async with harness.connect(session_id, token) as watcher:
        await watcher.batch()
        harness.state.set_faults("close=4001:2")
        for _ in range(2):
            async with harness.connect(session_id, token) as client:
                await client.batch()
                # An event published now reaches the open socket, not the one being closed.
                await watcher.send("HEARTBEAT")
                assert (await watcher.frame())["type"] == "EVENT_TYPE_HEARTBEAT"
                assert await close_code(client, frames_allowed=False) == 4001
        async with harness.connect(session_id, token) as client:
            await client.batch()
            assert await client.silent(0.1)


async def test_close_from_the_configuration() -> None:
    async with start(EmulatorConfig.fast(faults=parse_faults("close=4001"))) as harness:
        token, session_id = await harness.new_session()
        async with harness.connect(session_id, token) as client:
            await client.batch()
            assert await close_code(client) == 4001


async def test_no_replay_sends_nothing_until_something_live_happens(harness: Harness) -> None:
    token, session_id = await joined(harness)
    harness.state.set_faults("no-replay=2,overlap")
    for _ in range(2):
        async with harness.connect(session_id, token) as client:
            assert await client.silent(0.2)
            await client.send("HEARTBEAT")
            assert (await client.frame())["type"] == "EVENT_TYPE_HEARTBEAT"
            await client.say("hello")
            assert types(await client.until("POLY_AGENT_MESSAGE"))[0] == "USER_MESSAGE"
    # The third socket gets its replay again (and the overlap, which is still on).
    async with harness.connect(session_id, token) as client:
        assert len(await client.batch()) == len(harness.state.session(session_id).journal)


async def test_no_replay_and_close_together_close_without_a_frame(harness: Harness) -> None:
    token, session_id = await harness.new_session()
    harness.state.set_faults("no-replay,close=4001")
    async with harness.connect(session_id, token) as client:
        assert await close_code(client, frames_allowed=False) == 4001
