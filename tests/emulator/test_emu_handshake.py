"""WebSocket handshake failures and replay on connect."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import anyio
import pytest

from polyai_messaging.emulator import EmulatorConfig

from .helpers import Harness, close_code, create_session, mint_token, start, types
from .helpers import rejection as rejected_url
from .wsclient import ConnectionRejected

pytestmark = pytest.mark.anyio


async def rejection(harness: Harness, **query: str) -> ConnectionRejected:
    return await rejected_url(f"{harness.emulator.ws_url}?{urlencode(query)}")


def body_message(rejected: ConnectionRejected) -> str:
    assert rejected.body is not None
    body = json.loads(rejected.body)
    assert body["error"] == body["message"]
    message: str = body["message"]
    return message


@pytest.mark.parametrize(
    "query",
    [{}, {"session_id": "x"}, {"access_token": "x"}, {"session_id": "", "access_token": "x"}],
)
async def test_missing_parameters_400(harness: Harness, query: dict[str, str]) -> None:
    rejected = await rejection(harness, **query)
    assert rejected.status_code == 400
    assert body_message(rejected) == "invalid connection parameters"


async def test_unknown_session_404(harness: Harness) -> None:
    token, _ = await harness.new_session()
    rejected = await rejection(harness, session_id="nope", access_token=token)
    assert rejected.status_code == 404
    assert body_message(rejected) == "session not found"


async def test_bad_token_401(harness: Harness) -> None:
    _, session_id = await harness.new_session()
    rejected = await rejection(harness, session_id=session_id, access_token="garbage")
    assert rejected.status_code == 401
    assert body_message(rejected) == "authentication failed"


async def test_token_of_other_connector_401() -> None:
    config = EmulatorConfig.fast(connectors={"a": "a.example", "b": "b.example"})
    async with start(config) as harness:
        token_a = await mint_token(harness.http, "a", "a.example")
        token_a2 = await mint_token(harness.http, "a", "a.example")
        token_b = await mint_token(harness.http, "b", "b.example")
        session_id = await create_session(harness.http, token_a)
        rejected = await rejection(harness, session_id=session_id, access_token=token_b)
        assert rejected.status_code == 401
        assert body_message(rejected) == "authentication failed"
        # Tokens are per connector: another token of the same connector is accepted.
        async with harness.connect(session_id, token_a2) as client:
            assert types(await client.batch()) == ["SESSION_START"]


async def test_connection_limit_429() -> None:
    async with start(EmulatorConfig.fast(max_connections_per_session=2)) as harness:
        token, session_id = await harness.new_session()
        async with harness.connect(session_id, token), harness.connect(session_id, token):
            rejected = await rejection(harness, session_id=session_id, access_token=token)
            assert rejected.status_code == 429
            assert body_message(rejected) == "connection limit exceeded for session"
        # Both closed: there is room again.
        with anyio.fail_after(5):
            while harness.state.open_socket_count(session_id):
                await anyio.sleep(0.01)
        async with harness.connect(session_id, token) as client:
            await client.batch()


async def test_other_path_404(harness: Harness) -> None:
    rejected = await rejected_url(harness.emulator.ws_url.replace("/ws", "/elsewhere"))
    assert rejected.status_code == 404


async def test_new_session_replay_is_one_batch_with_session_start(harness: Harness) -> None:
    token, session_id = await harness.new_session()
    async with harness.connect(session_id, token) as client:
        frame = await client.frame()
    assert frame["type"] == "EVENT_TYPE_EVENT_BATCH"
    assert frame["sequence"] is None
    assert frame["id"]
    assert frame["timestamp"].endswith("Z")
    (start,) = frame["payload"]["events"]
    assert start["type"] == "EVENT_TYPE_SESSION_START"
    assert start["sequence"] == 1
    assert set(start) == {"id", "sequence", "timestamp", "type", "payload"}


async def joined_session(harness: Harness) -> tuple[str, str, int]:
    """A session whose agent has joined; returns (token, session id, last sequence)."""
    async with harness.session_socket() as client:
        await client.join()
    session = harness.state.session(client.session_id)
    return client.token, client.session_id, session.journal.last_sequence


@pytest.mark.parametrize("form", ["{n}", "seq:{n}"])
async def test_replay_after_cursor(harness: Harness, form: str) -> None:
    token, session_id, last = await joined_session(harness)
    assert last == 5  # START, JOIN echo, JOINED, THINKING, greeting
    async with harness.connect(session_id, token, cursor=form.format(n=2)) as client:
        events = await client.batch()
    assert [event["sequence"] for event in events] == [3, 4, 5]
    assert types(events) == ["POLY_AGENT_JOINED", "POLY_AGENT_THINKING", "POLY_AGENT_MESSAGE"]


@pytest.mark.parametrize("cursor", ["abc", "-3", "seq:x", "0", "seq:0"])
async def test_invalid_or_zero_cursor_replays_everything(harness: Harness, cursor: str) -> None:
    token, session_id, last = await joined_session(harness)
    async with harness.connect(session_id, token, cursor=cursor) as client:
        events = await client.batch()
    assert [event["sequence"] for event in events] == list(range(1, last + 1))


async def test_cursor_at_or_past_the_end_gives_an_empty_batch(harness: Harness) -> None:
    token, session_id, last = await joined_session(harness)
    for cursor in (last, last + 100):
        async with harness.connect(session_id, token, cursor=cursor) as client:
            assert await client.batch() == []
            # Live events still arrive afterwards.
            await client.send("HEARTBEAT")
            assert (await client.frame())["type"] == "EVENT_TYPE_HEARTBEAT"


async def test_always_prepend_session_start() -> None:
    async with start(EmulatorConfig.fast(always_prepend_session_start=True)) as harness:
        token, session_id, last = await joined_session(harness)
        async with harness.connect(session_id, token, cursor=last - 1) as client:
            events = await client.batch()
    assert [event["sequence"] for event in events] == [1, last]


class _CountingEntries(list[object]):
    """A journal's entry list that counts the entries read out of it in bulk."""

    copied = 0

    def __getitem__(self, index: Any) -> Any:
        found = super().__getitem__(index)
        if isinstance(index, slice):
            self.copied += len(found)
        return found

    def __iter__(self) -> Iterator[Any]:
        self.copied += len(self)
        return super().__iter__()


async def test_replay_reads_only_what_it_sends_even_when_prepending_session_start() -> None:
    # A replay costs the events it sends, not the history held: the SESSION_START it re-sends
    # first is looked up alone, the rest is cut from the journal's end.
    async with start(EmulatorConfig.fast(always_prepend_session_start=True)) as harness:
        token, session_id, _ = await joined_session(harness)
        for index in range(500):
            harness.state.publish(session_id, "EVENT_TYPE_POLY_AGENT_MESSAGE", {"text": f"{index}"})
        journal = harness.state.session(session_id).journal
        last = journal.last_sequence
        entries = journal._entries = _CountingEntries(journal._entries)
        async with harness.connect(session_id, token, cursor=last - 2) as client:
            events = await client.batch()
    assert [event["sequence"] for event in events] == [1, last - 1, last]
    assert entries.copied <= 2


async def test_long_history_is_split_into_batches_under_the_limit(harness: Harness) -> None:
    token, session_id = await harness.new_session()
    for index in range(200):  # ~1 MB of history
        harness.state.publish(
            session_id, "EVENT_TYPE_POLY_AGENT_MESSAGE", {"text": f"{index}:" + "x" * 5000}
        )
    async with harness.connect(session_id, token) as client:
        sequences: list[int] = []
        frames = 0
        while len(sequences) < 201:
            with anyio.fail_after(5):
                raw = await client.ws.get_message()
            assert isinstance(raw, str)
            assert len(raw.encode()) <= 131072
            frame = json.loads(raw)
            assert frame["type"] == "EVENT_TYPE_EVENT_BATCH"
            sequences += [event["sequence"] for event in frame["payload"]["events"]]
            frames += 1
    assert sequences == list(range(1, 202))
    assert frames >= 8


async def test_reconnect_to_ended_session_replays_then_closes(harness: Harness) -> None:
    async with harness.session_socket() as client:
        await client.send("USER_END_SESSION")
        await client.until("SESSION_END")
    async with harness.connect(client.session_id, client.token) as again:
        assert types(await again.batch())[-2:] == ["USER_END_SESSION", "SESSION_END"]
        assert await close_code(again) == 1000
