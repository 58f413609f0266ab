"""The trio adapter over real loopback sockets, against the in-process emulator.

Network-test policy (after trio-websocket's): loopback only, port 0, the real emulator, small
real-time intervals where the server's timers matter, and an absolute ``trio.fail_after`` bound
on every wait, so a regression fails fast instead of hanging.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import pytest
import trio
from trio.testing import MockClock

from polyai_messaging.core import (
    ClientHandoffRequired,
    HandoffAccepted,
    HandoffFailed,
    HandoffQueueStatus,
    HandoffTimeout,
    LiveAgentJoined,
    LiveAgentLeft,
    LiveAgentMessage,
    LocalProtocolError,
    Phase,
    PolyAgentLeft,
    PolyAgentTriggeredHandoff,
    Role,
    ServerEvent,
    SessionEnd,
)
from polyai_messaging.driver import (
    Backoff,
    DeliveryStatus,
    FinishKind,
    LinkStatus,
    Now,
    ResumeKind,
    SessionConfig,
)
from polyai_messaging.emulator import (
    DEMO_CONNECTOR_TOKEN,
    DEMO_HOST,
    EmulatorConfig,
    RunningEmulator,
    run_emulator,
)
from polyai_messaging.rest import (
    AccessToken,
    ServerError,
    connector_token_provider,
    mint_access_token,
)
from polyai_messaging.runtime import (
    EventStream,
    TokenCache,
    TokenProvider,
    TokenUnavailableError,
    Update,
)
from polyai_messaging.trio import Session, open_session

TIMEOUT = 5.0
FAST = SessionConfig(replay_quiet_seconds=0.05)


class CountingProvider:
    """A token provider that mints through the emulator and counts its calls."""

    def __init__(self, emulator: RunningEmulator, **kwargs: Any) -> None:
        self._inner = connector_token_provider(
            emulator.base_url, DEMO_CONNECTOR_TOKEN, DEMO_HOST, **kwargs
        )
        self.tokens: list[AccessToken] = []

    async def __call__(self) -> AccessToken:
        token = await self._inner()
        self.tokens.append(token)
        return token


@pytest.fixture
async def emulator() -> AsyncIterator[RunningEmulator]:
    async with run_emulator(EmulatorConfig.fast()) as running:
        yield running


@pytest.fixture
def virtual_clock() -> MockClock:
    """Virtual time that jumps to the next deadline once every task has been idle for a while
    in real time: real loopback I/O still completes before any jump."""
    return MockClock(autojump_threshold=0.1)


@asynccontextmanager
async def session_on(
    emulator: RunningEmulator, provider: TokenProvider | None = None, **kwargs: Any
) -> AsyncIterator[Session]:
    kwargs.setdefault("config", FAST)
    kwargs.setdefault("seed", 7)
    async with open_session(
        emulator.base_url, provider or CountingProvider(emulator), **kwargs
    ) as session:
        yield session


async def wait_for(
    session: Session, predicate: Callable[[Update], bool], timeout: float = TIMEOUT
) -> Update:
    """The first snapshot (current or later) satisfying ``predicate``."""
    with trio.fail_after(timeout):
        update = session.latest
        while not predicate(update):
            following = await session.next_update(update.version)
            assert following is not None, "the session closed"
            update = following
        return update


def replied(count: int) -> Callable[[Update], bool]:
    """At least ``count`` complete non-user messages, and nobody typing or streaming."""

    def check(update: Update) -> bool:
        conversation = update.conversation
        done = [m for m in conversation.transcript if m.role is not Role.USER and m.complete]
        return (
            len(done) >= count
            and not conversation.agent_thinking
            and not conversation.live_agent_typing
            and not conversation.streams
        )

    return check


def has_event(kind: type[Any]) -> Callable[[Update], bool]:
    return lambda update: any(type(e) is kind for e in update.conversation.journal.values())


def drain(stream: EventStream) -> list[ServerEvent]:
    return stream.drain()


# --- conversations --------------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "whole"])
async def test_full_conversation(emulator: RunningEmulator, streaming: bool) -> None:
    async with session_on(emulator, streaming=streaming) as session:
        update = await wait_for(session, replied(1))
        greeting = update.conversation.transcript[-1]
        assert greeting.text.startswith("Hi, I'm Ada")
        assert update.conversation.agent is not None
        assert update.conversation.agent.name == "Ada"
        first_suggestion = update.conversation.suggestions[0].message_text
        assert first_suggestion == "I have a question about my order"
        assert greeting.attachments[0].content_url == "https://example.com/locations"

        sent = await session.send("hello there")
        update = await wait_for(session, replied(2))
        assert session.delivery_status(sent) is DeliveryStatus.SENT
        assert update.conversation.transcript[-1].text == (
            'You said: "hello there" (2 words). What else can I do for you?'
        )
        picked = await session.pick(0)
        update = await wait_for(session, replied(3))
        assert update.conversation.delivered(picked) is not None
        assert update.conversation.delivered(picked).text == "Tell me more"  # type: ignore[union-attr]

        await session.end()
        with trio.fail_after(TIMEOUT):
            finished = await session.wait_finished()
        assert finished.kind is FinishKind.ENDED
        assert finished.reason == "REASON_USER_END"
        with pytest.raises(LocalProtocolError):
            await session.send("too late")
        roles = [m.role for m in session.conversation.transcript]
        assert roles == [Role.AGENT, Role.USER, Role.AGENT, Role.USER, Role.AGENT]
        events = drain(session.events())
        assert type(events[-1]) is SessionEnd
        assert session.state.counters.duplicates_dropped == 0
        assert session.latest.finished == finished
    assert emulator.state.open_socket_count(session.session_id) == 0


async def test_illegal_intents_raise_and_change_nothing(emulator: RunningEmulator) -> None:
    async with session_on(emulator) as session:
        await wait_for(session, replied(1))
        before = session.state
        with pytest.raises(LocalProtocolError):
            await session.send("   ")
        with pytest.raises(LocalProtocolError):
            await session.send("x" * 200_000)
        with pytest.raises(LocalProtocolError):
            await session.pick(99)
        assert session.state is before


# --- handoffs -------------------------------------------------------------------------------


async def test_server_managed_handoff_with_queue_and_live_agent(emulator: RunningEmulator) -> None:
    async with session_on(emulator) as session:
        events = session.events()
        await wait_for(session, replied(1))
        await session.send("Talk to a human")
        update = await wait_for(session, lambda u: replied(2)(u) and has_event(LiveAgentJoined)(u))
        conversation = update.conversation
        assert conversation.live_agent is not None
        assert conversation.live_agent.name == "Sarah"
        assert conversation.phase is Phase.ACTIVE
        live = conversation.transcript[-1]
        assert live.role is Role.LIVE_AGENT
        assert live.text.startswith("Hi, I'm Sarah")
        assert conversation.queue is not None
        assert conversation.queue.queue_position == 1

        await session.send("bye")
        with trio.fail_after(TIMEOUT):
            finished = await session.wait_finished()
        assert finished.reason == "REASON_NATURAL_END"
        kinds = [type(e) for e in drain(events)]
        handoff = [
            k
            for k in kinds
            if k
            in (
                PolyAgentTriggeredHandoff,
                PolyAgentLeft,
                HandoffAccepted,
                HandoffQueueStatus,
                LiveAgentJoined,
                LiveAgentMessage,
                LiveAgentLeft,
                SessionEnd,
            )
        ]
        assert handoff == [
            PolyAgentTriggeredHandoff,
            PolyAgentLeft,
            HandoffAccepted,
            HandoffQueueStatus,
            HandoffQueueStatus,
            LiveAgentJoined,
            LiveAgentMessage,
            LiveAgentLeft,
            SessionEnd,
        ]


async def test_client_managed_handoff(emulator: RunningEmulator) -> None:
    async with session_on(emulator) as session:
        await wait_for(session, replied(1))
        await session.send("please call me back: callback")
        update = await wait_for(
            session,
            lambda u: has_event(ClientHandoffRequired)(u) and has_event(PolyAgentLeft)(u),
        )
        required = update.conversation.client_handoff
        assert required is not None
        assert required.reason == "COMPLEX_QUERY"
        assert required.queue_name == "Support Queue"
        assert update.conversation.phase is Phase.HANDOFF
        assert session.finished is None


@pytest.mark.parametrize(
    ("text", "outcome"),
    [("handoff fail please", HandoffFailed), ("handoff timeout please", HandoffTimeout)],
)
async def test_failed_handoffs_are_recoverable(
    emulator: RunningEmulator, text: str, outcome: type[Any]
) -> None:
    async with session_on(emulator) as session:
        await wait_for(session, replied(1))
        await session.send(text)
        update = await wait_for(session, has_event(outcome))
        assert update.conversation.phase is Phase.ACTIVE
        assert not update.conversation.ended
        assert session.finished is None
        if outcome is HandoffTimeout:
            assert has_event(HandoffQueueStatus)(update)


# --- link failures --------------------------------------------------------------------------


async def test_drop_mid_stream_resumes_with_cursor_and_no_duplicates(
    emulator: RunningEmulator,
) -> None:
    async with session_on(emulator, streaming=True) as session:
        await wait_for(session, replied(1))
        cursor_before = session.conversation.cursor
        # Echo, THINKING and the first chunk get through; then the TCP connection is cut.
        emulator.state.set_faults("drop-after=3:1")
        text = "tell me something rather long please"
        await session.send(text)
        broken = await wait_for(
            session,
            lambda u: u.status is not None and u.status.status is LinkStatus.RECONNECTING,
        )
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
        assert counters.reconnects == 1
        assert counters.resumes == 1
        assert counters.duplicates_dropped == 0
        keys = [m.key for m in update.conversation.transcript]
        assert len(keys) == len(set(keys)) == 3
        journal = emulator.state.session(session.session_id).journal
        assert update.conversation.cursor == len(journal)


def stored_copies(emulator: RunningEmulator, session_id: str) -> list[str]:
    """The client_event_id of every user message the server journaled, in order."""
    return [
        entry.event["metadata"]["custom"]["client_event_id"]
        for entry in emulator.state.session(session_id).journal
        if entry.type == "EVENT_TYPE_USER_MESSAGE"
    ]


async def test_a_late_replay_after_a_drop_resends_nothing_the_server_has(
    emulator: RunningEmulator,
) -> None:
    """The reproduction: the socket is cut as the message's echo is due, and the next socket's
    replay (holding that echo) comes 0.8 s late, later than the 0.5 s quiet period."""
    config = SessionConfig(backoff=Backoff(base=0.05))  # defaults but a quick reconnect
    async with session_on(emulator, config=config) as session:
        await wait_for(session, replied(1))
        emulator.state.set_faults("drop-after=0:1,delay=0.8")
        cid = await session.send("only once, please")
        await wait_for(session, lambda u: u.state.delivery(cid).status is DeliveryStatus.SENT)
        emulator.state.set_faults("")
        await wait_for(session, replied(2), timeout=2 * TIMEOUT)
        assert stored_copies(emulator, session.session_id) == [cid]
        assert session.state.counters.resends == 0


async def test_resuming_a_known_session_with_a_slow_replay_sends_no_second_join(
    emulator: RunningEmulator,
) -> None:
    async with session_on(emulator) as first:
        await wait_for(first, replied(1))
        session_id = first.session_id
    emulator.state.set_faults("delay=0.8")
    async with session_on(emulator, session_id=session_id, config=SessionConfig()) as again:
        await wait_for(again, lambda u: u.state.settled, timeout=2 * TIMEOUT)
        with trio.move_on_after(1.0):
            await wait_for(again, lambda u: False)
    journal = emulator.state.session(session_id).journal
    assert journal.types().count("EVENT_TYPE_REQUEST_POLY_AGENT_JOIN") == 1


async def test_a_server_that_sends_no_replay_still_gets_a_join(
    emulator: RunningEmulator,
) -> None:
    emulator.state.set_faults("no-replay")
    async with session_on(emulator, config=SessionConfig()) as session:
        update = await wait_for(session, replied(1), timeout=3 * TIMEOUT)
        assert update.conversation.agent_joined
    journal = emulator.state.session(session.session_id).journal
    assert journal.types().count("EVENT_TYPE_REQUEST_POLY_AGENT_JOIN") == 1


async def test_expired_while_disconnected(virtual_clock: MockClock) -> None:
    # Production idle timeouts (600 s) on both sides, in virtual time; the wall clock the driver
    # reads follows the virtual one.
    backoff = Backoff(base=900.0, cap=900.0, jitter=0.0)
    client = SessionConfig(replay_quiet_seconds=0.05, backoff=backoff)
    async with (
        run_emulator(EmulatorConfig.fast()) as emulator,
        session_on(emulator, config=client, clock=virtual_now) as session,
    ):
        await wait_for(session, replied(1))
        # The link drops and stays down (the backoff is longer than the idle timeout).
        emulator.state.drop_sockets(session.session_id)
        with trio.fail_after(700):
            finished = await session.wait_finished()
        assert finished.kind is FinishKind.ENDED_WHILE_DISCONNECTED
        server_side = emulator.state.session(session.session_id)
        assert server_side.expired
        assert server_side.end_reason == "REASON_USER_ABANDONED"


def virtual_now() -> Now:
    """Both readings from trio's (virtual) clock."""
    now = trio.current_time()
    return Now(now, 1_700_000_000.0 + now)


async def test_handshake_401_creates_a_new_session_with_a_fresh_token(
    emulator: RunningEmulator,
) -> None:
    provider = CountingProvider(emulator)
    async with session_on(emulator, provider) as session:
        await wait_for(session, replied(1))
        first_id = session.session_id
        emulator.state.set_faults("refuse=401:1")
        emulator.state.drop_sockets(first_id)
        update = await wait_for(
            session, lambda u: u.state.session_id != first_id and replied(1)(u), timeout=8
        )
        assert len(provider.tokens) == 2
        assert provider.tokens[0].secret != provider.tokens[1].secret
        assert update.conversation.transcript[-1].text.startswith("Hi, I'm Ada")
        assert session.finished is None
        await session.send("still there?")
        await wait_for(session, replied(2))


@pytest.mark.parametrize("when", ["first-socket", "reconnect"])
async def test_close_4001_moves_to_a_new_session_that_delivers(
    emulator: RunningEmulator, when: str
) -> None:
    """The server closes a socket with 4001 ("session unknown") right after its replay: the
    client carries on in a new session, where a message is delivered exactly once."""
    if when == "first-socket":
        emulator.state.set_faults("close=4001")
    config = attrs.evolve(FAST, backoff=Backoff(base=0.05))
    async with session_on(emulator, config=config) as session:
        first_id = next(iter(emulator.state.sessions))
        if when == "reconnect":
            await wait_for(session, replied(1))
            emulator.state.set_faults("close=4001")
            emulator.state.drop_sockets(first_id)
        update = await wait_for(
            session,
            lambda u: (
                u.state.session_id != first_id
                and u.status is not None
                and u.status.status is LinkStatus.OPEN
                and replied(1)(u)
            ),
        )
        new_id = update.state.session_id
        assert session.session_id == new_id
        assert set(emulator.state.sessions) == {first_id, new_id}
        assert session.finished is None

        sent = await session.send("are you still there?")
        update = await wait_for(session, lambda u: u.conversation.delivered(sent) is not None)
        assert session.delivery_status(sent) is DeliveryStatus.SENT
        assert update.state.session_id == new_id
        copies = {
            session_id: [
                entry
                for entry in emulator.state.session(session_id).journal
                if entry.type == "EVENT_TYPE_USER_MESSAGE" and sent in entry.text
            ]
            for session_id in (first_id, new_id)
        }
        assert len(copies[new_id]) == 1
        assert copies[first_id] == []
        assert copies[new_id][0].event["payload"]["text"] == "are you still there?"


async def test_replacement_sessions_are_bounded(emulator: RunningEmulator) -> None:
    provider = CountingProvider(emulator)
    config = attrs.evolve(FAST, max_new_sessions=2)
    async with session_on(emulator, provider, config=config) as session:
        await wait_for(session, replied(1))
        emulator.state.set_faults("refuse=404:10")
        emulator.state.drop_sockets(session.session_id)
        with trio.fail_after(2 * TIMEOUT):
            finished = await session.wait_finished()
        assert finished.kind is FinishKind.NEW_SESSION_REQUIRED
        assert finished.reason is not None
        assert finished.reason.startswith("session_not_found")
        # One token for the first session, one fresh token per replacement.
        assert len(provider.tokens) == 3
        assert len(emulator.state.sessions) == 3


async def test_failed_replacement_finishes_the_session(
    emulator: RunningEmulator, virtual_clock: MockClock
) -> None:
    async with session_on(emulator) as session:
        await wait_for(session, replied(1))
        emulator.state.set_faults("refuse=401:1,fail-session=5")
        emulator.state.drop_sockets(session.session_id)
        with trio.fail_after(120):
            finished = await session.wait_finished()
        assert finished.kind is FinishKind.NEW_SESSION_REQUIRED
        assert isinstance(session.error, ServerError)
        assert session.latest.finished == finished


async def test_a_server_that_never_answers_the_upgrade_is_retried() -> None:
    """TCP accepted, no HTTP answer: the handshake times out and the link is retried."""
    accepted: list[trio.SocketStream] = []

    async def silent(stream: trio.SocketStream) -> None:
        accepted.append(stream)
        await trio.sleep_forever()

    async def token() -> AccessToken:
        return AccessToken("a-token", 3600)

    config = SessionConfig(connect_timeout_seconds=0.2, backoff=Backoff(base=0.05))
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, silent, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        async with open_session(
            f"http://127.0.0.1:{port}", token, session_id="s", config=config
        ) as session:
            update = await wait_for(session, lambda u: u.state.generation >= 3)
            assert update.state.counters.reconnects >= 2
            assert session.finished is None
        nursery.cancel_scope.cancel()
    assert len(accepted) >= 2


async def test_wss_with_trustme_ca() -> None:
    async with run_emulator(EmulatorConfig.fast(), tls=True) as emulator:
        assert emulator.base_url.startswith("https://")
        context = emulator.client_ssl_context()
        import httpx

        async with httpx.AsyncClient(verify=context) as http:
            provider = CountingProvider(emulator, client=http)
            async with session_on(emulator, provider, ssl_context=context) as session:
                await wait_for(session, replied(1))
                await session.send("secure hello")
                update = await wait_for(session, replied(2))
                assert "secure hello" in update.conversation.transcript[-1].text


async def test_half_open_socket_detected_within_two_heartbeats() -> None:
    interval = 1
    config = EmulatorConfig.fast(heartbeat_interval_seconds=interval)
    client = SessionConfig(replay_quiet_seconds=0.05, liveness_grace_seconds=0.5)
    async with run_emulator(config) as emulator, session_on(emulator, config=client) as session:
        await wait_for(session, replied(1))
        assert session.state.heartbeat_interval == interval
        # Let one heartbeat round trip succeed, so the link is known to be healthy.
        await wait_for(session, _beat)
        emulator.state.set_faults("freeze-after=0:1")
        frozen_at = trio.current_time()
        update = await wait_for(
            session,
            lambda u: u.status is not None and u.status.status is LinkStatus.RECONNECTING,
            timeout=3 * interval,
        )
        detected_after = trio.current_time() - frozen_at
        assert update.status is not None
        assert update.status.reason == "link silent"
        assert update.status.generation == 1
        assert detected_after <= 2 * interval
        # The next connection is healthy: the conversation goes on.
        await wait_for(session, lambda u: u.status is not None and u.status.generation == 2)
        await session.send("are you back?")
        await wait_for(session, replied(2))
        assert session.state.counters.reconnects == 1


def _beat(update: Update) -> bool:
    """A heartbeat was sent and its echo received (the last frame came after the last send)."""
    state = update.state
    return (
        state.last_sent_monotonic is not None
        and state.opened_at is not None
        and state.last_sent_monotonic > state.opened_at + 0.5
        and state.last_inbound is not None
        and state.last_inbound >= state.last_sent_monotonic
    )


async def test_half_open_socket_detected_in_virtual_time(virtual_clock: MockClock) -> None:
    # Production intervals (30 s heartbeat, 10 s grace), with virtual time skipping the waits.
    async with run_emulator(EmulatorConfig.fast()) as emulator, session_on(emulator) as session:
        await wait_for(session, replied(1))
        interval = session.state.heartbeat_interval
        assert interval == 30
        await wait_for(session, _beat, timeout=2 * interval)
        emulator.state.set_faults("freeze-after=0:1")
        frozen_at = trio.current_time()
        update = await wait_for(
            session,
            lambda u: u.status is not None and u.status.status is LinkStatus.RECONNECTING,
            timeout=3 * interval,
        )
        assert update.status is not None
        assert update.status.reason == "link silent"
        assert trio.current_time() - frozen_at <= 2 * interval
        await wait_for(session, lambda u: u.status is not None and u.status.generation == 2)
        await session.send("are you back?")
        await wait_for(session, replied(2))


async def test_first_link_heartbeats_at_the_advertised_interval(virtual_clock: MockClock) -> None:
    # Before SESSION_START the driver only knows the default (30 s); the server's 5 s must take
    # over at once, or the liveness check (5 s + grace) fires before the first heartbeat.
    config = EmulatorConfig.fast(heartbeat_interval_seconds=5)
    async with run_emulator(config) as emulator, session_on(emulator) as session:
        await wait_for(session, replied(1))
        await trio.sleep(25)
        assert session.state.counters.reconnects == 0
        assert session.state.next_heartbeat is not None
        assert session.state.next_heartbeat - trio.current_time() <= 5


# --- the adapter's own guarantees -----------------------------------------------------------


async def test_cancellation_leaves_nothing_running(emulator: RunningEmulator) -> None:
    task = trio.lowlevel.current_task()
    nurseries_before = list(task.child_nurseries)
    with trio.move_on_after(TIMEOUT) as outer:
        async with session_on(emulator, streaming=True) as session:
            await wait_for(session, replied(1))
            await session.send("hello")
            outer.cancel()
            await trio.sleep_forever()
    assert outer.cancelled_caught
    assert task.child_nurseries == nurseries_before
    with pytest.raises(LocalProtocolError):
        await session.send("after the end")
    assert await session.next_update(session.latest.version) is None
    with trio.fail_after(TIMEOUT):
        while emulator.state.open_socket_count(session.session_id):
            await trio.sleep(0.01)


async def test_leaving_the_block_closes_the_socket_cleanly(emulator: RunningEmulator) -> None:
    async with session_on(emulator) as session:
        await wait_for(session, replied(1))
    assert emulator.state.open_socket_count(session.session_id) == 0
    assert session.finished is None  # the session itself lives on on the server
    assert not emulator.state.session(session.session_id).ended


async def test_slow_consumer_sees_only_the_latest_snapshot(emulator: RunningEmulator) -> None:
    async with session_on(emulator) as session:
        seen: list[int] = []
        with trio.fail_after(TIMEOUT):
            async for update in session.updates():
                seen.append(update.version)
                if replied(1)(update):
                    break
                await trio.sleep(0.2)  # much slower than the server
        assert seen == sorted(set(seen))
        assert len(seen) < session.latest.version  # snapshots were skipped, never queued


async def test_events_channel_drops_oldest_when_full(emulator: RunningEmulator) -> None:
    async with session_on(emulator, events_capacity=2) as session:
        await wait_for(session, replied(1))
        events = drain(session.events())
        assert len(events) == 2
        assert session.events_dropped > 0
        # The newest survive: the greeting is last.
        assert events[-1].TYPE == "EVENT_TYPE_POLY_AGENT_MESSAGE"


async def test_debug_logs_never_contain_the_access_token(
    emulator: RunningEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    provider = CountingProvider(emulator)
    with caplog.at_level(logging.DEBUG):
        async with session_on(emulator, provider) as session:
            await wait_for(session, replied(1))
            await session.send("hello")
            await wait_for(session, replied(2))
    secret = provider.tokens[0].secret
    messages = [record.getMessage() for record in caplog.records]
    assert any("#1] <- " in message for message in messages)
    assert any("#1] -> " in message for message in messages)
    assert not [message for message in messages if secret in message]
    assert any("access_token=***" in message for message in messages)


async def test_token_refresh_is_single_flight() -> None:
    calls = 0
    release = trio.Event()

    async def provider() -> AccessToken:
        nonlocal calls
        calls += 1
        await release.wait()
        return AccessToken("tok-" + str(calls), 3600)

    cache = TokenCache(provider, wall=lambda: 0.0, new_event=trio.Event)
    results: list[AccessToken] = []

    async def get() -> None:
        results.append(await cache.get())

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(get)
            await trio.testing.wait_all_tasks_blocked()
            release.set()
    assert calls == 1
    assert {token.secret for token in results} == {"tok-1"}
    cache.invalidate(results[0])
    assert (await cache.get()).secret == "tok-2"


async def test_token_provider_failure_is_wrapped() -> None:
    async def provider() -> AccessToken:
        raise RuntimeError("backend down")

    cache = TokenCache(provider, wall=lambda: 0.0, new_event=trio.Event)
    with pytest.raises(TokenUnavailableError) as caught:
        await cache.get()
    assert isinstance(caught.value.__cause__, RuntimeError)


async def test_existing_session_id_is_resumed(emulator: RunningEmulator) -> None:
    token = await mint_access_token(emulator.base_url, DEMO_CONNECTOR_TOKEN, DEMO_HOST)
    async with session_on(emulator) as first:
        await wait_for(first, replied(1))
        session_id = first.session_id

    async def same_token() -> AccessToken:
        return token

    async with session_on(emulator, same_token, session_id=session_id) as again:
        update = await wait_for(again, replied(1))
        assert again.session_id == session_id
        # The history is replayed, and the agent is not asked to join a second time.
        assert len(update.conversation.transcript) == 1
        journal = emulator.state.session(session_id).journal
        joins = [e for e in journal.after(0) if "REQUEST_POLY_AGENT_JOIN" in e.text]
        assert len(joins) == 1


def test_insecure_remote_base_url_is_refused() -> None:
    async def provider() -> AccessToken:
        raise AssertionError("not called")  # pragma: no cover

    async def main() -> None:
        async with open_session("http://example.com", provider):
            pass  # pragma: no cover

    with pytest.raises(LocalProtocolError):
        trio.run(main)


async def test_a_refusal_that_echoes_the_request_never_logs_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server whose 401 body quotes our request target and the token: the log hides it."""
    secret = "SECRET-tok_3n"

    async def refuse(stream: trio.SocketStream) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += await stream.receive_some(4096)
        target = request.split(b" ")[1]
        body = target + b'\n{"access_token": "' + secret.encode() + b'"}'
        await stream.send_all(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await stream.aclose()

    async def token() -> AccessToken:
        return AccessToken(secret, 3600)

    config = SessionConfig(max_new_sessions=0)
    with caplog.at_level(logging.DEBUG):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, refuse, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            async with open_session(
                f"http://127.0.0.1:{port}", token, session_id="s", config=config
            ) as session:
                with trio.fail_after(10):
                    await session.wait_finished()
            nursery.cancel_scope.cancel()
    messages = [record.getMessage() for record in caplog.records]
    assert any("handshake refused with HTTP 401" in message for message in messages)
    assert not [message for message in messages if secret in message]
