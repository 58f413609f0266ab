"""Step handler for frames received on the open link.

Decode, fold each event into the conversation (dropping duplicates, noticing a server whose
history no longer matches ours), and react: confirm deliveries, retry a failed agent join,
track the agent's indicators, settle or keep waiting for the replay, finish on SESSION_END.
"""

from __future__ import annotations

from ..core import (
    EventBatch,
    HeartbeatEcho,
    LiveAgentTyping,
    PolyAgentJoined,
    PolyAgentJoinRequested,
    PolyAgentThinking,
    RemoteProtocolError,
    ServerEvent,
    SystemHint,
    SystemMessage,
    UserMessageEcho,
    apply,
    decode,
    fold,
    hint_for,
)
from ._effects import Applied, FinishKind, LinkStatus, ProtocolViolation
from ._inputs import FrameReceived
from ._intents import confirmation
from ._link import finish
from ._replay import join_if_needed, notice_gap, settle
from ._state import ReplayLog, heartbeat_interval
from ._turn import Turn

__all__ = ["on_frame"]

_REJOIN_HINTS = frozenset({SystemHint.REJOIN})
_INDICATOR_EVENTS = frozenset({PolyAgentThinking, LiveAgentTyping})


def on_frame(turn: Turn, event: FrameReceived) -> None:
    before = turn.state
    if event.generation != before.generation or before.link is not LinkStatus.OPEN:
        return  # a stale link's frame (``current``, inlined: this runs on every frame)
    turn.last_inbound = turn.t
    if isinstance(event.data, bytes):
        _violation(turn, RemoteProtocolError("binary frames are not part of the protocol"))
        return
    try:
        decoded = decode(event.data)
    except RemoteProtocolError as error:
        _violation(turn, error)
        return
    # Dropped parts (bad batch or array elements) are reported; the rest is kept.
    for rejected in decoded.rejected:
        _violation(turn, rejected)
    is_batch = isinstance(decoded, EventBatch)
    inner = decoded.events if isinstance(decoded, EventBatch) else (decoded,)
    for item in inner:
        if type(item) is HeartbeatEcho and item.sequence is None:
            # A transient heartbeat echo proves the link alive (``last_inbound``, above) and is
            # reacted to as any event is (a join may be retried), but not folded: that recorded
            # its id, published it on the event stream and built a new conversation, on every
            # heartbeat of every idle session, for nothing to show.
            _react(turn, item)
            continue
        _fold(turn, item)
    s = turn.state
    if (
        # The capabilities are one of the facts, which most events leave as they are: only
        # new facts are looked into.
        s.conversation.facts is not before.conversation.facts
        and s.conversation.capabilities is not (capabilities := before.conversation.capabilities)
        and s.link is LinkStatus.OPEN
        and s.heartbeat_interval != heartbeat_interval(capabilities, s.config)
    ):
        # SESSION_START announced a different interval: reschedule (0 disables).
        # (docs: protocol-heartbeat)
        interval = s.heartbeat_interval
        turn.update(next_heartbeat=turn.t + interval if interval > 0 else None)
        s = turn.state
    if s.settled:
        # On a settled link every step leaves the gap clock agreeing with the gaps, so the
        # same gaps (an event in order, the usual) need no second look.
        if s.conversation.missing is not before.conversation.missing:
            notice_gap(turn)
    elif s.closing_at is None:
        if is_batch:
            _await_more_replay(turn)
        else:
            settle(turn)
    if turn.state.conversation.ended and turn.state.finished is None:
        finish(turn, FinishKind.ENDED, turn.state.conversation.end_reason, close=True)


def _await_more_replay(turn: Turn) -> None:
    """A batch frame came: the replay settles after a quiet period, unless another batch comes.

    The quiet period stretches to twice the time the server took to start the replay, so a
    slow server's next batch is not mistaken for live traffic after the replay settled.
    """
    s = turn.state
    latency = s.replay_latency
    if latency is None:
        latency = turn.t - (s.opened_at if s.opened_at is not None else turn.t)
        turn.update(replay_latency=latency)
    turn.update(settle_at=turn.t + max(s.config.replay_quiet_seconds, 2 * latency))


def _violation(turn: Turn, error: RemoteProtocolError) -> None:
    turn.count(protocol_violations=1)
    turn.emit(ProtocolViolation(error))


def _fold(turn: Turn, event: ServerEvent) -> None:
    s = turn.state
    conversation = s.conversation
    if not s.settled:
        if event.sequence is not None and event.sequence <= s.cursor_at_open:
            held = conversation.event_at(event.sequence)
            if held is not None and held.id and event.id and held.id != event.id:
                # The server's history no longer matches ours: it is the source of truth.
                # Start over from what this replay has delivered so far.
                conversation = fold(_oldest_first(s.replay_log))
                turn.update(reset_seen=True)
        turn.update(replay_log=(event, s.replay_log))
    after = apply(conversation, event)
    if after.duplicates_dropped > conversation.duplicates_dropped:
        turn.count(duplicates_dropped=1)
        turn.update(conversation=after)
        return
    confirmed = None
    if type(event) is UserMessageEcho:
        confirmed = confirmation(turn.state.outbox, event)
    if confirmed is None:
        turn.update(conversation=after)
        turn.effects.append(Applied(event))  # ``turn.emit``, inlined: once per event
    else:
        # The conversation and the outbox in one copy of the state.
        turn.update(conversation=after, outbox=confirmed[0])
        turn.effects += (Applied(event), confirmed[1])
    _react(turn, event)


def _oldest_first(log: ReplayLog) -> list[ServerEvent]:
    events: list[ServerEvent] = []
    while log is not None:
        event, log = log
        events.append(event)
    events.reverse()
    return events


def _react(turn: Turn, event: ServerEvent) -> None:
    """What a new event (or a transient heartbeat echo) calls for, beyond confirming a user
    message (``_fold`` does that, in the same change of the state as the fold)."""
    if type(event) is PolyAgentJoined:
        # A new episode with the agent: the re-join budget is whole again.
        turn.update(join_unconfirmed=False, join_retries=0)
    elif type(event) is PolyAgentJoinRequested or (
        type(event) is SystemMessage and _asks_to_rejoin(event)
    ):
        turn.update(join_unconfirmed=False)  # our join was answered
    if turn.state.settled:
        join_if_needed(turn)
    conversation = turn.state.conversation
    if not (conversation.agent_thinking or conversation.live_agent_typing):
        if turn.state.indicator_since is not None:
            turn.update(indicator_since=None)
    elif type(event) in _INDICATOR_EVENTS or turn.state.indicator_since is None:
        turn.update(indicator_since=turn.t)


def _asks_to_rejoin(event: SystemMessage) -> bool:
    return event.payload.is_error and hint_for(event.payload.message) in _REJOIN_HINTS
