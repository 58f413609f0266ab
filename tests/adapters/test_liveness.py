"""Liveness and the timer: heartbeats at the server's interval, a silent link detected and
dropped, a timer that neither spins nor hides a bug."""

from __future__ import annotations

import itertools

import anyio
import pytest

from polyai_messaging.driver import Backoff, Effect, Input, SessionConfig, WakeUp
from polyai_messaging.emulator import EmulatorConfig
from polyai_messaging.testing import open_emulator

from .helpers import (
    TIMEOUT,
    Adapter,
    fixed_token,
    heartbeat_answered,
    no_client_task_left,
    reconnecting,
    replied,
    until,
    unwrap,
    wait_for,
    websocket_server,
)

pytestmark = pytest.mark.anyio

INTERVAL = 1
"""The heartbeat interval the emulator advertises in these tests (whole seconds)."""

QUICK_LIVENESS = SessionConfig(
    replay_quiet_seconds=0.05, liveness_grace_seconds=0.5, backoff=Backoff(base=0.05)
)


async def test_half_open_socket_detected_within_two_heartbeats(adapter: Adapter) -> None:
    config = EmulatorConfig.fast(heartbeat_interval_seconds=INTERVAL)
    async with (
        open_emulator(config) as emulator,
        adapter.session(emulator, config=QUICK_LIVENESS) as session,
    ):
        await wait_for(session, replied(1))
        assert session.state.heartbeat_interval == INTERVAL
        await wait_for(session, heartbeat_answered)  # the link is known to be healthy
        emulator.set_faults("freeze-after=0:1")
        frozen_at = anyio.current_time()
        update = await wait_for(session, reconnecting, timeout=3 * INTERVAL)
        assert anyio.current_time() - frozen_at <= 2 * INTERVAL
        assert update.status is not None
        assert update.status.reason == "link silent"
        assert update.status.generation == 1
        # The next connection is healthy: the conversation goes on.
        await wait_for(session, lambda u: u.status is not None and u.status.generation == 2)
        await session.send("are you back?")
        await wait_for(session, replied(2))
        assert session.state.counters.reconnects == 1


async def test_the_first_link_heartbeats_at_the_advertised_interval(adapter: Adapter) -> None:
    """Before SESSION_START the driver only knows its default (30 s); the server's interval
    must take over at once, or the liveness check (interval + grace) fires before the first
    heartbeat."""
    config = EmulatorConfig.fast(heartbeat_interval_seconds=INTERVAL)
    async with (
        open_emulator(config) as emulator,
        adapter.session(emulator, config=QUICK_LIVENESS) as session,
    ):
        await wait_for(session, replied(1))
        await anyio.sleep(2 * INTERVAL)  # past interval + grace
        assert session.state.counters.reconnects == 0
        assert session.state.next_heartbeat is not None
        assert session.state.next_heartbeat - session.now().monotonic <= INTERVAL


async def test_a_silent_link_is_aborted_without_a_closing_handshake(adapter: Adapter) -> None:
    # Silence is found a second after the first heartbeat is due: a process stalled for a while
    # (a loaded machine) still sends heartbeats before it finds the link silent, rather than
    # finding it silent in the same step as its first heartbeat is due, which it never writes.
    config = SessionConfig(default_heartbeat_seconds=0.1, liveness_grace_seconds=1.0)
    async with (
        websocket_server() as (url, connections),
        adapter.open_session(url, fixed_token, session_id="s", config=config) as session,
    ):
        update = await wait_for(session, reconnecting)
        assert update.status is not None
        assert update.status.reason == "link silent"
        await until(lambda: len(connections) == 2)
        first = connections[0]
        assert first.close is None
        assert first.frames  # the heartbeats got through before the link was dropped


async def test_a_servers_ping_is_answered_with_its_payload(adapter: Adapter) -> None:
    async with (
        websocket_server(ping=b"still there?") as (url, connections),
        adapter.open_session(url, fixed_token, session_id="s"),
    ):
        await until(lambda: bool(connections) and bool(connections[0].pongs))
        assert connections[0].pongs == [b"still there?"]


async def test_a_timer_that_fired_waits_until_it_is_armed_again(
    adapter: Adapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A firing the runtime does not follow with a new deadline leaves the timer disarmed."""
    fired: list[float] = []
    config = SessionConfig(default_heartbeat_seconds=0.1)
    async with (
        websocket_server() as (url, _),
        adapter.open_session(url, fixed_token, session_id="s", config=config) as session,
    ):
        monkeypatch.setattr(session, "wake", lambda: fired.append(anyio.current_time()))
        await until(lambda: len(fired) == 1)  # however late a loaded machine runs it
        await anyio.sleep(0.5)  # five heartbeat intervals in which it must not fire again
    assert len(fired) == 1


async def test_a_deadline_the_driver_keeps_is_not_retried_in_a_busy_loop(
    adapter: Adapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If waking the driver does not move its deadline, the timer waits 50 ms to wake it again."""
    wakes: list[float] = []
    config = SessionConfig(default_heartbeat_seconds=0.1)
    async with (
        websocket_server() as (url, _),
        adapter.open_session(url, fixed_token, session_id="s", config=config) as session,
    ):
        feed = session.feed

        def ignore_wake_ups(event: Input) -> list[Effect]:
            if isinstance(event, WakeUp):  # the driver keeps its deadline
                wakes.append(anyio.current_time())
                return []
            return feed(event)

        monkeypatch.setattr(session, "feed", ignore_wake_ups)
        # Counted, not timed: a stalled process makes fewer wake-ups in a given time, never
        # closer ones, so the gaps alone tell a busy loop.
        await until(lambda: len(wakes) >= 6)
    assert min(later - earlier for earlier, later in itertools.pairwise(wakes)) >= 0.045


async def test_a_bug_on_the_timer_path_fails_the_session(
    adapter: Adapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Bug(Exception):
        pass

    def wake() -> None:
        raise Bug

    async def run() -> None:
        config = SessionConfig(default_heartbeat_seconds=0.1)
        async with (
            websocket_server() as (url, _),
            adapter.open_session(url, fixed_token, session_id="s", config=config) as session,
        ):
            monkeypatch.setattr(session, "wake", wake)
            with anyio.fail_after(TIMEOUT):
                await anyio.sleep_forever()

    with pytest.raises((Bug, BaseExceptionGroup)) as caught, no_client_task_left():
        await run()
    # The adapter raises the bug itself; the test's own server task group may wrap it.
    assert isinstance(unwrap(caught.value), Bug)
