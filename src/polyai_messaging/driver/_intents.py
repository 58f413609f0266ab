"""Step handlers for the outbox and the application's intents.

Sending, checking and confirming user messages, and the intents that may be refused with
:class:`~polyai_messaging.core.LocalProtocolError`: text, a picked suggestion, typing, ending
the session. The other handlers call :func:`after_replay`, :func:`unconfirmed` and
:func:`confirmation` when a replay settles, a check comes due and an echo arrives.
"""

from __future__ import annotations

from ..core import (
    TYPING_STARTED,
    TYPING_STOPPED,
    LocalProtocolError,
    UserEndSession,
    UserMessage,
    UserMessageEcho,
    encode,
    replace_lone_surrogates,
)
from ..core import UserTyping as UserTypingCommand
from ..core._wire import encode_user_message  # UserMessage's frame, without the command
from ._backoff import random_uuid4
from ._effects import Delivery, DeliveryStatus, LinkStatus
from ._inputs import EndSession, PickSuggestion, SendText, SetTyping
from ._outbox import Outbox, OutboxEntry, check_delay, replace
from ._turn import Turn

__all__ = [
    "after_replay",
    "confirmation",
    "on_end",
    "on_pick",
    "on_send_text",
    "on_typing",
    "transmit",
    "unconfirmed",
]


# --- outbox -----------------------------------------------------------------------------------


def transmit(turn: Turn, entry: OutboxEntry, frame: str | None = None) -> None:
    """Send (or resend) one pending entry and schedule its echo check (``frame``: the entry
    already encoded)."""
    s = turn.state
    if entry.transmissions:
        turn.count(resends=1)
    if frame is None:
        cid = entry.client_event_id
        frame = encode(UserMessage(text=entry.text, client_event_id=cid, custom=entry.custom))
    sent = replace(
        entry,
        transmissions=entry.transmissions + 1,
        next_check=turn.t + check_delay(entry.checks, s.config.resend_check_seconds),
    )
    turn.send_encoded(frame, outbox=turn.state.outbox.update(sent))


def unconfirmed(turn: Turn) -> bool:
    """Run the echo checks that are due: fail the messages whose last allowed wait is over;
    ``True`` if others are still unconfirmed (their delivery must be verified)."""
    s = turn.state
    limit = s.config.max_resends
    verify = False
    for entry in s.outbox.due(turn.t):
        if entry.checks >= limit or entry.transmissions > limit:
            _finish(turn, entry, DeliveryStatus.FAILED)
        else:
            checked = replace(entry, checks=entry.checks + 1, next_check=None)
            turn.update(outbox=turn.state.outbox.update(checked))
            verify = True
    return verify


def after_replay(turn: Turn, *, replayed: bool) -> None:
    """The replay settled: send what waited for it, and resend what it proves lost.

    Without a replay (a server that sent none in time) nothing sent before can be proved lost,
    so only messages never sent go out; the others wait for their next check.
    """
    s = turn.state
    for entry in s.outbox.in_order():
        if entry.transmissions == 0 or (replayed and entry.transmissions <= s.config.max_resends):
            transmit(turn, entry)
        elif entry.next_check is None:
            delay = check_delay(entry.checks, s.config.resend_check_seconds)
            waiting = replace(entry, next_check=turn.t + delay)
            turn.update(outbox=turn.state.outbox.update(waiting))


def _finish(
    turn: Turn, entry: OutboxEntry, status: DeliveryStatus, message_id: str | None = None
) -> None:
    done = OutboxEntry(
        entry.client_event_id, entry.text, entry.custom, status, entry.transmissions,
        entry.checks, None, message_id, entry.serial,
    )  # fmt: skip
    turn.update(outbox=turn.state.outbox.update(done))
    turn.emit(Delivery(entry.client_event_id, status, message_id))


def confirmation(outbox: Outbox, echo: UserMessageEcho) -> tuple[Outbox, Delivery] | None:
    """The outbox with the message this (new) echo of a user message confirms marked SENT,
    and its delivery; ``None`` if it confirms none of ours.

    The echo names its message by ``client_event_id``. One that names none we issued (a replay
    whose stored echoes lost their metadata, say) confirms the oldest pending message with the
    same text, first in, first out.
    """
    cid = echo.metadata.client_event_id if echo.metadata is not None else None
    entry = outbox.get(cid) if cid else None
    if entry is None:
        entry = outbox.oldest_with_text(echo.payload.text)
    # A late echo still proves delivery: a FAILED message that reached the server is SENT.
    if entry is None or entry.status is DeliveryStatus.SENT:
        return None
    message_id = echo.payload.message_id
    done = OutboxEntry(
        entry.client_event_id, entry.text, entry.custom, DeliveryStatus.SENT,
        entry.transmissions, entry.checks, None, message_id, entry.serial,
    )  # fmt: skip
    return outbox.update(done), Delivery(entry.client_event_id, DeliveryStatus.SENT, message_id)


# --- application intents ----------------------------------------------------------------------


def _ensure_open_session(turn: Turn) -> None:
    s = turn.state
    if s.finished is not None or s.conversation.ended or s.end_requested_at is not None:
        raise LocalProtocolError(_ENDED)


def on_send_text(turn: Turn, event: SendText) -> None:
    s = turn.state
    if s.finished is not None or s.end_requested_at is not None or s.conversation.ended:
        raise LocalProtocolError(_ENDED)
    if not event.text.strip():
        raise LocalProtocolError("a message cannot be blank")
    custom = dict(event.custom)
    in_custom = custom.pop(_CID, None)
    given = event.client_event_id
    draws = s.draws
    if given is None and in_custom is None:
        client_event_id = random_uuid4(s.seed, draws)
        draws += 1
    else:
        client_event_id = _chosen_id(given, in_custom)
    outbox = s.outbox
    if outbox.get(client_event_id) is not None:
        raise LocalProtocolError("client_event_id already used in this session")
    frame = encode_user_message(event.text, client_event_id, custom)  # checked as UserMessage
    limit = s.max_message_bytes
    # At most 4 UTF-8 bytes a character: only a frame that might be too big is encoded to see.
    if len(frame) * 4 > limit:
        size = len(frame.encode("utf-8"))  # as ``encoded_size``, from the frame sent below
        if size > limit:
            raise LocalProtocolError(f"message is {size} bytes encoded; the session allows {limit}")
    turn.effects.append(Delivery(client_event_id, DeliveryStatus.PENDING))  # ``emit``, inlined
    if s.link is LinkStatus.OPEN and s.settled:
        # Accepted and transmitted in one change of the outbox and the state (``transmit``'s
        # work for a message never sent: no resend to count, no echo check yet).
        check_at = turn.t + check_delay(0, s.config.resend_check_seconds)
        outbox = outbox.accept(client_event_id, event.text, custom, check_at=check_at)
        if s.closing_at is None:
            # Of what the deadline weighs on a settled open link, only the echo checks change
            # (by one more), so it is the earlier of the one before and this check.
            deadline = s.deadline
            turn.deadline = check_at if deadline is None or check_at < deadline else deadline
        turn.send_encoded(frame, outbox=outbox, draws=draws)
    else:
        turn.update(outbox=outbox.accept(client_event_id, event.text, custom), draws=draws)


_CID = "client_event_id"
_ENDED = "the session has ended; nothing more can be sent"


def _chosen_id(given: str | None, in_custom: str | None) -> str:
    """The id the application gave (as an argument or in ``custom``; at least one is given)."""
    if given is not None and in_custom is not None and given != in_custom:
        raise LocalProtocolError("two different client_event_ids given (argument and custom)")
    chosen = given if given is not None else in_custom
    if not chosen:
        raise LocalProtocolError("client_event_id cannot be empty")
    return chosen


def on_pick(turn: Turn, event: PickSuggestion) -> None:
    suggestions = turn.state.conversation.suggestions
    if not 0 <= event.index < len(suggestions):
        raise LocalProtocolError(f"no suggestion number {event.index + 1}")
    # The suggestion is the server's text, which UTF-8 may not be able to encode as it is.
    text = replace_lone_surrogates(suggestions[event.index].message_text)
    on_send_text(turn, SendText(text, event.client_event_id, event.custom))


def on_typing(turn: Turn, event: SetTyping) -> None:
    _ensure_open_session(turn)
    s = turn.state
    if s.link is not LinkStatus.OPEN:
        return
    last = s.typing_sent
    if event.started:
        if last is not None and last[0] and turn.t - last[1] < s.config.typing_throttle_seconds:
            return
        turn.send(UserTypingCommand(state=TYPING_STARTED))
    else:
        if last is None or not last[0]:
            return
        turn.send(UserTypingCommand(state=TYPING_STOPPED))
    turn.update(typing_sent=(event.started, turn.t))


def on_end(turn: Turn, _: EndSession) -> None:
    _ensure_open_session(turn)
    turn.update(end_requested_at=turn.t)
    if turn.state.link is LinkStatus.OPEN and turn.state.settled:
        turn.send(UserEndSession())
