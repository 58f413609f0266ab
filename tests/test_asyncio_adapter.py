"""The asyncio adapter over real loopback sockets, against the emulator (on its own thread).

Waits are bounded with anyio (``fail_after``), so a regression fails fast instead of hanging.
The helpers that do not depend on a loop come from the trio adapter's tests.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import anyio.abc
import attrs
import httpx
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from _threaded_emulator import in_emulator, threaded_emulator
from polyai_messaging.asyncio import MAX_INBOUND_MESSAGE, Session, open_session
from polyai_messaging.asyncio._link import Link
from polyai_messaging.core import (
    ClientHandoffRequired,
    HandoffFailed,
    HandoffQueueStatus,
    HandoffTimeout,
    LiveAgentJoined,
    LocalProtocolError,
    Phase,
    PolyAgentLeft,
    Role,
    SessionEnd,
)
from polyai_messaging.driver import (
    Backoff,
    DeliveryStatus,
    Effect,
    FinishKind,
    Input,
    LinkStatus,
    ResumeKind,
    SessionConfig,
    WakeUp,
)
from polyai_messaging.emulator import EmulatorConfig, RunningEmulator
from polyai_messaging.rest import AccessToken
from polyai_messaging.runtime import QueuedClose, TokenProvider, Update
from test_trio_client import (
    FAST,
    TIMEOUT,
    CountingProvider,
    _beat,
    has_event,
    replied,
    stored_copies,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def emulator() -> AsyncIterator[RunningEmulator]:
    async with threaded_emulator(EmulatorConfig.fast()) as running:
        yield running


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
    with anyio.fail_after(timeout):
        update = session.latest
        while not predicate(update):
            following = await session.next_update(update.version)
            assert following is not None, "the session closed"
            update = following
        return update


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (state the emulator's thread changes) until it holds."""
    with anyio.fail_after(TIMEOUT):
        while not condition():
            await anyio.sleep(0.01)


def reconnecting(update: Update) -> bool:
    return update.status is not None and update.status.status is LinkStatus.RECONNECTING


async def token() -> AccessToken:
    return AccessToken("a-token", 3600)


# --- conversations --------------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "whole"])
async def test_full_conversation(emulator: RunningEmulator, streaming: bool) -> None:
    async with session_on(emulator, streaming=streaming) as session:
        update = await wait_for(session, replied(1))
        assert update.conversation.transcript[-1].text.startswith("Hi, I'm Ada")
        sent = await session.send("hello there")
        update = await wait_for(session, replied(2))
        assert session.delivery_status(sent) is DeliveryStatus.SENT
        assert update.conversation.transcript[-1].text == (
            'You said: "hello there" (2 words). What else can I do for you?'
        )
        picked = await session.pick(0)
        update = await wait_for(session, replied(3))
        assert update.conversation.delivered(picked) is not None

        await session.end()
        with anyio.fail_after(TIMEOUT):
            finished = await session.wait_finished()
        assert finished.kind is FinishKind.ENDED
        assert finished.reason == "REASON_USER_END"
        roles = [m.role for m in session.conversation.transcript]
        assert roles == [Role.AGENT, Role.USER, Role.AGENT, Role.USER, Role.AGENT]
        assert type(session.events().drain()[-1]) is SessionEnd
        assert session.state.counters.duplicates_dropped == 0
    await until(lambda: emulator.state.open_socket_count(session.session_id) == 0)


async def test_frames_go_out_in_order(emulator: RunningEmulator) -> None:
    async with session_on(emulator) as session:
        await wait_for(session, replied(1))
        sent = [await session.send(f"message {n}") for n in range(20)]
        await wait_for(
            session, lambda u: all(u.state.delivery(c).status is DeliveryStatus.SENT for c in sent)
        )
        assert stored_copies(emulator, session.session_id) == sent


# --- handoffs -------------------------------------------------------------------------------


async def test_server_managed_handoff_with_queue_and_live_agent(emulator: RunningEmulator) -> None:
    async with session_on(emulator) as session:
        await wait_for(session, replied(1))
        await session.send("Talk to a human")
        update = await wait_for(session, lambda u: replied(2)(u) and has_event(LiveAgentJoined)(u))
        conversation = update.conversation
        assert conversation.live_agent is not None
        assert conversation.live_agent.name == "Sarah"
        assert conversation.phase is Phase.ACTIVE
        assert conversation.transcript[-1].role is Role.LIVE_AGENT
        assert has_event(HandoffQueueStatus)(update)
        await session.send("bye")
        with anyio.fail_after(TIMEOUT):
            finished = await session.wait_finished()
        assert finished.reason == "REASON_NATURAL_END"


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
        assert session.finished is None


# --- link failures --------------------------------------------------------------------------


async def test_drop_mid_stream_resumes_with_cursor_and_no_duplicates(
    emulator: RunningEmulator,
) -> None:
    async with session_on(emulator, streaming=True) as session:
        await wait_for(session, replied(1))
        cursor_before = session.conversation.cursor
        emulator.state.set_faults("drop-after=3:1")  # the echo, THINKING, one chunk; then cut
        text = "tell me something rather long please"
        await session.send(text)
        broken = await wait_for(session, reconnecting)
        assert broken.conversation.streams, "the drop should happen in the middle of a stream"
        update = await wait_for(
            session, lambda u: replied(2)(u) and u.state.settled, timeout=2 * TIMEOUT
        )
        reply = update.conversation.transcript[-1]
        assert reply.text == f'You said: "{text}" (6 words). What else can I do for you?'
        resume = session.last_resume
        assert resume is not None
        assert resume.kind is ResumeKind.RESUMED
        assert resume.previous_cursor > cursor_before
        counters = session.state.counters
        assert (counters.reconnects, counters.duplicates_dropped) == (1, 0)
        keys = [m.key for m in update.conversation.transcript]
        assert len(keys) == len(set(keys)) == 3


async def test_handshake_401_creates_a_new_session_with_a_fresh_token(
    emulator: RunningEmulator,
) -> None:
    provider = CountingProvider(emulator)
    async with session_on(emulator, provider) as session:
        await wait_for(session, replied(1))
        first_id = session.session_id
        emulator.state.set_faults("refuse=401:1")
        in_emulator(emulator, emulator.state.drop_sockets, first_id)
        await wait_for(session, lambda u: u.state.session_id != first_id and replied(1)(u))
        assert len(provider.tokens) == 2
        assert provider.tokens[0].secret != provider.tokens[1].secret
        await session.send("still there?")
        await wait_for(session, replied(2))
        assert session.finished is None


async def test_429_retry_after_delays_the_next_attempt() -> None:
    """A handshake refused with 429 and ``Retry-After: 1`` is not retried for a second, though
    the backoff alone would retry within 50 ms."""
    attempts: list[float] = []

    async def answer(stream: anyio.abc.SocketStream) -> None:
        await read_request(stream)
        attempts.append(anyio.current_time())
        await reply(stream, b"429 Too Many Requests", b"Retry-After: 1\r\n")

    config = SessionConfig(backoff=Backoff(base=0.05, cap=0.05))
    async with (
        http_server(answer) as port,
        open_session(f"http://127.0.0.1:{port}", token, session_id="s", config=config) as session,
    ):
        refused = await wait_for(session, reconnecting)
        await wait_for(session, lambda u: u.state.generation >= 3)
    assert refused.status is not None
    assert refused.status.reason == "handshake refused (429)"
    assert refused.status.retry_in is not None
    assert refused.status.retry_in >= 1.0
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert len(gaps) >= 1
    assert min(gaps) >= 1.0


async def test_a_server_that_never_answers_the_upgrade_is_retried() -> None:
    accepted: list[float] = []

    async def silent(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            accepted.append(anyio.current_time())
            await anyio.sleep_forever()

    config = SessionConfig(connect_timeout_seconds=0.2, backoff=Backoff(base=0.05))
    async with (
        http_server(silent) as port,
        open_session(f"http://127.0.0.1:{port}", token, session_id="s", config=config) as session,
    ):
        update = await wait_for(session, lambda u: u.state.generation >= 3)
        assert update.state.counters.reconnects >= 2
        assert session.finished is None
    assert len(accepted) >= 2


async def test_wss_with_trustme_ca() -> None:
    async with threaded_emulator(EmulatorConfig.fast(), tls=True) as emulator:
        assert emulator.base_url.startswith("https://")
        context = emulator.client_ssl_context()
        async with httpx.AsyncClient(verify=context) as http:
            provider = CountingProvider(emulator, client=http)
            async with session_on(emulator, provider, ssl_context=context) as session:
                await wait_for(session, replied(1))
                await session.send("secure hello")
                update = await wait_for(session, replied(2))
                assert "secure hello" in update.conversation.transcript[-1].text


async def test_wss_with_an_untrusted_certificate_never_opens() -> None:
    async with threaded_emulator(EmulatorConfig.fast(), tls=True) as emulator:
        # The REST calls trust the CA; the socket uses the system's trust store, which does not.
        http = httpx.AsyncClient(verify=emulator.client_ssl_context())
        provider = CountingProvider(emulator, client=http)
        async with http, session_on(emulator, provider, http_client=http) as session:
            update = await wait_for(session, reconnecting)
            assert update.state.opened_at is None
            assert update.status is not None
            assert update.status.reason == "connection failed"


async def test_half_open_socket_detected_within_two_heartbeats() -> None:
    interval = 1
    config = EmulatorConfig.fast(heartbeat_interval_seconds=interval)
    client = SessionConfig(replay_quiet_seconds=0.05, liveness_grace_seconds=0.5)
    async with (
        threaded_emulator(config) as emulator,
        session_on(emulator, config=client) as session,
    ):
        await wait_for(session, replied(1))
        assert session.state.heartbeat_interval == interval
        await wait_for(session, _beat)  # one heartbeat round trip: the link is healthy
        emulator.state.set_faults("freeze-after=0:1")
        frozen_at = anyio.current_time()
        update = await wait_for(session, reconnecting, timeout=3 * interval)
        assert anyio.current_time() - frozen_at <= 2 * interval
        assert update.status is not None
        assert update.status.reason == "link silent"
        assert update.status.generation == 1
        await wait_for(session, lambda u: u.status is not None and u.status.generation == 2)
        await session.send("are you back?")
        await wait_for(session, replied(2))
        assert session.state.counters.reconnects == 1


# --- the sockets: a polite close, an abort --------------------------------------------------


@attrs.define
class Recorded:
    """What a test WebSocket server saw of one connection."""

    frames: list[str | bytes] = attrs.field(factory=list)
    close: Close | None = None
    """The client's close frame; ``None`` if the connection ended without one."""


@asynccontextmanager
async def websocket_server(
    first: Sequence[str] = (),
) -> AsyncIterator[tuple[str, list[Recorded]]]:
    """A WebSocket server that records each connection and sends nothing but the messages
    ``first`` on the first one; yields its URL."""
    connections: list[Recorded] = []

    async def handler(connection: ServerConnection) -> None:
        recorded = Recorded()
        connections.append(recorded)
        try:
            if len(connections) == 1:
                for message in first:
                    await connection.send(message)
            while True:
                recorded.frames.append(await connection.recv())
        except ConnectionClosed as closed:
            recorded.close = closed.rcvd

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"http://127.0.0.1:{port}", connections


async def test_a_silent_link_is_aborted_without_a_closing_handshake() -> None:
    config = SessionConfig(default_heartbeat_seconds=0.2, liveness_grace_seconds=0.2)
    async with (
        websocket_server() as (url, connections),
        open_session(url, token, session_id="s", config=config) as session,
    ):
        update = await wait_for(session, reconnecting)
        assert update.status is not None
        assert update.status.reason == "link silent"
        await until(lambda: len(connections) == 2)
        first = connections[0]
        assert first.close is None
        assert first.frames  # the heartbeats got through before the link was dropped


async def test_messages_up_to_the_size_limit_are_read_and_a_larger_one_ends_the_link() -> None:
    # Neither is a valid frame: each one read counts as a protocol violation.
    largest, too_large = "x" * MAX_INBOUND_MESSAGE, "y" * (MAX_INBOUND_MESSAGE + 1)
    async with (
        websocket_server([largest, largest, too_large]) as (url, connections),
        open_session(url, token, session_id="s") as session,
    ):
        update = await wait_for(session, reconnecting)
        assert update.status is not None
        # The client fails the link (1009) without waiting for the server's close: abnormal.
        assert update.status.reason == "closed (None)"
        assert update.state.counters.protocol_violations == 2
        await until(lambda: connections[0].close is not None)
        assert connections[0].close is not None
        assert connections[0].close.code == 1009


async def test_a_close_code_from_the_server_reaches_the_driver(emulator: RunningEmulator) -> None:
    """4001 ("session unknown") after the replay: the client carries on in a new session."""
    emulator.state.set_faults("close=4001")
    async with session_on(emulator) as session:
        first_id = next(iter(emulator.state.sessions))
        await wait_for(session, lambda u: u.state.session_id != first_id and replied(1)(u))
        assert set(emulator.state.sessions) == {first_id, session.session_id}


async def test_leaving_the_block_closes_the_socket_politely(emulator: RunningEmulator) -> None:
    async with session_on(emulator) as session:
        await wait_for(session, replied(1))
    await until(lambda: emulator.state.open_socket_count(session.session_id) == 0)
    assert session.finished is None  # the session itself lives on on the server
    async with websocket_server() as (url, connections):
        async with open_session(url, token, session_id="s") as session:
            await until(lambda: len(connections) == 1)
        await until(lambda: connections[0].close is not None)
        assert connections[0].close == Close(1000, "client closing")


async def test_a_close_already_queued_stands_and_closing_a_finished_writer_aborts() -> None:
    link = Link(1)
    link.task = asyncio.create_task(anyio.sleep(TIMEOUT))
    assert link.send("hello")
    link.close(1000, "resuming")
    link.close(1000, "client closing")  # leaving the block while the first close is under way
    assert not link.send("too late")
    await anyio.sleep(0)
    assert not link.task.cancelled()
    queued = [link.outgoing.get_nowait() for _ in range(link.outgoing.qsize())]
    assert queued == ["hello", QueuedClose(1000, "resuming")]
    link.writable = False  # the writer has stopped
    link.close(1000, "client closing")
    with pytest.raises(asyncio.CancelledError):
        await link.task


# --- the adapter's own guarantees -----------------------------------------------------------


@contextmanager
def no_task_left() -> Iterator[None]:
    """The block leaves no task running that was not running before it."""
    before = asyncio.all_tasks()
    try:
        yield
    finally:
        assert asyncio.all_tasks() <= before


async def test_an_outer_cancel_leaves_nothing_running(emulator: RunningEmulator) -> None:
    with no_task_left(), anyio.move_on_after(TIMEOUT) as outer:
        async with session_on(emulator, streaming=True) as session:
            await wait_for(session, replied(1))
            await session.send("hello")
            outer.cancel()
            await anyio.sleep_forever()
    assert outer.cancelled_caught
    with pytest.raises(LocalProtocolError):
        await session.send("after the end")
    assert await session.next_update(session.latest.version) is None


async def test_an_exception_in_the_block_propagates_and_leaves_nothing_running(
    emulator: RunningEmulator,
) -> None:
    class Boom(Exception):
        pass

    sessions: list[Session] = []

    async def run() -> None:
        async with session_on(emulator) as session:
            sessions.append(session)
            await wait_for(session, replied(1))
            raise Boom

    with no_task_left(), pytest.raises(Boom):
        await run()
    await until(lambda: emulator.state.open_socket_count(sessions[0].session_id) == 0)


async def test_leaving_the_block_leaves_nothing_running(emulator: RunningEmulator) -> None:
    with no_task_left():
        async with session_on(emulator, streaming=True) as session:
            await session.send("hello")  # leave while the reply streams in


async def test_a_task_cancelled_from_outside_leaves_nothing_running(
    emulator: RunningEmulator,
) -> None:
    entered = asyncio.Event()

    async def run() -> None:
        async with session_on(emulator) as session:
            await wait_for(session, replied(1))
            entered.set()
            await asyncio.Event().wait()

    with no_task_left():
        task = asyncio.create_task(run())
        with anyio.fail_after(TIMEOUT):
            await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_deadline_the_driver_keeps_is_not_retried_in_a_busy_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If waking the driver does not move its deadline, the timer waits 50 ms to wake it again."""
    wakes: list[float] = []
    config = SessionConfig(default_heartbeat_seconds=0.1)
    async with (
        websocket_server() as (url, _),
        open_session(url, token, session_id="s", config=config) as session,
    ):
        feed = session.feed

        def ignore_wake_ups(event: Input) -> list[Effect]:
            if isinstance(event, WakeUp):  # the driver keeps its deadline
                wakes.append(anyio.current_time())
                return []
            return feed(event)

        monkeypatch.setattr(session, "feed", ignore_wake_ups)
        await anyio.sleep(0.6)
    assert 5 <= len(wakes) <= 12
    assert min(later - earlier for earlier, later in itertools.pairwise(wakes)) >= 0.045


async def test_a_bug_on_the_timer_path_fails_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    class Bug(Exception):
        pass

    def wake() -> None:
        raise Bug

    async def run() -> None:
        config = SessionConfig(default_heartbeat_seconds=0.1)
        async with (
            websocket_server() as (url, _),
            open_session(url, token, session_id="s", config=config) as session,
        ):
            monkeypatch.setattr(session, "wake", wake)
            await anyio.sleep(TIMEOUT)

    with pytest.raises(ExceptionGroup) as caught, no_task_left():
        await run()
    assert caught.group_contains(Bug)


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


async def test_a_refusal_that_echoes_the_request_never_logs_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server whose 401 body quotes our request target and the token: the log hides it."""
    secret = "SECRET-tok_3n"

    async def refuse(stream: anyio.abc.SocketStream) -> None:
        request = await read_request(stream)
        target = request.split(b" ")[1]
        await reply(stream, b"401 Unauthorized", b"", target + b'\n{"t": "' + secret.encode())

    async def secret_token() -> AccessToken:
        return AccessToken(secret, 3600)

    config = SessionConfig(max_new_sessions=0)
    with caplog.at_level(logging.DEBUG):
        async with (
            http_server(refuse) as port,
            open_session(
                f"http://127.0.0.1:{port}", secret_token, session_id="s", config=config
            ) as session,
        ):
            with anyio.fail_after(TIMEOUT):
                finished = await session.wait_finished()
    assert finished.kind is FinishKind.NEW_SESSION_REQUIRED
    messages = [record.getMessage() for record in caplog.records]
    assert any("handshake refused with HTTP 401" in message for message in messages)
    assert not [message for message in messages if secret in message]


def test_the_adapter_imports_no_trio() -> None:
    code = "import sys, polyai_messaging.asyncio; print('trio' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    assert result.stdout.strip() == "False"


# --- plain HTTP servers, for handshakes that go wrong ----------------------------------------


@asynccontextmanager
async def http_server(
    handler: Callable[[anyio.abc.SocketStream], Awaitable[None]],
) -> AsyncIterator[int]:
    """Serve ``handler`` on a loopback port for the duration of the block; yield the port."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, handler)
        yield listener.extra(anyio.abc.SocketAttribute.local_port)
        tasks.cancel_scope.cancel()


async def read_request(stream: anyio.abc.SocketStream) -> bytes:
    request = b""
    while b"\r\n\r\n" not in request:
        request += await stream.receive()
    return request


async def reply(
    stream: anyio.abc.SocketStream, status: bytes, headers: bytes, body: bytes = b""
) -> None:
    head = b"HTTP/1.1 %s\r\n%sContent-Length: %d\r\n\r\n" % (status, headers, len(body))
    await stream.send(head + body)
    await stream.aclose()
