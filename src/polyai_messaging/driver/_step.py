"""The sans-I/O session driver: ``step(state, input, now) -> (state, effects)``.

Everything a client does on a connection is decided here, without I/O: when to join, when to
heartbeat, when a silent link is dead, when and where to reconnect, what to resend, when the
session is over. The adapter feeds the inputs (:mod:`._inputs`) and executes the effects
(:mod:`._effects`); the state answers one question about time, :attr:`SessionState.deadline`.

Illegal application intents (blank or oversized text, anything after the end) raise
:class:`~polyai_messaging.core.LocalProtocolError` and leave the state as it was.

This module is the entry point and the dispatch; the parts live beside it:

- :mod:`._state`: :class:`SessionConfig`, :class:`Counters`, :class:`SessionState` and the
  values derived from them;
- :mod:`._link`: the link's life, reconnects, replacement sessions, finishing;
- :mod:`._replay`: what follows each open (the replay settles; join, resends, gaps);
- :mod:`._clock`: what the clock demands;
- :mod:`._inbound`: frames received on the open link;
- :mod:`._intents`: the outbox and the application's intents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._clock import notice_sleep, on_wake
from ._effects import Effect, WakeAt
from ._inbound import on_frame
from ._inputs import (
    ConnectFailed,
    EndSession,
    FrameReceived,
    HandshakeFailed,
    Input,
    LinkClosed,
    LinkOpened,
    NewSessionFailed,
    Now,
    PickSuggestion,
    SendText,
    SetTyping,
    Start,
    StartNewSession,
    WakeUp,
)
from ._intents import on_end, on_pick, on_send_text, on_typing
from ._link import (
    on_closed,
    on_connect_failed,
    on_handshake_failed,
    on_new_session_failed,
    on_opened,
    on_start,
    on_start_new_session,
)
from ._state import DEADLINE_CACHE, UNKNOWN, Counters, SessionConfig, SessionState
from ._turn import Turn

__all__ = ["Counters", "SessionConfig", "SessionState", "step"]


def step(state: SessionState, event: Input, now: Now) -> tuple[SessionState, list[Effect]]:
    """Advance the driver by one input. Pure: same arguments, same result."""
    turn = Turn(state, now)
    # ``deadline``'s cache read in place (every step, before and after): the state before a step
    # was the one after the last, which worked it out, and a send's handler knows its own.
    before = state.__dict__[DEADLINE_CACHE]
    if before is UNKNOWN:
        before = state.deadline
    notice_sleep(turn)
    _HANDLERS[type(event)](turn, event)
    after = turn.end()
    deadline = after.__dict__[DEADLINE_CACHE]
    if deadline is UNKNOWN:
        deadline = after.deadline
    if deadline != before:
        turn.effects.append(WakeAt(deadline))
    return after, turn.effects


_HANDLERS: dict[type[Any], Callable[[Turn, Any], None]] = {
    Start: on_start,
    LinkOpened: on_opened,
    FrameReceived: on_frame,
    LinkClosed: on_closed,
    HandshakeFailed: on_handshake_failed,
    ConnectFailed: on_connect_failed,
    WakeUp: on_wake,
    SendText: on_send_text,
    PickSuggestion: on_pick,
    SetTyping: on_typing,
    EndSession: on_end,
    StartNewSession: on_start_new_session,
    NewSessionFailed: on_new_session_failed,
}
