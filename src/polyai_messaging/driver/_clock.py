"""Step handlers for time: what the clock demands of the link, the replay and the outbox.

Heartbeats, liveness, handshake, closing and idle timeouts, a replay that settles by quiet, echo
checks and gap repairs that come due, and a machine that slept.
"""

from __future__ import annotations

from typing import Final

from ..core import Heartbeat, encode
from ._effects import AbortSocket, FinishKind, LinkStatus
from ._inputs import WakeUp
from ._intents import unconfirmed
from ._link import (
    GAP_REASON,
    VERIFY_REASON,
    expired_while_disconnected,
    finish,
    idle_expired,
    open_link,
    resume_now,
    schedule_reconnect,
)
from ._replay import settle
from ._turn import Turn

__all__ = ["notice_sleep", "on_wake"]

_HEARTBEAT_FRAME: Final = encode(Heartbeat())
"""Every heartbeat is the same frame: encoded once, not on every heartbeat of every session."""


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
    turn.send_encoded(_HEARTBEAT_FRAME, last_inbound=turn.t - s.heartbeat_interval)


def on_wake(turn: Turn, _: WakeUp) -> None:
    s = turn.state
    if s.indicator_since_deadline is not None and s.indicator_since_deadline <= turn.t:
        turn.update(conversation=s.conversation.without_indicators(), indicator_since=None)
    if s.link is LinkStatus.OPEN:
        _wake_open(turn)
    else:
        _wake_away(turn)


def _wake_away(turn: Turn) -> None:
    """Time passes with no open link: expiry, the next reconnect, a handshake timing out."""
    s = turn.state
    t = turn.t
    if s.link is LinkStatus.RECONNECTING:
        if idle_expired(turn):
            expired_while_disconnected(turn)
        elif s.reconnect_at is not None and s.reconnect_at <= t:
            open_link(turn, "reconnecting")
    elif s.link is LinkStatus.CONNECTING and s.connecting_since is not None:
        if s.connecting_since + s.config.connect_timeout_seconds <= t:
            turn.emit(AbortSocket(s.generation, "handshake timed out"))
            schedule_reconnect(turn, "handshake timed out")
    elif (
        s.finished is None
        and not s.renewing
        and s.link is not LinkStatus.IDLE
        and idle_expired(turn)
    ):
        expired_while_disconnected(turn)


def _wake_open(turn: Turn) -> None:
    """Time passes on the open link: closing, liveness, the replay, heartbeats, checks."""
    s = turn.state
    t = turn.t
    if s.closing_at is not None:
        if s.closing_at + s.config.close_timeout_seconds <= t:
            turn.emit(AbortSocket(s.generation, "closing handshake timed out"))
            turn.count(reconnects=1)
            open_link(turn, s.closing_reason)
        return
    liveness = s.liveness_deadline
    if liveness is not None and liveness <= t:
        turn.emit(AbortSocket(s.generation, "no inbound frame within heartbeat interval + grace"))
        schedule_reconnect(turn, "link silent")
        return
    if not s.settled and s.settle_at is not None and s.settle_at <= t:
        settle(turn)
    if turn.state.next_heartbeat is not None and turn.state.next_heartbeat <= t:
        interval = turn.state.heartbeat_interval
        turn.send_encoded(_HEARTBEAT_FRAME, next_heartbeat=t + interval if interval > 0 else None)
    if turn.state.settled and unconfirmed(turn):
        resume_now(turn, VERIFY_REASON)
        return
    gap_seen = turn.state.gap_seen_at
    if gap_seen is not None and gap_seen + s.config.gap_repair_seconds <= t:
        resume_now(turn, GAP_REASON)
        return
    ended = turn.state.end_requested_at
    if ended is not None and ended + s.config.end_timeout_seconds <= t:
        finish(turn, FinishKind.ENDED, "user ended (no SESSION_END received)", close=True)
