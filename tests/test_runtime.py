"""The runtime without a loop: an adapter that only records what it is asked to do.

The runtime decides (dispatching effects, logging, snapshots, the event stream, the timer's
floor, where a link connects); these tests drive it synchronously with a fake adapter and a fake
clock, no event loop and no socket.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_server import (
    WALL_EPOCH,
    agent_message,
    batch,
    dumps,
    event,
    joined,
    session_start,
    user_echo,
)
from polyai_messaging.core import EventBatch
from polyai_messaging.driver import (
    Delivery,
    Now,
    OpenSocket,
    SendText,
    SessionConfig,
    SessionState,
)
from polyai_messaging.rest import AccessToken
from polyai_messaging.runtime import (
    MIN_REWAKE_SECONDS,
    EventStream,
    LinkTarget,
    SessionRuntime,
    TokenCache,
    _feed,
)


class FakeEvent:
    def __init__(self) -> None:
        self.flag = False

    def set(self) -> None:
        self.flag = True

    def is_set(self) -> bool:
        return self.flag

    async def wait(self) -> None:  # pragma: no cover - never awaited here
        raise AssertionError("no loop")


class FakeLink:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed: tuple[int, str] | None = None
        self.aborted = False

    def send(self, text: str) -> bool:
        self.sent.append(text)
        return True

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def abort(self) -> None:
        self.aborted = True

    async def aclose(self, code: int, reason: str, timeout: float) -> None:  # pragma: no cover
        self.close(code, reason)


class Recorder(SessionRuntime):
    """A runtime whose adapter records instead of doing."""

    def __init__(self, **kwargs: Any) -> None:
        self.t = 100.0
        self.opened: list[OpenSocket] = []
        self.timer: list[float | None] = []
        self.spawned: list[Callable[[], Awaitable[None]]] = []
        config = SessionConfig(replay_quiet_seconds=0.5)
        super().__init__(
            state=SessionState.new("sess-7", seed=1, config=config),
            base_url="http://127.0.0.1:9",
            tokens=TokenCache(_no_provider, lambda: WALL_EPOCH, FakeEvent),
            create_session=_no_session,
            clock=lambda: Now(self.t, WALL_EPOCH + self.t),
            **kwargs,
        )

    def new_event(self) -> FakeEvent:
        return FakeEvent()

    def spawn(self, job: Callable[[], Awaitable[None]]) -> None:
        self.spawned.append(job)

    def open_link(self, request: OpenSocket) -> None:
        self.opened.append(request)
        self.links[request.generation] = FakeLink()

    def rearm_timer(self, deadline: float | None) -> None:
        self.timer.append(deadline)


async def _no_provider() -> AccessToken:  # pragma: no cover
    raise AssertionError("no token wanted")


async def _no_session() -> str:  # pragma: no cover
    raise AssertionError("no session wanted")


def test_effects_reach_the_link_and_the_timer() -> None:
    runtime = Recorder()
    runtime.start()
    assert runtime.opened == [OpenSocket(1, "sess-7", 0)]
    runtime.link_opened(1)
    runtime.frame_received(1, dumps(batch(session_start(1))))
    assert runtime.timer[-1] == pytest.approx(100.5)  # the replay's quiet period
    runtime.t = 100.5
    runtime.wake()
    link = runtime.links[1]
    assert isinstance(link, FakeLink)
    assert [frame for frame in link.sent if "REQUEST_POLY_AGENT_JOIN" in frame]


def test_snapshots_are_versioned_and_conflated() -> None:
    runtime = Recorder()
    assert runtime.latest.version == 0
    runtime.start()
    first = runtime.latest
    runtime.link_opened(1)
    assert runtime.latest.version == first.version + 1
    assert runtime.latest.state is runtime.state


def test_the_event_stream_keeps_the_newest_and_counts_what_it_dropped() -> None:
    stream = EventStream(2, FakeEvent)
    events = [EventBatch(id=str(n)) for n in range(5)]
    for item in events:
        stream.put(item)
    assert stream.drain() == events[-2:]
    assert stream.dropped == 3
    with pytest.raises(ValueError, match="at least 1"):
        EventStream(0, FakeEvent)


def test_changes_nobody_waits_for_make_no_events() -> None:
    made: list[FakeEvent] = []

    class Counting(Recorder):
        def new_event(self) -> FakeEvent:
            made.append(FakeEvent())
            return made[-1]

    runtime = Counting()
    runtime.start()
    runtime.link_opened(1)
    runtime.frame_received(1, dumps(batch(session_start(1))))
    assert runtime.latest.version == 3
    assert runtime.events().drain()
    runtime.close()
    assert made == [], "an event per snapshot, event or ending that nobody awaited"


def test_changes_nobody_reads_make_no_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[object] = []

    class Counted(_feed.Update):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(_feed, "Update", Counted)
    runtime = Recorder()
    runtime.start()
    runtime.link_opened(1)
    runtime.frame_received(1, dumps(batch(session_start(1))))
    before = runtime.state
    for step in range(1, 21):  # heartbeat echoes: each changes the state, nobody reads it
        runtime.t = 100.0 + step / 10
        runtime.frame_received(1, dumps(event("HEARTBEAT", None)))
    assert runtime.state is not before
    assert made == [], "a snapshot per change that nobody read"
    latest = runtime.latest
    assert latest.version == 23
    assert latest.state is runtime.state
    assert latest is runtime.latest  # made once, on the first read
    assert len(made) == 1
    runtime.t += 0.1
    runtime.frame_received(1, dumps(event("HEARTBEAT", None)))
    assert runtime.latest.version == 24
    assert runtime.latest.state is runtime.state


def test_a_deadline_the_driver_keeps_is_re_armed_no_sooner_than_the_floor() -> None:
    runtime = Recorder()
    runtime.start()
    deadline = runtime.deadline()
    assert deadline is not None
    runtime.t = deadline - 0.01  # woken a hair early: the driver keeps its deadline
    runtime.timer.clear()
    runtime.wake()
    assert runtime.deadline() == deadline
    assert runtime.timer == [pytest.approx(runtime.t + MIN_REWAKE_SECONDS)]


def test_a_later_deadline_leaves_the_timer_armed_and_its_firing_only_re_arms() -> None:
    runtime = Recorder()
    runtime.start()
    runtime.link_opened(1)
    history = session_start(1), event("REQUEST_POLY_AGENT_JOIN", 2), joined(3), agent_message(4)
    runtime.frame_received(1, dumps(batch(*history)))
    runtime.t += 0.5
    runtime.wake()  # the replay settles
    assert runtime.state.settled
    heartbeat = runtime.deadline()
    runtime.timer.clear()
    (delivery,) = [e for e in runtime.feed(SendText("hi", None, {})) if isinstance(e, Delivery)]
    cid = delivery.client_event_id
    check = runtime.deadline()
    assert check is not None
    assert heartbeat is not None
    assert check < heartbeat
    assert runtime.timer == [check], "a sooner deadline moves the timer"
    runtime.frame_received(1, dumps(user_echo(5, cid)))
    assert runtime.deadline() == heartbeat
    assert runtime.timer == [check], "a later one leaves it"
    state = runtime.state
    runtime.t = check
    runtime.wake()  # the timer fires for the check that is no longer due
    assert runtime.state is state, "the driver is not woken for it"
    assert runtime.timer == [check, heartbeat]


def test_log_records_carry_the_session_and_link_and_hide_tokens(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runtime = Recorder()
    with caplog.at_level(logging.DEBUG, logger="polyai_messaging"):
        runtime.start()
        runtime.log.info("echoed GET /ws?access_token=SECRET-1 and SECRET-2")
    record = caplog.records[-1]
    assert record.session_id == "sess-7"  # type: ignore[attr-defined]
    assert record.link == 1  # type: ignore[attr-defined]
    assert record.getMessage().startswith("[sess-7 #1] ")
    assert "SECRET-1" not in record.getMessage()


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "resource", "host_header"),
    [
        ("ws://127.0.0.1:8080/ws?a=1", "127.0.0.1", 8080, False, "/ws?a=1", "127.0.0.1:8080"),
        ("wss://example.com/ws", "example.com", 443, True, "/ws", "example.com"),
        ("ws://[::1]/ws", "::1", 80, False, "/ws", "[::1]"),
        ("wss://[::1]:9443", "::1", 9443, True, "/", "[::1]:9443"),
    ],
)
def test_a_link_target_splits_its_url(
    url: str, host: str, port: int, tls: bool, resource: str, host_header: str
) -> None:
    target = LinkTarget(url, AccessToken("t", 60))
    assert (target.host, target.port, target.tls) == (host, port, tls)
    assert (target.resource, target.host_header) == (resource, host_header)


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(1, 5),
    steps=st.lists(st.sampled_from(["put", "take", "drain"]), max_size=200),
)
def test_the_event_stream_behaves_as_a_bounded_queue(capacity: int, steps: list[str]) -> None:
    """Whatever the interleaving of puts, reads and drains, the stream yields what a queue
    keeping the newest ``capacity`` events would, and counts every event it dropped."""
    stream = EventStream(capacity, FakeEvent)
    model: deque[EventBatch] = deque()
    dropped = 0
    for number, step in enumerate(steps):
        if step == "put":
            event = EventBatch(id=str(number))
            stream.put(event)
            if len(model) == capacity:
                model.popleft()
                dropped += 1
            model.append(event)
        elif step == "take" and model:
            assert _next_now(stream) is model.popleft()
        elif step == "drain":
            assert stream.drain() == list(model)
            model.clear()
    assert stream.dropped == dropped
    assert stream.drain() == list(model)


def _next_now(stream: EventStream) -> Any:
    """The stream's next event, which is buffered (so reading it does not wait)."""
    step = stream.__anext__()
    try:
        step.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the stream waited although an event was buffered")
