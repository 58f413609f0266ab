"""Step handlers for what follows each open: the replay settles, then the join, resends and
gaps are decided over the whole history.
"""

from __future__ import annotations

from ..core import RequestPolyAgentJoin, UserEndSession
from ._effects import Resumed, ResumeKind
from ._intents import after_replay
from ._state import SessionState
from ._turn import Turn

__all__ = ["first_gap", "join_if_needed", "notice_gap", "resume_cursor", "settle"]


def resume_cursor(state: SessionState) -> int:
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
    turn.update(settled=True, settle_at=None, replay_log=None)
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
