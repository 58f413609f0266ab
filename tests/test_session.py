"""Unit tests of the sans-I/O session driver (connect, replay, join, delivery,
liveness, reconnects and the end of a session)."""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_server import (
    WALL_EPOCH,
    Link,
    ModelServer,
    agent_message,
    batch,
    dumps,
    event,
    joined,
    session_start,
    system_error,
    user_echo,
)
from polyai_messaging.core import LocalProtocolError, UserMessage, encoded_size
from polyai_messaging.driver import (
    AbortSocket,
    Applied,
    CloseSocket,
    ConnectFailed,
    Delivery,
    DeliveryStatus,
    Effect,
    EndSession,
    Finished,
    FinishKind,
    FrameReceived,
    HandshakeFailed,
    Input,
    LinkClosed,
    LinkOpened,
    LinkStatus,
    NeedNewSession,
    NewSessionFailed,
    NewSessionReason,
    Now,
    OpenSocket,
    Resumed,
    ResumeKind,
    SendFrame,
    SendText,
    SessionConfig,
    SessionState,
    SetTyping,
    Start,
    StartNewSession,
    StatusChanged,
    WakeAt,
    WakeUp,
    dump_state,
    load_state,
    step,
)
from polyai_messaging.driver import _turn as turn_module
from polyai_messaging.driver._backoff import draw

JOIN = "EVENT_TYPE_REQUEST_POLY_AGENT_JOIN"
HEARTBEAT = "EVENT_TYPE_HEARTBEAT"
USER_MESSAGE = "EVENT_TYPE_USER_MESSAGE"
USER_TYPING = "EVENT_TYPE_USER_TYPING"
UNABLE = "Sorry, I'm unable to start a conversation right now. Please try again later."
NOT_FOUND = "Error: Conversation not found"


class Drive:
    """Feeds inputs to ``step`` with a fake clock; wall time follows monotonic unless told."""

    def __init__(self, state: SessionState | None = None, **config: Any) -> None:
        self.state = state or SessionState.new("sess-1", seed=7, config=SessionConfig(**config))
        self.t = 0.0
        self.wall = WALL_EPOCH

    def __call__(self, event_: Input, *, at: float | None = None, jump: float = 0.0):
        if at is not None:
            self.wall += at - self.t
            self.t = at
        self.wall += jump
        self.state, effects = step(self.state, event_, Now(self.t, self.wall))
        return effects

    def frame(self, frame: dict[str, Any], *, at: float | None = None) -> list[Effect]:
        return self(FrameReceived(self.state.generation, dumps(frame)), at=at)

    def wake(self, at: float | None = None) -> list[Effect]:
        target = self.state.deadline if at is None else at
        assert target is not None
        return self(WakeUp(), at=max(self.t, target))

    def open(self, *frames: dict[str, Any], at: float | None = None) -> list[Effect]:
        """Start (or reconnect) and open the link, then deliver ``frames``."""
        effects: list[Effect] = []
        if self.state.link is LinkStatus.IDLE:
            effects += self(Start(), at=at)
        effects += self(LinkOpened(self.state.generation), at=at)
        for frame in frames:
            effects += self.frame(frame)
        return effects

    def settled_open(self, *history: dict[str, Any]) -> list[Effect]:
        effects = self.open(batch(*history))
        effects += self.wake()
        assert self.state.settled
        return effects


def sent(effects: list[Effect]) -> list[dict[str, Any]]:
    return [json.loads(e.text) for e in effects if isinstance(e, SendFrame)]


def sent_types(effects: list[Effect]) -> list[str]:
    return [frame["type"] for frame in sent(effects)]


def of(kind: type, effects: list[Effect]) -> list[Any]:
    return [e for e in effects if isinstance(e, kind)]


HISTORY = (session_start(1), event("REQUEST_POLY_AGENT_JOIN", 2), joined(3), agent_message(4))


# --- join -------------------------------------------------------------------------------------


def test_join_sent_once_after_the_quiet_period_of_a_new_session() -> None:
    d = Drive()
    effects = d.open(batch(session_start(1)))
    assert JOIN not in sent_types(effects), "never decided on a batch frame"
    assert d.state.deadline == pytest.approx(d.t + 0.5)
    effects = d.wake()
    assert sent_types(effects) == [JOIN]
    effects = d.wake(d.t + 1) + d.wake(d.t + 5)
    assert JOIN not in sent_types(effects)


def test_join_decided_on_first_non_batch_frame() -> None:
    d = Drive()
    d.open(batch(session_start(1)))
    effects = d.frame(event("HEARTBEAT", None, id="hb1"))
    assert sent_types(effects) == [JOIN]


def test_join_decided_over_the_whole_replay_not_per_batch_frame() -> None:
    d = Drive()
    effects = d.open(batch(session_start(1)))
    effects += d.frame(batch(event("REQUEST_POLY_AGENT_JOIN", 2), joined(3)), at=0.3)
    effects += d.wake()
    assert d.state.settled
    effects += d.wake(d.t + 25)
    assert JOIN not in sent_types(effects)


def test_quiet_period_restarts_on_each_batch_frame() -> None:
    d = Drive()
    d.open(batch(session_start(1)))
    d.frame(batch(agent_message(2)), at=0.4)
    assert JOIN not in sent_types(d.wake(0.5))
    assert not d.state.settled
    assert sent_types(d.wake()) == [JOIN]
    assert d.t == pytest.approx(0.9)


def test_no_join_on_reconnect_when_history_has_joined() -> None:
    d = Drive()
    effects = d.settled_open(*HISTORY)
    d(LinkClosed(d.state.generation, 1006))
    effects += d.wake()
    effects += d.open(batch(), at=d.t)
    effects += d.wake()
    assert JOIN not in sent_types(effects)


def test_no_join_when_join_already_requested_in_history() -> None:
    d = Drive()
    effects = d.settled_open(session_start(1), event("REQUEST_POLY_AGENT_JOIN", 2))
    assert JOIN not in sent_types(effects)


@pytest.mark.parametrize("message", [UNABLE, NOT_FOUND])
def test_rejoin_after_error_system_message(message: str) -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    effects = d.frame(system_error(5, message))
    assert sent_types(effects) == [JOIN]


def test_rejoin_bounded_by_max_join_retries() -> None:
    d = Drive(max_join_retries=2)
    d.settled_open(*HISTORY)
    joins = []
    for k in range(5):
        joins += [t for t in sent_types(d.frame(system_error(5 + k, NOT_FOUND))) if t == JOIN]
    assert len(joins) == 2


def test_no_rejoin_for_other_errors_or_info_level() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    effects = d.frame(system_error(5, "Sorry, I'm having trouble responding right now."))
    info = event("SYSTEM_MESSAGE", 6, {"message": NOT_FOUND, "level": "SYSTEM_MESSAGE_LEVEL_INFO"})
    effects += d.frame(info)
    assert JOIN not in sent_types(effects)


# --- heartbeat and liveness -------------------------------------------------------------------


def heartbeat_times(d: Drive, until: float) -> list[float]:
    times = []
    while d.state.deadline is not None and d.state.deadline <= until:
        effects = d.wake()
        if HEARTBEAT in sent_types(effects):
            times.append(round(d.t, 3))
            d.frame(event("HEARTBEAT", None, id=f"hb{d.t}"))  # the echo keeps the link alive
    return times


@pytest.mark.parametrize(("interval", "expected"), [(7, 7.0), (None, 30.0), (-5, 30.0), (1, 1.0)])
def test_heartbeat_interval_from_capabilities(interval: int | None, expected: float) -> None:
    caps = {} if interval is None else {"heartbeat_interval_seconds": interval}
    d = Drive()
    d.settled_open(session_start(1, **caps), *HISTORY[1:])
    times = heartbeat_times(d, 200.0)
    assert len(times) >= 3
    # SESSION_START arrived at open (t=0): the interval applies from the first heartbeat on
    assert times[0] == pytest.approx(expected, abs=0.05)
    gaps = {round(b - a, 3) for a, b in itertools.pairwise(times)}
    assert gaps == {expected}
    assert d.state.heartbeat_interval == expected


def test_a_new_interval_announced_on_a_settled_link_reschedules_the_heartbeat() -> None:
    # The driver looks at the capabilities only when an event changed the conversation's
    # facts; a later SESSION_START with another interval is such an event.
    d = Drive()
    d.settled_open(session_start(1, heartbeat_interval_seconds=30), *HISTORY[1:])
    d.frame(user_echo(5, "c1"), at=d.t + 1)  # leaves the facts as they were
    assert d.state.next_heartbeat == pytest.approx(30.0, abs=0.05)
    d.frame(session_start(6, heartbeat_interval_seconds=4), at=d.t + 1)
    assert d.state.heartbeat_interval == 4
    assert d.state.next_heartbeat == pytest.approx(d.t + 4)
    assert d.state.deadline == attrs.evolve(d.state).deadline


def test_a_transient_heartbeat_echo_keeps_the_link_alive_and_folds_nothing() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    conversation = d.state.conversation
    effects = d.frame(event("HEARTBEAT", None, id="hb-1"), at=d.t + 5)
    assert d.state.last_inbound == d.t
    assert d.state.conversation is conversation, "no conversation built for it"
    assert of(Applied, effects) == []
    # Its duplicate is not a duplicate event either: nothing was recorded.
    d.frame(event("HEARTBEAT", None, id="hb-1"))
    assert d.state.counters.duplicates_dropped == 0


def test_a_sequenced_heartbeat_echo_is_folded_like_any_event() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    effects = d.frame(event("HEARTBEAT", 5))
    assert [type(e.event).__name__ for e in of(Applied, effects)] == ["HeartbeatEcho"]
    assert d.state.conversation.cursor == 5


def test_a_state_works_its_deadline_out_once_and_no_state_inherits_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    before = d.state.deadline
    worked_out: list[SessionState] = []
    original = SessionState._deadline

    def counted(state: SessionState) -> float | None:
        worked_out.append(state)
        return original(state)

    monkeypatch.setattr(SessionState, "_deadline", counted)
    effects = d(SendText("hello", None, {}), at=d.t + 1)  # its echo check moves the deadline
    assert d.state.deadline != before
    assert of(WakeAt, effects) == [WakeAt(d.state.deadline)]
    assert d.state.deadline == attrs.evolve(d.state).deadline  # a fresh copy agrees
    assert sum(state is d.state for state in worked_out) <= 1, "worked out at most once"


def test_a_heartbeat_is_not_encoded_again_for_every_beat(monkeypatch: pytest.MonkeyPatch) -> None:
    d = Drive()
    d.settled_open(session_start(1, heartbeat_interval_seconds=1), *HISTORY[1:])
    encoded: list[object] = []
    monkeypatch.setattr(turn_module, "encode", lambda command: encoded.append(command) or "")
    times = heartbeat_times(d, 10.0)
    assert len(times) >= 5
    assert encoded == []


def test_heartbeat_zero_disables_heartbeat_and_liveness() -> None:
    d = Drive()
    d.settled_open(session_start(1, heartbeat_interval_seconds=0), *HISTORY[1:])
    assert d.state.heartbeat_interval == 0
    assert d.state.next_heartbeat is None
    assert d.state.liveness_deadline is None
    effects = d.wake(500.0)
    assert HEARTBEAT not in sent_types(effects)
    assert not of(AbortSocket, effects)
    assert d.state.link is LinkStatus.OPEN


def test_heartbeat_scheduled_on_reopen_uses_known_interval() -> None:
    d = Drive()
    d.settled_open(session_start(1, heartbeat_interval_seconds=7), *HISTORY[1:])
    d(LinkClosed(d.state.generation, 1006))
    d.wake()
    d.open(batch())
    assert d.state.next_heartbeat == pytest.approx(d.t + 7)


def test_no_heartbeat_while_not_open() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(LinkClosed(d.state.generation, 1006), at=1.0)
    assert d.state.next_heartbeat is None
    for code in range(5):
        effects = d(ConnectFailed(d.state.generation)) if code else []
        effects += d.wake()
        assert HEARTBEAT not in sent_types(effects)


def test_liveness_silent_link_is_aborted_and_reconnected() -> None:
    d = Drive(liveness_grace_seconds=10)
    d.settled_open(session_start(1, heartbeat_interval_seconds=10), *HISTORY[1:])
    generation = d.state.generation
    effects: list[Effect] = []
    while not of(AbortSocket, effects):
        effects = d.wake()
        assert d.t < 100
    # the last inbound frame was at ~0 (the settle wake-up is not inbound): 10 + 10
    assert d.t == pytest.approx(20.0, abs=0.1)
    assert of(AbortSocket, effects) == [AbortSocket(generation, of(AbortSocket, effects)[0].reason)]
    assert d.state.link is LinkStatus.RECONNECTING
    effects = d.wake()
    assert of(OpenSocket, effects) == [OpenSocket(generation + 1, "sess-1", 4)]


def test_echoed_heartbeats_keep_the_link_alive() -> None:
    link = Link(SessionState.new("s"), ModelServer(heartbeat_interval_seconds=5))
    link.feed(Start())
    for _ in range(100):
        link.deliver()
        link.advance(2.0)
    assert link.state.link is LinkStatus.OPEN
    assert link.state.counters.reconnects == 0
    assert sum(f["type"] == HEARTBEAT for f in link.sent) >= 35


# --- reconnect --------------------------------------------------------------------------------


def test_first_open_omits_cursor_and_reconnect_uses_highest_sequence() -> None:
    d = Drive()
    effects = d(Start())
    assert of(OpenSocket, effects) == [OpenSocket(1, "sess-1", 0)]
    d(LinkOpened(1))
    d.frame(batch(*HISTORY, agent_message(7), agent_message(5), agent_message(6)))
    d.wake()
    effects = d(LinkClosed(1, 1006)) + d.wake()
    assert of(OpenSocket, effects) == [OpenSocket(2, "sess-1", 7)]


def test_reconnect_without_any_sequence_uses_cursor_zero() -> None:
    d = Drive()
    d(Start())
    d(LinkOpened(1))
    effects = d(LinkClosed(1, 1006)) + d.wake()
    assert of(OpenSocket, effects) == [OpenSocket(2, "sess-1", 0)]


def backoff_delays(n: int, seed: int = 7) -> list[float]:
    d = Drive(default_max_reconnect_attempts=0)
    d.state = attrs.evolve(d.state, seed=seed)
    d(Start())
    delays = []
    for _ in range(n):
        effects = d(ConnectFailed(d.state.generation))
        status = of(StatusChanged, effects)[-1]
        assert status.status is LinkStatus.RECONNECTING
        assert d.state.reconnect_at == pytest.approx(d.t + status.retry_in)
        delays.append(status.retry_in)
        d.wake()
    return delays


def test_backoff_exponential_with_cap_and_jitter_at_the_cap() -> None:
    """Attempt n waits the nominal ``min(30, 2**(n-1))`` s scaled by the session's n-th draw
    (full jitter: anywhere below the nominal delay)."""
    delays = backoff_delays(14)
    for attempt, delay in enumerate(delays, start=1):
        nominal = min(30.0, 2.0 ** (attempt - 1))
        assert delay == pytest.approx(nominal * (1.0 - draw(7, attempt - 1)))
    capped = delays[6:]
    assert all(0.0 < d <= 30.0 for d in capped)
    assert len(set(capped)) == len(capped), "jitter still applies at the cap"


def test_backoff_attempt_resets_only_after_stability_window() -> None:
    d = Drive(stability_window_seconds=10)
    d.settled_open(session_start(1, heartbeat_interval_seconds=100), *HISTORY[1:])
    attempts = []
    for _ in range(3):  # short-lived links: the attempt keeps growing
        effects = d(LinkClosed(d.state.generation, 1006), at=d.t + 2)
        attempts.append(of(StatusChanged, effects)[-1].attempt)
        d.wake()
        d.open(batch())
    assert attempts == [1, 2, 3]
    d.wake(d.t + 10.5)  # this link stays up for the stability window
    effects = d(LinkClosed(d.state.generation, 1006), at=d.t + 0.1)
    assert of(StatusChanged, effects)[-1].attempt == 1
    assert of(StatusChanged, effects)[-1].retry_in <= 1.0


def test_gave_up_after_max_reconnect_attempts() -> None:
    d = Drive(default_max_reconnect_attempts=3)
    d(Start())
    for _ in range(3):
        effects = d(ConnectFailed(d.state.generation))
        assert d.state.link is LinkStatus.RECONNECTING
        d.wake()
    effects = d(ConnectFailed(d.state.generation))
    assert of(Finished, effects) == [Finished(FinishKind.GAVE_UP, "3 reconnect attempts failed")]
    assert d.state.link is LinkStatus.CLOSED
    assert d.state.deadline is None
    assert not of(OpenSocket, effects)


def test_max_reconnect_attempts_from_capabilities() -> None:
    d = Drive(default_max_reconnect_attempts=10)
    d.settled_open(session_start(1, max_reconnect_attempts=2), *HISTORY[1:])
    d(LinkClosed(d.state.generation, 1006))
    d.wake()
    d(ConnectFailed(d.state.generation))
    d.wake()
    effects = d(ConnectFailed(d.state.generation))
    assert of(Finished, effects)[0].kind is FinishKind.GAVE_UP


def test_zero_max_reconnect_attempts_means_no_cap() -> None:
    assert len(backoff_delays(25)) == 25


@pytest.mark.parametrize(
    ("status", "reason"),
    [(404, NewSessionReason.SESSION_NOT_FOUND), (401, NewSessionReason.AUTHENTICATION_FAILED)],
)
def test_handshake_404_401_need_new_session_not_retried(
    status: int, reason: NewSessionReason
) -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(LinkClosed(d.state.generation, 1006))
    d.wake()
    effects = d(HandshakeFailed(d.state.generation, status))
    assert of(NeedNewSession, effects) == [NeedNewSession(reason)]
    assert not of(Finished, effects)  # a replacement is on its way, not the end
    assert d.state.renewing
    assert d.state.deadline is None
    assert not of(OpenSocket, d.wake(d.t + 1000))


def test_close_4001_needs_new_session() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    effects = d(LinkClosed(d.state.generation, 4001))
    assert of(NeedNewSession, effects) == [NeedNewSession(NewSessionReason.SESSION_UNKNOWN)]
    assert not of(OpenSocket, d.wake(d.t + 1000))


def test_expired_while_disconnected() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(SendText("hello", "c1"), at=5.0)  # last client frame at wall 5
    d(LinkClosed(d.state.generation, 1006), at=6.0)
    d.wake()
    # the machine was away: the next failure is seen 700 s of wall time later
    effects = d(ConnectFailed(d.state.generation), at=d.t + 1, jump=700.0)
    assert not of(NeedNewSession, effects)  # the conversation is over: no automatic replacement
    assert of(Finished, effects)[0].kind is FinishKind.ENDED_WHILE_DISCONNECTED
    assert d.state.delivery("c1").status is DeliveryStatus.FAILED


def test_404_after_idle_timeout_is_expired_while_disconnected() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(SendText("hi", "c1"), at=0.8)
    d(LinkClosed(d.state.generation, 1006), at=1.0)
    d.wake()
    effects = d(HandshakeFailed(d.state.generation, 404), at=d.t + 1, jump=650.0)
    assert of(Finished, effects)[0].kind is FinishKind.ENDED_WHILE_DISCONNECTED


@pytest.mark.parametrize("refusal", ["404", "connect-failed"])
def test_a_restored_session_that_expired_meanwhile_is_not_replaced(refusal: str) -> None:
    """Saved, the process stops, and it is restored after the server's idle timeout: the
    server no longer knows the session, and the conversation is over (no replacement)."""
    d = Drive()
    d.settled_open(*HISTORY)
    d(SendText("hello", "c1"), at=5.0)  # the last client frame, at wall WALL_EPOCH + 5
    saved = dump_state(d.state)
    later = Drive(load_state(saved))
    later.wall = d.wall + 700.0  # a new process, 700 s of wall time later; a new monotonic clock
    later(Start(), at=0.0)
    if refusal == "404":
        effects = later(HandshakeFailed(later.state.generation, 404), at=0.5)
    else:
        effects = later(ConnectFailed(later.state.generation), at=0.5)
    assert not of(NeedNewSession, effects)
    assert of(Finished, effects)[0].kind is FinishKind.ENDED_WHILE_DISCONNECTED


def test_a_restored_session_still_alive_resumes_and_keeps_its_idle_deadline() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(SendText("hello", "c1"), at=5.0)
    later = Drive(load_state(dump_state(d.state)))
    later.wall = d.wall + 100.0  # restored 100 s after the last frame: still alive
    later.open(batch(*HISTORY), at=0.0)
    assert later.state.link is LinkStatus.OPEN
    # The idle deadline counts from the last frame sent before the save, not from the restore.
    assert later.state.last_sent_monotonic == pytest.approx(-100.0)


def test_429_honours_retry_after() -> None:
    d = Drive()
    d(Start())
    effects = d(HandshakeFailed(1, 429, "connection limit exceeded for session", 20.0))
    status = of(StatusChanged, effects)[-1]
    assert status.retry_in == 20.0
    assert of(WakeAt, effects) == [WakeAt(20.0)]
    assert not of(OpenSocket, d.wake(19.9))
    assert of(OpenSocket, d.wake(20.0))


def test_clean_close_after_session_end_is_final() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    effects = d.frame(event("SESSION_END", 5, {"reason": "REASON_AGENT_END"}))
    assert of(Finished, effects) == [Finished(FinishKind.ENDED, "REASON_AGENT_END")]
    assert of(CloseSocket, effects) == [CloseSocket(1, 1000, "session ended")]
    effects = d(LinkClosed(1, 1000)) + d.wake(d.t + 100)
    assert not of(OpenSocket, effects)
    assert d.state.link is LinkStatus.CLOSED


def test_session_end_in_replay_finishes_on_close() -> None:
    d = Drive()
    d.open(batch(*HISTORY))
    effects = d.frame(batch(event("SESSION_END", 5, {"reason": "REASON_USER_END"})))
    assert of(Finished, effects)[0].kind is FinishKind.ENDED
    assert not of(OpenSocket, d(LinkClosed(1, 1000)) + d.wake(d.t + 100))


# --- generation fencing -----------------------------------------------------------------------

FRAMES = [
    batch(agent_message(9)),
    agent_message(10),
    event("SESSION_END", 11, {"reason": "REASON_USER_END"}),
    system_error(12, NOT_FOUND),
    event("HEARTBEAT", None, id="hbx"),
]


def stale_inputs(generation: int) -> st.SearchStrategy[Input]:
    gen = st.integers(0, generation)
    return st.one_of(
        st.builds(LinkOpened, gen),
        st.builds(FrameReceived, gen, st.sampled_from([dumps(f) for f in FRAMES])),
        st.builds(LinkClosed, gen, st.sampled_from([1000, 1006, 4001, None])),
        st.builds(HandshakeFailed, gen, st.sampled_from([400, 401, 404, 429, 500])),
        st.builds(ConnectFailed, gen),
    )


def _reconnected() -> Drive:
    d = Drive()
    d.settled_open(*HISTORY)
    d(LinkClosed(1, 1006))
    d.wake()
    d.open(batch())
    d(LinkClosed(2, 1006))
    d.wake()  # generation 3 connecting
    return d


@settings(max_examples=60, deadline=None)
@given(st.lists(stale_inputs(2), min_size=1, max_size=8), st.booleans())
def test_inputs_of_older_generations_change_nothing(inputs: list[Input], opened: bool) -> None:
    d = _reconnected()
    if opened:
        d(LinkOpened(3))
    before = d.state
    now = before.last_now
    assert now is not None
    for stale in inputs:
        state, effects = step(d.state, stale, now)
        assert effects == []
        assert state == before


# --- resume outcome ---------------------------------------------------------------------------


def reconnect_with(d: Drive, *replay: dict[str, Any]) -> list[Effect]:
    d(LinkClosed(d.state.generation, 1006))
    d.wake()
    effects = d.open(batch(*replay))
    return effects + d.wake()


def test_resumed() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    effects = reconnect_with(d, agent_message(5), agent_message(6))
    assert of(Resumed, effects) == [Resumed(ResumeKind.RESUMED, (), 4)]
    assert d.state.counters.resumes == 1


def test_resumed_with_gap() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    effects = reconnect_with(d, agent_message(5), agent_message(8))
    assert of(Resumed, effects) == [Resumed(ResumeKind.RESUMED_WITH_GAP, ((6, 7),), 4)]
    assert d.state.counters.gaps == 1


def test_a_replay_that_resends_what_we_hold_is_no_reset() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    effects = reconnect_with(d, *HISTORY[2:], agent_message(5))
    assert of(Resumed, effects) == [Resumed(ResumeKind.RESUMED, (), 4)]
    assert [e.sequence for e in d.state.conversation.timeline] == [1, 2, 3, 4, 5]


def test_reset_when_replay_conflicts_with_journal() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    other = [dict(f, id=f"other-{f['sequence']}") for f in HISTORY]
    effects = reconnect_with(d, *other, agent_message(5, "new history", "nm5"))
    assert [r.kind for r in of(Resumed, effects)] == [ResumeKind.RESET]
    assert {e.id for e in d.state.conversation.timeline} == {
        "other-1",
        "other-2",
        "other-3",
        "other-4",
        "e5",
    }


def test_first_connection_reports_no_resume() -> None:
    d = Drive()
    assert not of(Resumed, d.settled_open(*HISTORY))


# --- outbox -----------------------------------------------------------------------------------


def test_outbox_assigns_client_event_id_and_confirms_on_echo() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    effects = d(SendText("hello"))
    (pending,) = of(Delivery, effects)
    assert pending.status is DeliveryStatus.PENDING
    assert uuid.UUID(pending.client_event_id).version == 4
    (frame,) = sent(effects)
    assert frame == {
        "type": USER_MESSAGE,
        "payload": {"text": "hello"},
        "metadata": {"custom": {"client_event_id": pending.client_event_id}},
    }
    effects = d.frame(user_echo(5, pending.client_event_id, "hello"))
    assert of(Delivery, effects) == [Delivery(pending.client_event_id, DeliveryStatus.SENT, "u5")]
    assert d.state.delivery(pending.client_event_id).status is DeliveryStatus.SENT


def test_generated_ids_are_full_v4_uuids_repeatable_from_the_seed() -> None:
    def ids(seed: int, count: int) -> list[str]:
        d = Drive(SessionState.new("sess-1", seed=seed))
        d.settled_open(*HISTORY)
        return [of(Delivery, d(SendText(f"m{n}")))[0].client_event_id for n in range(count)]

    first = ids(7, 200)
    assert ids(7, 200) == first
    assert set(ids(8, 200)).isdisjoint(first)
    values = [uuid.UUID(cid) for cid in first]
    assert len(set(values)) == 200
    assert {(value.version, value.variant) for value in values} == {(4, uuid.RFC_4122)}
    # Every one of the 122 random bits varies: the version and variant bits alone are fixed.
    fixed = ~0 & ((1 << 128) - 1)
    for value in values[1:]:
        fixed &= ~(value.int ^ values[0].int)
    assert bin(fixed).count("1") == 6


def test_outbox_queued_while_disconnected_sent_after_replay_settles() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(LinkClosed(1, 1006))
    effects = d(SendText("one", "c1")) + d(SendText("two", "c2"))
    assert sent(effects) == []
    d.wake()
    effects = d.open(batch(agent_message(5)))
    assert sent(effects) == [], "not before the replay settles"
    effects = d.wake()
    assert [f["metadata"]["custom"]["client_event_id"] for f in sent(effects)] == ["c1", "c2"]


def test_outbox_queued_before_first_connection() -> None:
    d = Drive()
    d(SendText("early", "c0"))
    d(Start())
    d(LinkOpened(1))
    effects = d.frame(batch(*HISTORY)) + d.wake()
    assert sent_types(effects) == [USER_MESSAGE]


def test_echo_only_in_replay_marks_sent_without_resend() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(SendText("hello", "c1"))
    effects = reconnect_with(d, user_echo(5, "c1", "hello"))
    assert of(Delivery, effects) == [Delivery("c1", DeliveryStatus.SENT, "u5")]
    assert USER_MESSAGE not in sent_types(effects)
    assert d.state.counters.resends == 0


def check_echo(d: Drive, *replay: dict[str, Any]) -> list[Effect]:
    """Wake at the next echo check; if the driver closes to verify, resume with ``replay``."""
    effects = d.wake(d.state.outbox.next_check)
    closes = [e for e in of(CloseSocket, effects) if e.reason == "resuming to verify delivery"]
    if closes:
        effects += d(LinkClosed(closes[0].generation, 1000))
        effects += d.open(batch(*replay))
        effects += d.wake()
    return effects


def test_missing_echo_is_verified_by_resuming_then_resent_then_failed() -> None:
    d = Drive()
    d.settled_open(session_start(1, heartbeat_interval_seconds=0), *HISTORY[1:])
    start = d.t
    d(SendText("hello", "c1"))
    checks, resends = [], []
    failed_at = None
    for _ in range(20):  # bounded: a deadline that does not move must fail, not hang
        if failed_at is not None:
            break
        checks.append(round(d.state.outbox.next_check - start, 3))
        effects = check_echo(d)
        if USER_MESSAGE in sent_types(effects):
            resends.append(round(d.t - start, 3))
        if Delivery("c1", DeliveryStatus.FAILED) in effects:
            failed_at = round(d.t - start, 3)
    # each check without an echo closes and resumes the link at once (in this fake), and a
    # replay without the echo proves the message lost: it is resent once the replay settled
    # (0.5 s of quiet); each transmission's check waits 5, 5, 10, 15 s, then it fails
    assert resends == [check + 0.5 for check in checks[:3]]
    assert checks == [5.0] + [r + wait for r, wait in zip(resends, (5.0, 10.0, 15.0), strict=True)]
    assert failed_at == checks[-1]
    assert d.state.counters.resends == 3
    assert d.state.delivery("c1").transmissions == 4
    assert d.state.deadline is None or d.state.deadline > d.t
    assert USER_MESSAGE not in sent_types(d.wake(d.t + 100))


def test_a_late_echo_is_found_in_the_replay_and_never_resent() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(SendText("hello", "c1"))
    effects = d.wake(d.state.outbox.next_check)
    assert of(CloseSocket, effects) == [CloseSocket(1, 1000, "resuming to verify delivery")]
    assert USER_MESSAGE not in sent_types(effects), "never resent on a link that may hold it"
    effects = d(SendText("meanwhile", "c2"))
    assert not sent(effects), "queued: the link is closing"
    effects = d(LinkClosed(1, 1000))
    assert of(OpenSocket, effects) == [OpenSocket(2, "sess-1", 4)], "resumed at once"
    effects = d.open(batch(user_echo(5, "c1", "hello"))) + d.wake()
    assert Delivery("c1", DeliveryStatus.SENT, "u5") in effects
    assert [f["payload"]["text"] for f in sent(effects)] == ["meanwhile"]
    assert d.state.counters.resends == 0


def test_a_closing_handshake_that_never_completes_is_cut_short() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(SendText("hello", "c1"))
    d.wake(d.state.outbox.next_check)
    closing = d.t
    effects = d.wake()
    assert d.t == pytest.approx(closing + 2.0)
    assert of(AbortSocket, effects) == [AbortSocket(1, "closing handshake timed out")]
    assert of(OpenSocket, effects) == [OpenSocket(2, "sess-1", 4)]


def test_resend_checks_pause_while_disconnected_and_resume_after_settle() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(SendText("hello", "c1"))
    d(LinkClosed(1, 1006), at=d.t + 1)
    effects = d.wake()
    assert USER_MESSAGE not in sent_types(effects)
    effects = d.open(batch())
    assert USER_MESSAGE not in sent_types(effects)
    effects = d.wake()  # the replay settles: the unconfirmed message is resent once
    assert sent_types(effects).count(USER_MESSAGE) == 1
    assert d.state.counters.resends == 1


def test_resend_folds_with_original_into_one_message() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(SendText("hello", "c1"))
    d.frame(user_echo(5, "c1", "hello"))
    d.frame(user_echo(6, "c1", "hello"))
    users = [m for m in d.state.conversation.transcript if m.client_event_id == "c1"]
    assert len(users) == 1


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_blank_text_rejected_state_unchanged(text: str) -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    before = d.state
    with pytest.raises(LocalProtocolError, match="blank"):
        d(SendText(text))
    assert d.state is before


def _text_of_size(target: int, client_event_id: str, char: str = "é") -> str:
    base = encoded_size(UserMessage(text="", client_event_id=client_event_id))
    width = len(char.encode())
    text = char * ((target - base) // width)
    return text + "a" * (target - base - len(text.encode()))


def test_default_max_message_size_counts_utf8_bytes_of_frame() -> None:
    d = Drive()
    d.open(batch(event("SESSION_START", 1, {"capabilities": {"streaming": False}})))
    fits = _text_of_size(131072, "c1")
    assert len(fits) < 131072 // 2 + 100  # mostly two-byte characters
    d(SendText(fits, "c1"))
    too_big = _text_of_size(131073, "c2")
    before = d.state
    with pytest.raises(LocalProtocolError, match="131073 bytes"):
        d(SendText(too_big, "c2"))
    assert d.state is before


def test_default_limit_before_session_start() -> None:
    d = Drive()
    with pytest.raises(LocalProtocolError):
        d(SendText(_text_of_size(131073, "c1"), "c1"))
    d(SendText(_text_of_size(131072, "c2"), "c2"))


def test_session_start_small_limit() -> None:
    d = Drive()
    d.settled_open(session_start(1, max_message_size_bytes=200), *HISTORY[1:])
    assert d.state.max_message_bytes == 200
    d(SendText(_text_of_size(200, "c1"), "c1"))
    before = d.state
    with pytest.raises(LocalProtocolError, match="allows 200"):
        d(SendText(_text_of_size(201, "c2"), "c2"))
    assert d.state is before


def test_duplicate_client_event_id_rejected() -> None:
    d = Drive()
    d(SendText("a", "c1"))
    with pytest.raises(LocalProtocolError):
        d(SendText("b", "c1"))


@pytest.mark.parametrize(
    "intent", [SendText("hi"), EndSession(), SetTyping(True), SetTyping(False)]
)
def test_anything_after_end_is_refused(intent: Input) -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d.frame(event("SESSION_END", 5, {"reason": "REASON_AGENT_END"}))
    before = d.state
    with pytest.raises(LocalProtocolError):
        d(intent)
    assert d.state is before


def test_send_after_end_requested_is_refused() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    effects = d(EndSession())
    assert sent_types(effects) == ["EVENT_TYPE_USER_END_SESSION"]
    before = d.state
    with pytest.raises(LocalProtocolError):
        d(SendText("too late"))
    assert d.state is before


def test_end_without_session_end_closes_after_timeout() -> None:
    d = Drive(end_timeout_seconds=5)
    d.settled_open(session_start(1, heartbeat_interval_seconds=100), *HISTORY[1:])
    d(EndSession())
    effects = d.wake()
    assert of(CloseSocket, effects)
    assert of(Finished, effects)[0].kind is FinishKind.ENDED


def test_start_after_finished_refused() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d.frame(event("SESSION_END", 5, {"reason": "REASON_AGENT_END"}))
    with pytest.raises(LocalProtocolError):
        d(Start())


# --- typing -----------------------------------------------------------------------------------


def test_outgoing_typing_throttled() -> None:
    d = Drive(typing_throttle_seconds=3)
    d.settled_open(*HISTORY)
    t0 = d.t
    typing = []
    for offset, started in [(0, True), (1, True), (2.9, True), (3.1, True), (4, False), (5, False)]:
        effects = d(SetTyping(started), at=t0 + offset)
        typing += [(offset, f["payload"]["state"]) for f in sent(effects)]
    assert typing == [
        (0, "TYPING_STATE_STARTED"),
        (3.1, "TYPING_STATE_STARTED"),
        (4, "TYPING_STATE_STOPPED"),
    ]


def test_typing_not_sent_while_disconnected() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(LinkClosed(1, 1006))
    assert sent(d(SetTyping(True))) == []


@pytest.mark.parametrize(
    ("frame", "flag"),
    [
        (event("POLY_AGENT_THINKING", 5), "agent_thinking"),
        (
            event("LIVE_AGENT_TYPING", None, {"state": "TYPING_STATE_STARTED"}, id="lt1"),
            "live_agent_typing",
        ),
    ],
)
def test_incoming_indicator_expires(frame: dict[str, Any], flag: str) -> None:
    d = Drive(indicator_timeout_seconds=10)
    d.settled_open(session_start(1, heartbeat_interval_seconds=100), *HISTORY[1:])
    start = d.t
    d.frame(frame)
    assert getattr(d.state.conversation, flag)
    d.wake(start + 9)
    assert getattr(d.state.conversation, flag)
    assert d.state.deadline == pytest.approx(start + 10.01, abs=0.02)
    d.wake()
    assert not getattr(d.state.conversation, flag)


def test_indicators_cleared_on_resume() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d.frame(event("POLY_AGENT_THINKING", 5))
    assert d.state.conversation.agent_thinking
    reconnect_with(d)
    assert not d.state.conversation.agent_thinking
    assert d.state.indicator_since is None


# --- idle and sleep ---------------------------------------------------------------------------


def test_sleep_triggers_probe_and_liveness_check() -> None:
    d = Drive(liveness_grace_seconds=10)
    d.settled_open(*HISTORY)
    generation = d.state.generation
    # monotonic advances 2 s, wall clock 1 hour: the machine slept
    effects = d(WakeUp(), at=d.t + 2, jump=3600)
    assert sent_types(effects) == [HEARTBEAT]
    assert d.state.deadline == pytest.approx(d.t + 10)
    effects = d.wake()
    assert of(AbortSocket, effects)
    assert of(AbortSocket, effects)[0].generation == generation
    assert d.state.link is LinkStatus.RECONNECTING


def test_sleep_probe_answered_keeps_link() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(WakeUp(), at=d.t + 2, jump=3600)
    d.frame(event("HEARTBEAT", None, id="hb-after-sleep"))
    effects = d.wake()
    assert not of(AbortSocket, effects)
    assert d.state.link is LinkStatus.OPEN


def test_no_probe_without_clock_jump() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    assert sent(d(WakeUp(), at=d.t + 2, jump=5)) == []


def test_resume_window_checked_while_disconnected() -> None:
    d = Drive(idle_timeout_seconds=600)
    d.settled_open(*HISTORY)
    d(SendText("hi", "c1"), at=1.0)
    d(LinkClosed(1, 1006), at=2.0)
    assert d.state.deadline is not None
    assert d.state.deadline <= 1.0 + 600
    # woken before the reconnect is due, but the wall clock says the session expired
    effects = d(WakeUp(), at=2.1, jump=700)
    assert of(Finished, effects)[0].kind is FinishKind.ENDED_WHILE_DISCONNECTED


# --- observability ----------------------------------------------------------------------------


def test_a_close_without_a_code_is_said_as_1006() -> None:
    """A socket that ended without a close frame has no code; the status says 1006 (the code
    reserved for exactly that), never 'None'."""
    d = Drive()
    d(Start())
    d(LinkOpened(1))
    (status,) = of(StatusChanged, d(LinkClosed(1)))
    assert status.reason == "closed (1006)"


def test_status_changed_fields() -> None:
    d = Drive()
    effects = d(Start())
    assert of(StatusChanged, effects) == [
        StatusChanged(LinkStatus.CONNECTING, "starting", 0, None, 1)
    ]
    effects = d(LinkOpened(1))
    assert of(StatusChanged, effects) == [StatusChanged(LinkStatus.OPEN, "connected", 0, None, 1)]
    effects = d(LinkClosed(1, 1006))
    (status,) = of(StatusChanged, effects)
    assert (status.status, status.reason, status.attempt, status.generation) == (
        LinkStatus.RECONNECTING,
        "closed (1006)",
        1,
        1,
    )
    assert status.retry_in is not None
    assert 0.0 < status.retry_in <= 1.0
    effects = d.wake()
    assert of(StatusChanged, effects) == [
        StatusChanged(LinkStatus.CONNECTING, "reconnecting", 1, None, 2)
    ]


def test_counters() -> None:
    d = Drive()
    d.settled_open(session_start(1, heartbeat_interval_seconds=0), *HISTORY[1:])
    d.frame(batch(agent_message(4), agent_message(5)))  # 4 is a duplicate
    d(SendText("x", "c1"))
    check_echo(d, agent_message(6))  # no echo at +5: resumed to verify, then resent
    reconnect_with(d, agent_message(9))  # gap 7..8; still no echo: resent again
    d.frame(user_echo(10, "c1", "x"))
    c = d.state.counters
    assert (c.reconnects, c.resumes, c.gaps, c.duplicates_dropped) == (2, 2, 1, 1)
    assert c.resends == 2


def test_protocol_violation_counted_and_ignored() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    before = d.state.conversation
    effects = d(FrameReceived(1, "{not json"))
    effects += d(FrameReceived(1, b"\x00"))
    assert d.state.counters.protocol_violations == 2
    assert d.state.conversation == before
    assert d.state.link is LinkStatus.OPEN
    assert not sent(effects)


# --- determinism ------------------------------------------------------------------------------


def _scenario(seed: int) -> list[Effect]:
    link = Link(SessionState.new("s", seed=seed), ModelServer(heartbeat_interval_seconds=5))
    link.feed(Start())
    link.settle()
    link.feed(SendText("one"))
    link.deliver()
    for _ in range(4):
        link.drop()
        link.advance(40)
        link.feed(SendText("again"))
        link.lose_outbound = 1
        link.settle()
        link.advance(6)
        link.deliver()
    return link.effects


def test_same_seed_same_effects() -> None:
    assert _scenario(3) == _scenario(3)
    assert _scenario(3) != _scenario(4)


# --- behaviours tightened after review -------------------------------------------------------


def test_late_echo_turns_failed_into_sent() -> None:
    d = Drive()
    d.settled_open(session_start(1, heartbeat_interval_seconds=0), *HISTORY[1:])
    d(SendText("hello", "c1"))
    for _ in range(10):
        if d.state.delivery("c1").status is DeliveryStatus.FAILED:
            break
        check_echo(d)
    assert d.state.delivery("c1").status is DeliveryStatus.FAILED
    effects = d.frame(user_echo(9, "c1", "hello"))
    assert Delivery("c1", DeliveryStatus.SENT, d.state.delivery("c1").message_id) in effects
    assert d.state.delivery("c1").status is DeliveryStatus.SENT


def test_reconnect_does_not_fail_a_message_before_its_last_wait() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(SendText("hello", "c1"))
    for _ in range(3):  # three resends: the budget is spent, the last wait is running
        check_echo(d)
    entry = d.state.delivery("c1")
    assert entry.transmissions == 4
    assert entry.status is DeliveryStatus.PENDING
    d(LinkClosed(d.state.generation, 1006), at=d.t + 1)
    d.wake()
    effects = d.open(batch())
    effects += d.wake()  # settles: nothing left to resend, and not failed early
    assert USER_MESSAGE not in sent_types(effects)
    assert d.state.delivery("c1").status is DeliveryStatus.PENDING
    d.wake(entry.next_check)
    assert d.state.delivery("c1").status is DeliveryStatus.FAILED


def test_idle_clock_starts_at_connection_when_nothing_was_sent() -> None:
    d = Drive()
    d.open(batch(session_start(1), joined(2)))
    d.frame(agent_message(3, "hi"))  # settles; history has JOINED, so nothing is sent
    d(LinkClosed(d.state.generation, 1006), at=d.t + 1)
    d.wake()
    effects = d(HandshakeFailed(d.state.generation, 404), at=d.t + 1, jump=700.0)
    assert of(Finished, effects)[0].kind is FinishKind.ENDED_WHILE_DISCONNECTED


def test_expiry_checked_before_reopening_after_sleep() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(LinkClosed(d.state.generation, 1006), at=d.t + 1)
    reconnect_at = d.state.reconnect_at
    assert reconnect_at is not None
    effects = d(WakeUp(), at=reconnect_at + 1, jump=900.0)
    assert not of(OpenSocket, effects)
    assert of(Finished, effects)[0].kind is FinishKind.ENDED_WHILE_DISCONNECTED


def test_idle_deadline_fires_even_if_the_wall_clock_was_stepped_back() -> None:
    d = Drive(idle_timeout_seconds=60, default_max_reconnect_attempts=0)
    d.settled_open(*HISTORY)
    d(SendText("hi", "c1"), at=1.0)
    d(LinkClosed(d.state.generation, 1006), at=2.0)
    d.wall -= 5.0  # NTP stepped the wall clock back
    for _ in range(200):  # every wake-up at the deadline must make progress
        deadline = d.state.deadline
        assert deadline is not None
        if d.state.link is LinkStatus.CONNECTING:
            d(ConnectFailed(d.state.generation), at=max(d.t, deadline))
        else:
            before = (deadline, d.state.link)
            effects = d.wake()
            assert effects or (d.state.deadline, d.state.link) != before
        if d.state.finished is not None:
            break
    assert d.state.finished is not None
    assert d.state.finished.kind is FinishKind.ENDED_WHILE_DISCONNECTED


# --- replacement sessions ---------------------------------------------------------------------


def test_replacement_session_continues_with_a_fresh_conversation() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(LinkClosed(d.state.generation, 4001))
    effects = d(StartNewSession("sess-2"))
    (opened,) = of(OpenSocket, effects)
    assert (opened.session_id, opened.cursor) == ("sess-2", 0)
    assert d.state.conversation.cursor == 0
    assert not d.state.renewing
    effects = d.settled_open(session_start(1))
    assert JOIN in sent_types(effects)  # a new conversation: the agent is asked to join


def test_replacements_in_a_row_are_bounded_and_reset_by_an_open_link() -> None:
    d = Drive(max_new_sessions=2)
    d.settled_open(*HISTORY)
    for n in (2, 3):
        assert of(NeedNewSession, d(LinkClosed(d.state.generation, 4001)))
        d(StartNewSession(f"sess-{n}"))
        effects = d(HandshakeFailed(d.state.generation, 404)) if n == 3 else []
    # third "session unknown" in a row without a link opening: give up
    assert not of(NeedNewSession, effects)
    assert of(Finished, effects)[0].kind is FinishKind.NEW_SESSION_REQUIRED
    # an open link restarts the count
    d2 = Drive(max_new_sessions=1)
    d2.settled_open(*HISTORY)
    for n in range(3):
        assert of(NeedNewSession, d2(LinkClosed(d2.state.generation, 4001)))
        d2(StartNewSession(f"s{n}"))
        d2(LinkOpened(d2.state.generation))
        assert d2.state.new_sessions_in_a_row == 0


def test_zero_replacements_finishes_at_once() -> None:
    d = Drive(max_new_sessions=0)
    d.settled_open(*HISTORY)
    effects = d(LinkClosed(d.state.generation, 4001))
    assert not of(NeedNewSession, effects)
    assert of(Finished, effects)[0].kind is FinishKind.NEW_SESSION_REQUIRED


def test_failed_replacement_finishes_with_its_error() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    d(SendText("hi", "c1"))
    effects = d(LinkClosed(d.state.generation, 4001))
    assert Delivery("c1", DeliveryStatus.FAILED) in effects  # visible, never lost silently
    effects = d(NewSessionFailed("create session: 500 Failed to create session"))
    (finished,) = of(Finished, effects)
    assert finished == Finished(
        FinishKind.NEW_SESSION_REQUIRED, "create session: 500 Failed to create session"
    )
    with pytest.raises(LocalProtocolError):
        d(SendText("again"))


def test_start_new_session_refused_while_the_session_is_fine() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    before = d.state
    with pytest.raises(LocalProtocolError):
        d(StartNewSession("other"))
    assert d.state == before


def test_start_new_session_after_giving_up_starts_over_on_the_new_session() -> None:
    d = Drive(default_max_reconnect_attempts=1)
    d.settled_open(*HISTORY)
    d(SendText("lost", "c1"))
    d(LinkClosed(1, 1006))
    d.wake()
    effects = d(ConnectFailed(d.state.generation))
    assert of(Finished, effects)[0].kind is FinishKind.GAVE_UP
    effects = d(StartNewSession("fresh"))
    assert of(OpenSocket, effects) == [OpenSocket(d.state.generation, "fresh", 0)]
    assert d.state.finished is None
    assert d.state.conversation.cursor == 0
    assert d.state.delivery("c1").status is DeliveryStatus.FAILED  # kept, not resent


def test_start_new_session_after_the_conversation_ended() -> None:
    d = Drive()
    d.open(batch(*HISTORY, event("SESSION_END", 5, {"reason": "REASON_NATURAL_END"})))
    assert d.state.finished is not None
    effects = d(StartNewSession("next"))
    assert of(OpenSocket, effects) == [OpenSocket(d.state.generation, "next", 0)]


def test_reset_keeps_the_events_this_replay_delivered_before_the_conflict() -> None:
    d = Drive()
    d.settled_open(*HISTORY)
    # The server's history still starts with our SESSION_START, then diverges.
    diverged = [HISTORY[0], *(dict(f, id=f"other-{f['sequence']}") for f in HISTORY[1:])]
    effects = reconnect_with(d, *diverged)
    assert [r.kind for r in of(Resumed, effects)] == [ResumeKind.RESET]
    assert [e.id for e in d.state.conversation.timeline] == [
        HISTORY[0]["id"],
        "other-2",
        "other-3",
        "other-4",
    ]


def test_a_step_cannot_write_a_field_the_state_does_not_have() -> None:
    from polyai_messaging.driver._turn import Turn

    turn = Turn(SessionState.new("s"), Now(0.0, WALL_EPOCH))
    turn.update(attempt=2)
    assert turn.state.attempt == 2
    assert turn.state == attrs.evolve(SessionState.new("s"), attempt=2)
    with pytest.raises(TypeError, match="atempt"):
        turn.update(atempt=3)


def test_sessions_made_without_a_config_share_the_default_one() -> None:
    """It is immutable: one for every session, not some 270 bytes each."""
    first, second = SessionState.new("a"), SessionState.new("b", seed=3)
    assert first.config is second.config
    assert first.config == SessionConfig()
    assert SessionState.new("c", config=SessionConfig(max_resends=1)).config.max_resends == 1
