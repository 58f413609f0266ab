"""Step handlers for the link's life: opening and reopening the socket, reconnects with
backoff, replacement sessions, finishing.

What follows an open is :mod:`._replay`'s, what the clock demands :mod:`._clock`'s, frames
:mod:`._inbound`'s and the outbox :mod:`._intents`'.
"""

from __future__ import annotations

from ..core import LocalProtocolError
from ._backoff import draw
from ._effects import (
    CloseSocket,
    Delivery,
    DeliveryStatus,
    Finished,
    FinishKind,
    LinkStatus,
    NeedNewSession,
    NewSessionReason,
    OpenSocket,
)
from ._inputs import (
    ConnectFailed,
    HandshakeFailed,
    LinkClosed,
    LinkOpened,
    NewSessionFailed,
    Start,
    StartNewSession,
)
from ._replay import resume_cursor
from ._state import SessionState
from ._turn import Turn

__all__ = [
    "GAP_REASON",
    "VERIFY_REASON",
    "current",
    "expired_while_disconnected",
    "finish",
    "idle_expired",
    "on_closed",
    "on_connect_failed",
    "on_handshake_failed",
    "on_new_session_failed",
    "on_opened",
    "on_start",
    "on_start_new_session",
    "open_link",
    "resume_now",
    "schedule_reconnect",
]

_EXPIRED_REASON = "idle timeout passed while disconnected"
VERIFY_REASON = "resuming to verify delivery"
GAP_REASON = "resuming to fill a gap"


# --- link lifecycle ---------------------------------------------------------------------------


def on_start(turn: Turn, _: Start) -> None:
    if turn.state.finished is not None:
        raise LocalProtocolError("the session is over; start a new one")
    if turn.state.link is not LinkStatus.IDLE:
        return
    open_link(turn, "starting")


def open_link(turn: Turn, reason: str) -> None:
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
    )
    turn.status(LinkStatus.CONNECTING, reason)
    turn.emit(OpenSocket(turn.state.generation, s.session_id, resume_cursor(s)))


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
    elif s.last_sent_monotonic is None:
        # Restored from a save: the last frame's wall time, placed on this process's clock.
        turn.update(last_sent_monotonic=turn.t - max(0.0, turn.now.wall - s.last_sent_wall))
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


def on_closed(turn: Turn, event: LinkClosed) -> None:
    if not current(turn, event.generation, LinkStatus.CONNECTING, LinkStatus.OPEN):
        return
    s = turn.state
    if s.conversation.ended:
        finish(turn, FinishKind.ENDED, s.conversation.end_reason, close=False)
    elif s.closing_at is not None:
        turn.count(reconnects=1)
        open_link(turn, s.closing_reason)
    elif event.code == 4001:
        _need_new_session(turn, NewSessionReason.SESSION_UNKNOWN)
    else:
        # No code: the socket ended without a close frame (1006 is that code's name for it).
        schedule_reconnect(turn, f"closed ({1006 if event.code is None else event.code})")


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
        schedule_reconnect(turn, f"handshake refused ({event.status})", floor)


def on_connect_failed(turn: Turn, event: ConnectFailed) -> None:
    if current(turn, event.generation, LinkStatus.CONNECTING):
        schedule_reconnect(turn, "connection failed")


def schedule_reconnect(turn: Turn, reason: str, floor: float = 0.0) -> None:
    s = turn.state
    if idle_expired(turn):
        expired_while_disconnected(turn)
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


def idle_expired(turn: Turn) -> bool:
    s = turn.state
    if s.last_sent_wall is None:
        return False
    # Wall time sees a sleep, monotonic time sees a wall clock stepped back; either suffices.
    # (The deadline is monotonic, so a wake-up at it must find the session expired.) A state
    # restored in another process knows only the wall time until its first link opens.
    elapsed = turn.now.wall - s.last_sent_wall
    if s.last_sent_monotonic is not None:
        elapsed = max(elapsed, turn.t - s.last_sent_monotonic)
    return elapsed >= s.config.idle_timeout_seconds


def expired_while_disconnected(turn: Turn) -> None:
    # The conversation is over: a replacement would be a different conversation, so the
    # application decides (it may feed StartNewSession with a session of its own).
    finish(turn, FinishKind.ENDED_WHILE_DISCONNECTED, _EXPIRED_REASON, close=False)


def _need_new_session(turn: Turn, reason: NewSessionReason) -> None:
    if reason is NewSessionReason.SESSION_NOT_FOUND and idle_expired(turn):
        expired_while_disconnected(turn)
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
    open_link(turn, "new session")
