"""How each thing the terminal chat shows reads: a message, a notice, the link, the end.

Pure functions of a conversation (or a status, a finish) to lines of text. Every piece of server
text goes through :func:`~polyai_messaging.cli._safe.terminal_safe` here, so that what the server
sent cannot pass for something else on the terminal. ``_render`` decides which of these lines a
change between two snapshots prints.
"""

from __future__ import annotations

from typing import Final

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
from ..driver import Finished, FinishKind, LinkStatus, StatusChanged
from ._safe import terminal_safe

__all__ = [
    "ELLIPSIS",
    "end_line",
    "event_line",
    "indicator_line",
    "message_lines",
    "notice_line",
    "one_line",
    "status_line",
]

ELLIPSIS: Final = "…"
"""Ends a line that is not over yet (a stream, a typing notice, an interrupted message)."""


def _indented(text: str) -> str:
    """Server text of several lines, made safe; continuation lines are indented, so that a
    message cannot pass a line of its own off as someone else's (``You: ...``)."""
    return terminal_safe(text).replace("\n", "\n    ")


def one_line(text: str | None) -> str:
    """Server text that must stay on its line (a name, a title, a suggestion), made safe."""
    return terminal_safe(text or "", multiline=False)


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
        lines.append(f"    ({one_line(title)}: {one_line(url)})")
    if suggestions and message.suggestions:
        buttons = "  ".join(
            f"[{number}] {one_line(suggestion.message_text)}"
            for number, suggestion in enumerate(message.suggestions, start=1)
        )
        lines.append(f"    {buttons}")
    return lines


def event_line(conversation: Conversation, event: ServerEvent) -> str | None:
    """The notice for an agent, handoff, queue or language event (``None`` for the others)."""
    agent = _agent_name(conversation)
    if isinstance(event, PolyAgentJoined):
        name = one_line(event.payload.agent_name) or agent
        return f"{name} joined the conversation."
    if isinstance(event, PolyAgentTriggeredHandoff):
        return f"{agent} is transferring you to a human agent{ELLIPSIS}"
    if isinstance(event, PolyAgentLeft):
        return f"{agent} left the conversation."
    if isinstance(event, HandoffAccepted):
        queue = one_line(event.payload.queue_name)
        return "Handoff accepted" + (f" ({queue})." if queue else ".")
    if isinstance(event, HandoffQueueStatus):
        return _queue_line(event)
    if isinstance(event, ClientHandoffRequired):
        payload = event.payload
        where = one_line(payload.queue_name or payload.route) or "another support channel"
        reason = f" (reason: {one_line(payload.reason)})" if payload.reason else ""
        return f"Please continue with {where}: this conversation needs a handoff{reason}."
    if isinstance(event, HandoffFailed):
        reason = f" ({one_line(event.payload.reason)})" if event.payload.reason else ""
        return f"The handoff failed{reason}: no live agent could take over. Try again or /end."
    if isinstance(event, HandoffTimeout):
        return "Nobody was available in time (handoff timed out). Try again later or /end."
    if isinstance(event, LiveAgentJoined):
        name = one_line(event.payload.live_agent.name) or "A live agent"
        return f"{name} (live agent) joined the conversation."
    if isinstance(event, LiveAgentLeft):
        return f"{_live_name(conversation, None)} (live agent) left the conversation."
    if isinstance(event, LanguageChanged):
        return f"Language changed to {one_line(event.payload.language_code)}."
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
    reason = one_line(finished.reason)
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
        return f"{_agent_name(conversation)}: {one_line(streams[-1].text)}{ELLIPSIS}"
    if conversation.agent_thinking:
        return f"{_agent_name(conversation)} is typing{ELLIPSIS}"
    if conversation.live_agent_typing:
        return f"{_live_name(conversation, None)} is typing{ELLIPSIS}"
    return None


def _queue_line(event: HandoffQueueStatus) -> str:
    payload = event.payload
    if payload.display_message:
        return one_line(payload.display_message)
    parts = []
    position = payload.queue_position
    parts.append(
        "You are in the queue" if position is None else f"You are #{position} in the queue"
    )
    if payload.queue_name:
        parts.append(f" '{one_line(payload.queue_name)}'")
    if payload.estimated_wait_seconds is not None:
        parts.append(f" (estimated wait {_duration(payload.estimated_wait_seconds)})")
    return "".join(parts) + "."


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} s"
    return f"{round(seconds / 60)} min"


def notice_line(notice: Notice) -> str:
    """A system notice: ``[level] text``."""
    return f"[{_level(notice.level)}] {_indented(notice.message)}"


def _level(level: str | None) -> str:
    if not level:
        return "system"
    return one_line(level.upper().removeprefix("SYSTEM_MESSAGE_LEVEL_").lower())


def _agent_name(conversation: Conversation) -> str:
    agent = conversation.agent
    return one_line(agent.name) if agent is not None and agent.name else "Agent"


def _live_name(conversation: Conversation, agent_id: str | None) -> str:
    live = conversation.live_agent
    if live is not None and live.name and (agent_id is None or live.id in (None, agent_id)):
        return one_line(live.name)
    return one_line(agent_id) or "Live agent"
