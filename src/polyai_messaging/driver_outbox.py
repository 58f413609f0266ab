"""Step handlers for the outbox and the application's intents.

Sending, resending and confirming user messages (protocol §6.4), and the intents that may be
refused with :class:`~polyai_messaging.errors.LocalProtocolError`: text, a picked suggestion,
typing, ending the session. Link events that affect the outbox call :func:`transmit` and
:func:`confirm_deliveries` from :mod:`.driver_link` and :mod:`.driver_inbound`.
"""

from __future__ import annotations

import uuid
from typing import Any

import attrs

from ._turn import Turn
from .backoff import draw
from .commands import UserEndSession, UserMessage
from .commands import UserTyping as UserTypingCommand
from .effects import Delivery, DeliveryStatus, LinkStatus
from .errors import LocalProtocolError
from .events import TYPING_STARTED, TYPING_STOPPED
from .inputs import EndSession, PickSuggestion, SendText, SetTyping
from .outbox import OutboxEntry, check_delay
from .wire import encoded_size

__all__ = [
    "confirm_deliveries",
    "on_end",
    "on_pick",
    "on_send_text",
    "on_typing",
    "transmit",
]


# --- outbox -----------------------------------------------------------------------------------


def _replace_entry(turn: Turn, client_event_id: str, **changes: Any) -> OutboxEntry:
    outbox = list(turn.state.outbox)
    for index, entry in enumerate(outbox):
        if entry.client_event_id == client_event_id:
            outbox[index] = attrs.evolve(entry, **changes)
            turn.update(outbox=tuple(outbox))
            return outbox[index]
    raise KeyError(client_event_id)


def transmit(turn: Turn, client_event_id: str) -> None:
    """Send (or resend) one entry, or fail it when its resends are used up."""
    s = turn.state
    entry = s.delivery(client_event_id)
    if entry is None or entry.status is not DeliveryStatus.PENDING:
        return
    if entry.transmissions > s.config.max_resends:
        _replace_entry(turn, client_event_id, status=DeliveryStatus.FAILED, next_check=None)
        turn.emit(Delivery(client_event_id, DeliveryStatus.FAILED))
        return
    transmissions = entry.transmissions + 1
    if entry.transmissions:
        turn.count(resends=1)
    turn.send(UserMessage(text=entry.text, client_event_id=client_event_id))
    _replace_entry(
        turn,
        client_event_id,
        transmissions=transmissions,
        next_check=turn.t + check_delay(transmissions, s.config.resend_check_seconds),
    )


def confirm_deliveries(turn: Turn) -> None:
    """Mark SENT every entry whose echo the conversation now holds."""
    conversation = turn.state.conversation
    for entry in turn.state.outbox:
        # A late echo still proves delivery: a FAILED message that reached the server is SENT.
        if entry.status is DeliveryStatus.SENT:
            continue
        message = conversation.delivered(entry.client_event_id)
        if message is not None:
            _replace_entry(
                turn,
                entry.client_event_id,
                status=DeliveryStatus.SENT,
                next_check=None,
                message_id=message.message_id,
            )
            turn.emit(Delivery(entry.client_event_id, DeliveryStatus.SENT, message.message_id))


# --- application intents ----------------------------------------------------------------------


def _ensure_open_session(turn: Turn) -> None:
    s = turn.state
    if s.finished is not None or s.conversation.ended or s.end_requested_at is not None:
        raise LocalProtocolError("the session has ended; nothing more can be sent")


def on_send_text(turn: Turn, event: SendText) -> None:
    _ensure_open_session(turn)
    s = turn.state
    if not event.text.strip():
        raise LocalProtocolError("a message cannot be blank")
    client_event_id = event.client_event_id
    if client_event_id is None:
        client_event_id = str(uuid.UUID(int=int(draw(s.seed, s.draws) * 2**128), version=4))
        turn.update(draws=s.draws + 1)
    if s.delivery(client_event_id) is not None:
        raise LocalProtocolError("client_event_id already used in this session")
    size = encoded_size(UserMessage(text=event.text, client_event_id=client_event_id))
    if size > s.max_message_bytes:
        raise LocalProtocolError(
            f"message is {size} bytes encoded; the session allows {s.max_message_bytes}"
        )
    entry = OutboxEntry(client_event_id=client_event_id, text=event.text)
    turn.update(outbox=(*turn.state.outbox, entry))
    turn.emit(Delivery(client_event_id, DeliveryStatus.PENDING))
    if turn.state.link is LinkStatus.OPEN and turn.state.settled:
        transmit(turn, client_event_id)


def on_pick(turn: Turn, event: PickSuggestion) -> None:
    suggestions = turn.state.conversation.suggestions
    if not 0 <= event.index < len(suggestions):
        raise LocalProtocolError(f"no suggestion number {event.index + 1}")
    on_send_text(turn, SendText(suggestions[event.index].message_text))


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
