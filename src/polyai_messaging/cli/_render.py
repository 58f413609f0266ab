"""Pure rendering of the terminal chat: what to print for a change between two session snapshots.

Rendering is a pure function of two snapshots, :func:`render` ``(previous, new) -> Rendered``:
the permanent lines to print (messages once complete, agent and handoff notices, queue status,
system notices, link status, the end) and one ephemeral *indicator* line (a streaming reply as
it grows, or "Ada is typing…"). Because it diffs whole snapshots, it stays correct when the
session's update stream skips intermediate snapshots (it is conflated).

Nothing here does I/O; :mod:`polyai_messaging.cli._chat` writes the result to a terminal and
re-exports the public names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import attrs

from ..core import (
    ClientHandoffRequired,
    Conversation,
    HandoffAccepted,
    HandoffFailed,
    HandoffQueueStatus,
    HandoffTimeout,
    LanguageChanged,
    LiveAgentJoined,
    LiveAgentLeft,
    Message,
    Notice,
    PolyAgentJoined,
    PolyAgentLeft,
    PolyAgentTriggeredHandoff,
    Role,
    ServerEvent,
)
from ..driver import DeliveryStatus, Finished, FinishKind, LinkStatus, StatusChanged
from ._safe import terminal_safe

if TYPE_CHECKING:
    # Only for annotations: rendering reads snapshots and needs none of the trio adapter.
    from ..runtime import Update

__all__ = [
    "Rendered",
    "conversation_lines",
    "end_line",
    "event_line",
    "indicator_line",
    "message_lines",
    "render",
    "status_line",
]

_ELLIPSIS: Final = "…"
_EMPTY = Conversation()


def _indented(text: str) -> str:
    """Server text of several lines, made safe; continuation lines are indented, so that a
    message cannot pass a line of its own off as someone else's (``You: ...``)."""
    return terminal_safe(text).replace("\n", "\n    ")


def _one_line(text: str | None) -> str:
    """Server text that must stay on its line (a name, a title, a suggestion), made safe."""
    return terminal_safe(text or "", multiline=False)


@attrs.frozen
class Rendered:
    """What one snapshot changes on screen."""

    lines: tuple[str, ...] = ()
    """Permanent lines, in order."""
    indicator: str | None = None
    """The ephemeral bottom line (typing indicator or a reply still streaming), if any."""


def render(previous: Update | None, new: Update) -> Rendered:
    """Lines for everything that happened between two snapshots, and the current indicator."""
    lines: list[str] = []
    before = previous.conversation if previous is not None else _EMPTY
    if previous is not None and previous.state.session_id != new.state.session_id:
        lines.append("-- The session could not continue; a new session was started. --")
        before = _EMPTY
    status = status_line(previous.status if previous else None, new.status)
    if status is not None:
        lines.append(status)
    lines += conversation_lines(before, new.conversation)
    lines += _failed_deliveries(previous, new)
    if new.finished is not None and (previous is None or previous.finished is None):
        lines.append(end_line(new.finished))
    indicator = None if new.finished is not None else indicator_line(new.conversation)
    return Rendered(tuple(lines), indicator)


def conversation_lines(previous: Conversation, new: Conversation) -> list[str]:
    """Lines for the events and messages in ``new`` that ``previous`` did not have yet.

    Messages are shown once complete (a stream when its last chunk arrived), in sequence order
    together with the agent, handoff and queue notices; transient system notices come last.
    """
    items: list[tuple[float, int, list[str]]] = []
    for event in _new_events(previous, new):
        line = event_line(new, event)
        if line is not None:
            items.append((float(event.sequence or 0), 0, [line]))
    shown = {m.key for m in previous.transcript if m.complete or m.interrupted}
    transcript = new.transcript
    last_key = transcript[-1].key if transcript else None
    for message in transcript:
        if message.key in shown or not (message.complete or message.interrupted):
            continue
        rank = math.inf if message.sequence is None else float(message.sequence)
        lines = message_lines(new, message, suggestions=message.key == last_key)
        if lines and not message.complete:
            lines[0] += f"{_ELLIPSIS} (interrupted)"
        if lines:
            items.append((rank, 1, lines))
    items.sort(key=lambda item: (item[0], item[1]))
    out = [line for _, _, lines in items for line in lines]
    out += [_notice_line(notice) for notice in _appended(previous.notices, new.notices)]
    return out


def message_lines(conversation: Conversation, message: Message, *, suggestions: bool) -> list[str]:
    """One message: ``Name: text``, its attachments as ``(title: url)``, and its suggestions as
    numbered buttons (only when ``suggestions``, i.e. for the latest message)."""
    text = _indented(message.text)
    if message.role is Role.USER:
        head = f"You: {text}"
    elif message.role is Role.AGENT:
        head = f"{_agent_name(conversation)}: {text}"
    elif message.role is Role.LIVE_AGENT:
        head = f"{_live_name(conversation, message.agent_id)} (live agent): {text}"
    else:
        head = f"[{_level(message.level)}] {text}"
    if not (message.text or message.attachments or (suggestions and message.suggestions)):
        return []
    lines = [head.rstrip()]
    for attachment in message.attachments:
        title = attachment.title or attachment.call_to_action_text or "attachment"
        url = attachment.content_url or attachment.preview_image_url or ""
        lines.append(f"    ({_one_line(title)}: {_one_line(url)})")
    if suggestions and message.suggestions:
        buttons = "  ".join(
            f"[{number}] {_one_line(suggestion.message_text)}"
            for number, suggestion in enumerate(message.suggestions, start=1)
        )
        lines.append(f"    {buttons}")
    return lines


def event_line(conversation: Conversation, event: ServerEvent) -> str | None:
    """The notice for an agent, handoff, queue or language event (``None`` for the others)."""
    agent = _agent_name(conversation)
    if isinstance(event, PolyAgentJoined):
        name = _one_line(event.payload.agent_name) or agent
        return f"{name} joined the conversation."
    if isinstance(event, PolyAgentTriggeredHandoff):
        return f"{agent} is transferring you to a human agent{_ELLIPSIS}"
    if isinstance(event, PolyAgentLeft):
        return f"{agent} left the conversation."
    if isinstance(event, HandoffAccepted):
        queue = _one_line(event.payload.queue_name)
        return "Handoff accepted" + (f" ({queue})." if queue else ".")
    if isinstance(event, HandoffQueueStatus):
        return _queue_line(event)
    if isinstance(event, ClientHandoffRequired):
        payload = event.payload
        where = _one_line(payload.queue_name or payload.route) or "another support channel"
        reason = f" (reason: {_one_line(payload.reason)})" if payload.reason else ""
        return f"Please continue with {where}: this conversation needs a handoff{reason}."
    if isinstance(event, HandoffFailed):
        reason = f" ({_one_line(event.payload.reason)})" if event.payload.reason else ""
        return f"The handoff failed{reason}: no live agent could take over. Try again or /end."
    if isinstance(event, HandoffTimeout):
        return "Nobody was available in time (handoff timed out). Try again later or /end."
    if isinstance(event, LiveAgentJoined):
        name = _one_line(event.payload.live_agent.name) or "A live agent"
        return f"{name} (live agent) joined the conversation."
    if isinstance(event, LiveAgentLeft):
        return f"{_live_name(conversation, None)} (live agent) left the conversation."
    if isinstance(event, LanguageChanged):
        return f"Language changed to {_one_line(event.payload.language_code)}."
    return None


def status_line(previous: StatusChanged | None, new: StatusChanged | None) -> str | None:
    """A line when the link status changed: connected, lost and reconnecting in N s."""
    if new is None or new == previous:
        return None
    if new.status is LinkStatus.RECONNECTING:
        wait = "" if new.retry_in is None else f" in {new.retry_in:.1f} s"
        return f"Connection lost ({new.reason}); reconnecting{wait} (attempt {new.attempt})."
    if new.status is LinkStatus.OPEN:
        return "Connected." if new.generation <= 1 else "Reconnected."
    return None


_END_REASONS: Final = {
    "REASON_USER_END": "you left",
    "REASON_NATURAL_END": "the conversation is over",
    "REASON_USER_ABANDONED": "nothing was heard from you for too long",
}
"""The documented reasons of ``SESSION_END``, in words."""

_FINISHES: Final = {
    FinishKind.ENDED_WHILE_DISCONNECTED: (
        "Conversation ended while the connection was down, for longer than the server waits"
    ),
    FinishKind.GAVE_UP: "Connection lost: could not reconnect",
    FinishKind.NEW_SESSION_REQUIRED: "Conversation lost: the server no longer knows it",
    FinishKind.REJECTED: "Connection refused by the server",
}
"""How a session that did not end normally finished, in words."""


def end_line(finished: Finished) -> str:
    """The end, in words: ``Conversation ended: you left.``; a reason the server sent that is
    not a documented one is shown as it is, made safe."""
    reason = _one_line(finished.reason)
    if finished.kind is FinishKind.ENDED:
        if finished.reason in _END_REASONS:
            return f"Conversation ended: {_END_REASONS[finished.reason]}."
        return f"Conversation ended (reason: {reason})." if reason else "Conversation ended."
    words = _FINISHES.get(finished.kind, f"Session finished ({finished.kind.value})")
    if finished.kind is FinishKind.NEW_SESSION_REQUIRED and reason.startswith(_REFUSED_TOKENS):
        words = "Conversation lost: the server refused its access tokens, fresh ones too"
    return words + (f" ({reason})." if reason else ".")


_REFUSED_TOKENS: Final = "authentication_failed"
"""How the reason of a session given up after handshakes refused with 401 begins."""


def indicator_line(conversation: Conversation) -> str | None:
    """The ephemeral line: a reply still streaming, or who is typing; ``None`` when idle."""
    streams = conversation.streaming
    if streams:
        return f"{_agent_name(conversation)}: {_one_line(streams[-1].text)}{_ELLIPSIS}"
    if conversation.agent_thinking:
        return f"{_agent_name(conversation)} is typing{_ELLIPSIS}"
    if conversation.live_agent_typing:
        return f"{_live_name(conversation, None)} is typing{_ELLIPSIS}"
    return None


def _new_events(previous: Conversation, new: Conversation) -> list[ServerEvent]:
    """Sequenced events in ``new`` that ``previous`` did not have, in sequence order.

    Cheap in the usual case, where ``new`` extends ``previous``: only the added part of the log
    is read. Otherwise (a conversation rebuilt after a reset) the two are compared whole.
    """
    added = new.log.since(previous.log)
    if added is None:
        known = {event.sequence for event in previous.log}
        added = [event for event in new.log if event.sequence not in known]
    return sorted(added, key=lambda event: event.sequence or 0)


def _appended(previous: Sequence[Notice], new: Sequence[Notice]) -> Sequence[Notice]:
    """The items at the end of ``new`` that ``previous`` did not end with (bounded tuples)."""
    for overlap in range(min(len(previous), len(new)), 0, -1):
        if tuple(previous[-overlap:]) == tuple(new[:overlap]):
            return new[overlap:]
    return new


def _failed_deliveries(previous: Update | None, new: Update) -> list[str]:
    failed_before = (
        {e.client_event_id for e in previous.state.outbox if e.status is DeliveryStatus.FAILED}
        if previous is not None
        else set()
    )
    return [
        f"(not delivered: {_one_line(repr(entry.text))})"
        for entry in new.state.outbox
        if entry.status is DeliveryStatus.FAILED and entry.client_event_id not in failed_before
    ]


def _queue_line(event: HandoffQueueStatus) -> str:
    payload = event.payload
    if payload.display_message:
        return _one_line(payload.display_message)
    parts = []
    position = payload.queue_position
    parts.append(
        "You are in the queue" if position is None else f"You are #{position} in the queue"
    )
    if payload.queue_name:
        parts.append(f" '{_one_line(payload.queue_name)}'")
    if payload.estimated_wait_seconds is not None:
        parts.append(f" (estimated wait {_duration(payload.estimated_wait_seconds)})")
    return "".join(parts) + "."


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} s"
    return f"{round(seconds / 60)} min"


def _notice_line(notice: Notice) -> str:
    return f"[{_level(notice.level)}] {_indented(notice.message)}"


def _level(level: str | None) -> str:
    if not level:
        return "system"
    return _one_line(level.upper().removeprefix("SYSTEM_MESSAGE_LEVEL_").lower())


def _agent_name(conversation: Conversation) -> str:
    agent = conversation.agent
    return _one_line(agent.name) if agent is not None and agent.name else "Agent"


def _live_name(conversation: Conversation, agent_id: str | None) -> str:
    live = conversation.live_agent
    if live is not None and live.name and (agent_id is None or live.id in (None, agent_id)):
        return _one_line(live.name)
    return _one_line(agent_id) or "Live agent"
