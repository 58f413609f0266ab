"""Step handlers for the link's life and for time.

Opening and reopening the socket, settling the replay that follows each open, reconnect
scheduling with backoff, replacement sessions, finishing, and what the clock demands
(heartbeats, liveness, handshake and idle timeouts, a machine that slept). Frames that arrive
on an open link are :mod:`.driver_inbound`'s; the outbox is :mod:`.driver_outbox`'s.
"""

from __future__ import annotations

from ..core import Heartbeat, LocalProtocolError, RequestPolyAgentJoin, UserEndSession
from ._backoff import draw
from ._effects import (
    AbortSocket,
    CloseSocket,
    Delivery,
    DeliveryStatus,
    Finished,
    FinishKind,
    LinkStatus,
    NeedNewSession,
    NewSessionReason,
    OpenSocket,
    Resumed,
    ResumeKind,
)
from ._inputs import (
    ConnectFailed,
    HandshakeFailed,
    LinkClosed,
    LinkOpened,
    NewSessionFailed,
    Start,
    StartNewSession,
    WakeUp,
)
from ._intents import after_replay, unconfirmed
from ._state import SessionState
from ._turn import Turn

__all__ = [
    "current",
    "finish",
    "notice_gap",
    "notice_sleep",
    "on_closed",
    "on_connect_failed",
    "on_handshake_failed",
    "on_new_session_failed",
    "on_opened",
    "on_start",
    "on_start_new_session",
    "on_wake",
    "resume_now",
    "settle",
]

_EXPIRED_REASON = "idle timeout passed while disconnected"
_VERIFY_REASON = "resuming to verify delivery"
_GAP_REASON = "resuming to fill a gap"


# --- link lifecycle ---------------------------------------------------------------------------


def on_start(turn: Turn, _: Start) -> None:
    if turn.state.finished is not None:
        raise LocalProtocolError("the session is over; start a new one")
    if turn.state.link is not LinkStatus.IDLE:
        return
    _open(turn, "starting")


def _open(turn: Turn, reason: str) -> None:
    s = turn.state
    turn.update(
        generation=s.generation + 1,
        link=LinkStatus.CONNECTING,
        connecting_since=turn.t,
        reconnect_at=None,
        cursor_at_open=s.conversation.cursor,
        closing_at=None,
        reset_seen=False,
        replay_log=None,
        ids_at_open=None,
    )
    turn.status(LinkStatus.CONNECTING, reason)
    turn.emit(OpenSocket(turn.state.generation, s.session_id, _resume_cursor(s)))


def _resume_cursor(state: SessionState) -> int:
    """Where the next replay starts: after the highest sequence held, or just before the first
    one missing below it (the server replays only what follows the cursor, so a gap is filled
    only by starting before it; what we already hold is re-sent and dropped as duplicates).
    Holes that a replay covering them did not fill are not asked for again."""
    gap = first_gap(state)
    return state.conversation.cursor if gap is None else gap - 1


def first_gap(state: SessionState) -> int | None:
    """The first missing sequence a replay might still fill (above the known holes)."""
    gap = state.conversation.first_gap_after(state.holes_through)
    return None if gap is None else gap[0]


def current(turn: Turn, generation: int, *links: LinkStatus) -> bool:
    """Whether a link input still concerns the socket in hand (not a stale generation)."""
    s = turn.state
    return generation == s.generation and s.link in links


def on_opened(turn: Turn, event: LinkOpened) -> None:
    if not current(turn, event.generation, LinkStatus.CONNECTING):
        return
    s = turn.state
    interval = s.heartbeat_interval
    turn.update(
        link=LinkStatus.OPEN,
        opened_at=turn.t,
        last_inbound=turn.t,
        next_heartbeat=turn.t + interval if interval > 0 else None,
        settled=False,
        # Until the replay's first frame comes, only a long bound settles it (no replay at all).
        settle_at=turn.t + s.config.replay_timeout_seconds,
        replay_latency=None,
        conversation=s.conversation.without_indicators(),
        indicator_since=None,
    )
    turn.update(new_sessions_in_a_row=0)
    if s.last_sent_wall is None:
        # The server's idle clock starts with the connection, even before we send anything.
        turn.update(last_sent_wall=turn.now.wall, last_sent_monotonic=turn.t)
    turn.status(LinkStatus.OPEN, "connected")


def resume_now(turn: Turn, reason: str) -> None:
    """Close the open link politely, then resume at once: the next replay is exact.

    Used when a message's echo is late: it was either lost or is still queued on a slow link,
    and resending it on the same link could store it twice. The closing handshake comes after
    every frame we sent, so once it completes the server has all of them, and :func:`settle`
    resends only what the next replay lacks. Also used to fill a gap (:func:`_resume_cursor`).
    """
    s = turn.state
    turn.emit(CloseSocket(s.generation, 1000, reason))
    turn.update(
        closing_at=turn.t, closing_reason=reason, settled=False, settle_at=None, next_heartbeat=None
    )


def join_if_needed(turn: Turn, *, proven: bool = True) -> None:
    """Ask the PolyAI agent to join when the history says so (none yet, or an error asked us to
    join again), unless a join of ours is still unanswered and nothing ``proven`` it lost.

    After the first join, at most ``max_join_retries`` more are sent until the agent joins;
    then the budget is whole again.
    """
    s = turn.state
    conversation = s.conversation
    if conversation.ended or not conversation.join_needed:
        return
    if s.join_unconfirmed and not proven:
        return
    if conversation.agent_joined or conversation.join_requested or s.joins_sent:
        if s.join_retries >= s.config.max_join_retries:
            return
        turn.update(join_retries=s.join_retries + 1)
    turn.send(RequestPolyAgentJoin())
    turn.update(join_unconfirmed=True, joins_sent=turn.state.joins_sent + 1)


def settle(turn: Turn) -> None:
    """The replay after an open is over: report the resume, then send what waited for it."""
    turn.update(settled=True, settle_at=None, replay_log=None, ids_at_open=None)
    s = turn.state
    conversation = s.conversation
    replayed = s.replay_latency is not None
    # A replay is the server's whole history: a join it does not show was lost.
    join_if_needed(turn, proven=replayed)
    if s.was_connected:
        new_gaps = conversation.gaps_after(s.cursor_at_open)
        if s.reset_seen:
            kind = ResumeKind.RESET
        elif new_gaps:
            kind = ResumeKind.RESUMED_WITH_GAP
        else:
            kind = ResumeKind.RESUMED
        turn.count(resumes=1, gaps=len(new_gaps))
        turn.emit(Resumed(kind, new_gaps, s.cursor_at_open))
    turn.update(was_connected=True, gap_seen_at=None)
    if replayed:
        # The replay covered every gap up to what we held: those still open are holes (the
        # server has no such sequences), not to be asked for again.
        turn.update(holes_through=max(s.holes_through, s.cursor_at_open))
    after_replay(turn, replayed=replayed)
    notice_gap(turn)
    if turn.state.end_requested_at is not None and not turn.state.conversation.ended:
        turn.send(UserEndSession())


def notice_gap(turn: Turn) -> None:
    """Start (or stop) the clock of a gap that a resume could fill; run on a settled link."""
    s = turn.state
    if first_gap(s) is None:
        if s.gap_seen_at is not None:
            turn.update(gap_seen_at=None)
    elif s.gap_seen_at is None:
        turn.update(gap_seen_at=turn.t)


def on_closed(turn: Turn, event: LinkClosed) -> None:
    if not current(turn, event.generation, LinkStatus.CONNECTING, LinkStatus.OPEN):
        return
    s = turn.state
    if s.conversation.ended:
        finish(turn, FinishKind.ENDED, s.conversation.end_reason, close=False)
    elif s.closing_at is not None:
        turn.count(reconnects=1)
        _open(turn, s.closing_reason)
    elif event.code == 4001:
        _need_new_session(turn, NewSessionReason.SESSION_UNKNOWN)
    else:
        _schedule_reconnect(turn, f"closed ({event.code})")


def on_handshake_failed(turn: Turn, event: HandshakeFailed) -> None:
    if not current(turn, event.generation, LinkStatus.CONNECTING):
        return
    if event.status == 404:
        _need_new_session(turn, NewSessionReason.SESSION_NOT_FOUND)
    elif event.status in (401, 403):
        _need_new_session(turn, NewSessionReason.AUTHENTICATION_FAILED)
    elif event.status == 400:
        finish(turn, FinishKind.REJECTED, "invalid connection parameters", close=False)
    else:
        floor = (event.retry_after or 0.0) if event.status == 429 else 0.0
        _schedule_reconnect(turn, f"handshake refused ({event.status})", floor)


def on_connect_failed(turn: Turn, event: ConnectFailed) -> None:
    if current(turn, event.generation, LinkStatus.CONNECTING):
        _schedule_reconnect(turn, "connection failed")


def _schedule_reconnect(turn: Turn, reason: str, floor: float = 0.0) -> None:
    s = turn.state
    if _idle_expired(turn):
        _expired_while_disconnected(turn)
        return
    attempt = s.attempt
    if s.opened_at is not None and turn.t - s.opened_at >= s.config.stability_window_seconds:
        attempt = 0
    attempt += 1
    cap = s.max_reconnect_attempts
    if cap and attempt > cap:
        turn.update(attempt=attempt - 1)
        finish(turn, FinishKind.GAVE_UP, f"{cap} reconnect attempts failed", close=False)
        return
    delay = max(s.config.backoff.delay(attempt, draw(s.seed, s.draws)), floor)
    turn.update(
        attempt=attempt,
        draws=s.draws + 1,
        link=LinkStatus.RECONNECTING,
        reconnect_at=turn.t + delay,
        opened_at=None,
        next_heartbeat=None,
        settled=False,
        settle_at=None,
        conversation=s.conversation.without_indicators(),
        indicator_since=None,
    )
    turn.count(reconnects=1)
    turn.status(LinkStatus.RECONNECTING, reason, retry_in=delay)


def _idle_expired(turn: Turn) -> bool:
    s = turn.state
    if s.last_sent_wall is None or s.last_sent_monotonic is None:
        return False
    # Wall time sees a sleep, monotonic time sees a wall clock stepped back; either suffices.
    # (The deadline is monotonic, so a wake-up at it must find the session expired.)
    elapsed = max(turn.now.wall - s.last_sent_wall, turn.t - s.last_sent_monotonic)
    return elapsed >= s.config.idle_timeout_seconds


def _expired_while_disconnected(turn: Turn) -> None:
    # The conversation is over: a replacement would be a different conversation, so the
    # application decides (it may feed StartNewSession with a session of its own).
    finish(turn, FinishKind.ENDED_WHILE_DISCONNECTED, _EXPIRED_REASON, close=False)


def _need_new_session(turn: Turn, reason: NewSessionReason) -> None:
    if reason is NewSessionReason.SESSION_NOT_FOUND and _idle_expired(turn):
        _expired_while_disconnected(turn)
        return
    s = turn.state
    limit = s.config.max_new_sessions
    if s.new_sessions_in_a_row >= limit:
        note = f"{reason.value}; {limit} replacement sessions in a row did not connect"
        finish(turn, FinishKind.NEW_SESSION_REQUIRED, note, close=False)
        return
    _stand_down(turn, reason.value)
    turn.update(renewing=True, new_sessions_in_a_row=s.new_sessions_in_a_row + 1)
    turn.emit(NeedNewSession(reason))


def on_new_session_failed(turn: Turn, event: NewSessionFailed) -> None:
    if turn.state.renewing:
        finish(turn, FinishKind.NEW_SESSION_REQUIRED, event.error, close=False)


def finish(turn: Turn, kind: FinishKind, reason: str | None, *, close: bool) -> None:
    """End the session for good: close an open link if asked, stand down, emit Finished."""
    s = turn.state
    if close and s.link is LinkStatus.OPEN:
        turn.emit(CloseSocket(s.generation, 1000, "session ended"))
    _stand_down(turn, reason or kind.value)
    turn.update(finished=Finished(kind, reason), renewing=False)
    turn.emit(Finished(kind, reason))


def _stand_down(turn: Turn, reason: str) -> None:
    """No link, no timers; messages still pending are failed, visibly (never lost silently)."""
    outbox, failed = turn.state.outbox.fail_pending()
    for entry in failed:
        turn.emit(Delivery(entry.client_event_id, DeliveryStatus.FAILED))
    turn.update(
        link=LinkStatus.CLOSED,
        reconnect_at=None,
        connecting_since=None,
        next_heartbeat=None,
        settle_at=None,
        end_requested_at=None,
        indicator_since=None,
        outbox=outbox,
    )
    turn.status(LinkStatus.CLOSED, reason)


def on_start_new_session(turn: Turn, event: StartNewSession) -> None:
    s = turn.state
    if not (s.renewing or s.finished is not None):
        raise LocalProtocolError(
            "a new session can only follow NeedNewSession or a Finished session"
        )
    # What outlives one session id carries over: the random stream (seeded runs stay
    # reproducible), the generation (frames from the old socket stay stale), the outbox and
    # counters, and the replacements in a row (so max_new_sessions still bounds them).
    turn.state = SessionState(
        session_id=event.session_id,
        config=s.config,
        seed=s.seed,
        draws=s.draws,
        generation=s.generation,
        outbox=s.outbox,
        counters=s.counters,
        new_sessions_in_a_row=s.new_sessions_in_a_row,
    )
    _open(turn, "new session")


# --- time -------------------------------------------------------------------------------------


def notice_sleep(turn: Turn) -> None:
    """Probe an open link when wall time jumped past monotonic time (run before every input)."""
    s = turn.state
    last = s.last_now
    if last is None:
        return
    jump = (turn.now.wall - last.wall) - (turn.now.monotonic - last.monotonic)
    if jump < s.config.sleep_jump_seconds or s.link is not LinkStatus.OPEN:
        return
    # The machine slept: the socket may be long dead. Probe now and give it one grace period.
    turn.send(Heartbeat())
    turn.update(last_inbound=turn.t - s.heartbeat_interval)


def on_wake(turn: Turn, _: WakeUp) -> None:
    s = turn.state
    t = turn.t
    if s.indicator_since_deadline is not None and s.indicator_since_deadline <= t:
        turn.update(conversation=s.conversation.without_indicators(), indicator_since=None)
    if s.link is LinkStatus.RECONNECTING and _idle_expired(turn):
        _expired_while_disconnected(turn)
        return
    if s.link is LinkStatus.RECONNECTING and s.reconnect_at is not None and s.reconnect_at <= t:
        _open(turn, "reconnecting")
        return
    connecting = s.connecting_since
    if s.link is LinkStatus.CONNECTING and connecting is not None:
        if connecting + s.config.connect_timeout_seconds <= t:
            turn.emit(AbortSocket(s.generation, "handshake timed out"))
            _schedule_reconnect(turn, "handshake timed out")
        return
    if s.link is not LinkStatus.OPEN:
        idle = s.finished is None and not s.renewing and s.link is not LinkStatus.IDLE
        if idle and _idle_expired(turn):
            _expired_while_disconnected(turn)
        return
    closing = s.closing_at
    if closing is not None:
        if closing + s.config.close_timeout_seconds <= t:
            turn.emit(AbortSocket(s.generation, "closing handshake timed out"))
            turn.count(reconnects=1)
            _open(turn, s.closing_reason)
        return
    liveness = s.liveness_deadline
    if liveness is not None and liveness <= t:
        turn.emit(AbortSocket(s.generation, "no inbound frame within heartbeat interval + grace"))
        _schedule_reconnect(turn, "link silent")
        return
    if not s.settled and s.settle_at is not None and s.settle_at <= t:
        settle(turn)
    if turn.state.next_heartbeat is not None and turn.state.next_heartbeat <= t:
        turn.send(Heartbeat())
        interval = turn.state.heartbeat_interval
        turn.update(next_heartbeat=t + interval if interval > 0 else None)
    if turn.state.settled and unconfirmed(turn):
        resume_now(turn, _VERIFY_REASON)
        return
    gap_seen = turn.state.gap_seen_at
    if gap_seen is not None and gap_seen + s.config.gap_repair_seconds <= t:
        resume_now(turn, _GAP_REASON)
        return
    ended = turn.state.end_requested_at
    if ended is not None and ended + s.config.end_timeout_seconds <= t:
        finish(turn, FinishKind.ENDED, "user ended (no SESSION_END received)", close=True)
