"""Links that break, and the resumes that follow: drops, late or missing replays, handshakes
that go wrong, oversized messages, a session that expires while the link is down."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from polyai_messaging.driver import (
    Backoff,
    DeliveryStatus,
    FinishKind,
    ResumeKind,
    SessionConfig,
)
from polyai_messaging.emulator import EmulatorConfig
from polyai_messaging.runtime import MAX_INBOUND_MESSAGE, Token
from polyai_messaging.testing import LocalEmulator, open_emulator

from .helpers import (
    TIMEOUT,
    Adapter,
    fixed_token,
    read_request,
    reconnecting,
    replied,
    reply,
    stored_copies,
    tcp_server,
    until,
    wait_for,
    websocket_server,
)

pytestmark = pytest.mark.anyio


# --- drops and resumes ----------------------------------------------------------------------


async def test_drop_mid_stream_resumes_with_cursor_and_no_duplicates(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    async with adapter.session(emulator, streaming=True) as session:
        await wait_for(session, replied(1))
        cursor_before = session.conversation.cursor
        # The echo, THINKING and the first chunk get through; then the TCP connection is cut.
        emulator.set_faults("drop-after=3:1")
        text = "tell me something rather long please"
        await session.send(text)
        broken = await wait_for(session, reconnecting)
        assert broken.conversation.streams, "the drop should happen in the middle of a stream"
        update = await wait_for(
            session, lambda u: replied(2)(u) and u.state.settled, timeout=2 * TIMEOUT
        )
        reply = update.conversation.transcript[-1]
        assert reply.text == f'You said: "{text}" (6 words). What else can I do for you?'
        assert [s.message_text for s in reply.suggestions] == ["Tell me more", "Talk to a human"]
        resume = session.last_resume
        assert resume is not None
        assert resume.kind is ResumeKind.RESUMED
        assert resume.previous_cursor > cursor_before
        counters = session.state.counters
        assert (counters.reconnects, counters.resumes, counters.duplicates_dropped) == (1, 1, 0)
        keys = [m.key for m in update.conversation.transcript]
        assert len(keys) == len(set(keys)) == 3
        assert update.conversation.cursor == len(emulator.journal(session.session_id))


async def test_a_late_replay_after_a_drop_resends_nothing_the_server_has(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    """The reproduction: the socket is cut as the message's echo is due, and the next socket's
    replay (holding that echo) comes 0.8 s late, later than the 0.5 s quiet period."""
    config = SessionConfig(backoff=Backoff(base=0.05))  # defaults but a quick reconnect
    async with adapter.session(emulator, config=config) as session:
        await wait_for(session, replied(1))
        emulator.set_faults("drop-after=0:1,delay=0.8")
        cid = await session.send("only once, please")
        await wait_for(session, lambda u: u.state.delivery(cid).status is DeliveryStatus.SENT)
        emulator.set_faults("")
        await wait_for(session, replied(2), timeout=2 * TIMEOUT)
        assert stored_copies(emulator, session.session_id) == [cid]
        assert session.state.counters.resends == 0


async def test_resuming_a_known_session_with_a_slow_replay_sends_no_second_join(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    async with adapter.session(emulator) as first:
        await wait_for(first, replied(1))
        session_id = first.session_id
    emulator.set_faults("delay=0.8")
    async with adapter.session(emulator, session_id=session_id, config=SessionConfig()) as again:
        await wait_for(again, lambda u: u.state.settled, timeout=2 * TIMEOUT)
        with anyio.move_on_after(1.0):  # time enough for a second join, were one sent
            await wait_for(again, lambda u: False)
    joins = emulator.journal(session_id).types().count("EVENT_TYPE_REQUEST_POLY_AGENT_JOIN")
    assert joins == 1


async def test_a_server_that_sends_no_replay_still_gets_a_join(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    emulator.set_faults("no-replay")
    config = SessionConfig(replay_timeout_seconds=0.5)
    async with adapter.session(emulator, config=config) as session:
        update = await wait_for(session, replied(1))
        assert update.conversation.agent_joined
    joins = emulator.journal(session.session_id).types().count("EVENT_TYPE_REQUEST_POLY_AGENT_JOIN")
    assert joins == 1


async def test_an_existing_session_id_is_resumed(adapter: Adapter, emulator: LocalEmulator) -> None:
    async with adapter.session(emulator) as first:
        await wait_for(first, replied(1))
        session_id = first.session_id
    token = await emulator.token_provider()

    async def same_token() -> Token:
        return token

    async with adapter.session(emulator, same_token, session_id=session_id) as again:
        update = await wait_for(again, replied(1))
        assert again.session_id == session_id
        assert set(emulator.state.sessions) == {session_id}
        # The history is replayed, and the agent is not asked to join a second time.
        assert len(update.conversation.transcript) == 1
        joins = emulator.journal(session_id).types().count("EVENT_TYPE_REQUEST_POLY_AGENT_JOIN")
        assert joins == 1


async def test_a_session_that_expires_while_disconnected_finishes(adapter: Adapter) -> None:
    idle = 1.0
    # The link drops and stays down: the backoff is longer than the idle timeout (the same on
    # both sides). No jitter: a full-jitter draw could fall below the idle timeout.
    client = SessionConfig(
        replay_quiet_seconds=0.05,
        idle_timeout_seconds=idle,
        backoff=Backoff(base=10 * idle, cap=10 * idle, jitter=0.0),
    )
    async with (
        open_emulator(EmulatorConfig.fast(idle_timeout_seconds=idle)) as emulator,
        adapter.session(emulator, config=client) as session,
    ):
        await wait_for(session, replied(1))
        emulator.state.drop_sockets(session.session_id)
        with anyio.fail_after(3 * idle):
            finished = await session.wait_finished()
        assert finished.kind is FinishKind.ENDED_WHILE_DISCONNECTED
        assert session.state.counters.reconnects == 1
        server_side = emulator.state.session(session.session_id)
        await until(lambda: server_side.expired)
        assert server_side.end_reason == "REASON_USER_ABANDONED"


# --- handshakes that go wrong ---------------------------------------------------------------


async def test_a_server_that_never_answers_the_upgrade_is_retried(adapter: Adapter) -> None:
    """TCP accepted, no HTTP answer: the handshake times out and the link is retried."""
    accepted: list[float] = []

    async def silent(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            accepted.append(anyio.current_time())
            await anyio.sleep_forever()

    config = SessionConfig(connect_timeout_seconds=0.2, backoff=Backoff(base=0.05))
    async with (
        tcp_server(silent) as url,
        adapter.open_session(url, fixed_token, session_id="s", config=config) as session,
    ):
        update = await wait_for(session, lambda u: u.state.generation >= 3)
        assert update.state.counters.reconnects >= 2
        assert update.state.opened_at is None
        assert session.finished is None
    assert len(accepted) >= 2


async def test_429_retry_after_delays_the_next_attempt(adapter: Adapter) -> None:
    """A handshake refused with 429 and ``Retry-After: 1`` is not retried for a second, though
    the backoff alone would retry within 50 ms."""
    attempts: list[float] = []

    async def answer(stream: anyio.abc.SocketStream) -> None:
        await read_request(stream)
        attempts.append(anyio.current_time())
        await reply(stream, b"429 Too Many Requests", b"Retry-After: 1\r\n")

    config = SessionConfig(backoff=Backoff(base=0.05, cap=0.05))
    async with (
        tcp_server(answer) as url,
        adapter.open_session(url, fixed_token, session_id="s", config=config) as session,
    ):
        refused = await wait_for(session, reconnecting)
        await until(lambda: len(attempts) == 2)
    assert refused.status is not None
    assert refused.status.reason == "handshake refused (429)"
    assert refused.status.retry_in is not None
    assert refused.status.retry_in >= 1.0
    assert attempts[1] - attempts[0] >= 1.0


async def test_messages_up_to_the_size_limit_are_read_and_a_larger_one_ends_the_link(
    adapter: Adapter,
) -> None:
    # Neither is a valid frame: each one read counts as a protocol violation.
    largest, too_large = "x" * MAX_INBOUND_MESSAGE, "y" * (MAX_INBOUND_MESSAGE + 1)
    async with (
        websocket_server([largest, largest, too_large]) as (url, connections),
        adapter.open_session(url, fixed_token, session_id="s") as session,
    ):
        update = await wait_for(session, reconnecting)
        assert update.state.counters.protocol_violations == 2
        assert update.status is not None
        # The client fails the link with 1009 ("message too big"), and tells the driver so.
        assert update.status.reason == "closed (1009)"
        await until(lambda: connections[0].close is not None)
        assert connections[0].close is not None
        assert connections[0].close[0] == 1009
