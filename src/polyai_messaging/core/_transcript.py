"""Rendering a :class:`~polyai_messaging.core.Conversation`: a JSON document or text.

:func:`to_json` gives a plain ``dict`` (JSON-ready, stable keys) for tools and tests;
:func:`render_text` gives a readable transcript for people. Both read only the conversation's
public views, so they show exactly what an application would.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._conversation import Conversation
from ._events import Attachment, Capabilities, ChatCallAction, LiveAgent
from ._messages import Message, Role

__all__ = ["render_text", "to_json"]

_CAPABILITY_FIELDS = (
    "streaming",
    "max_message_size_bytes",
    "max_reconnect_attempts",
    "heartbeat_interval_seconds",
)
_ATTACHMENT_FIELDS = (
    "title",
    "preview_image_url",
    "content_url",
    "content_type",
    "call_to_action_text",
)


# --- JSON --------------------------------------------------------------------------------------


def to_json(conversation: Conversation) -> dict[str, Any]:
    """The conversation as one JSON-ready object.

    Keys: ``phase``, ``cursor``, ``gaps``, ``capabilities``, ``agent``, ``agent_present``,
    ``agent_left_reason``, ``live_agent``, ``live_agent_present``, ``live_agent_left_reason``,
    ``transcript``, ``notices``, ``streams``, ``queue``, ``client_handoff``, ``language``,
    ``end_reason``, ``events_applied``, ``anomalies``.
    """
    agent = conversation.agent
    queue = conversation.queue
    handoff = conversation.client_handoff
    return {
        "phase": conversation.phase.value,
        "cursor": conversation.cursor,
        "gaps": [[first, last] for first, last in conversation.gaps],
        "capabilities": _capabilities(conversation.capabilities),
        "agent": None if agent is None else {"name": agent.name, "avatar_url": agent.avatar_url},
        "agent_present": conversation.agent_present,
        "agent_left_reason": conversation.agent_left_reason,
        "live_agent": _live_agent(conversation.live_agent),
        "live_agent_present": conversation.live_agent_present,
        "live_agent_left_reason": conversation.live_agent_left_reason,
        "transcript": [_message(message) for message in conversation.transcript],
        "notices": [
            {"level": notice.level, "message": notice.message} for notice in conversation.notices
        ],
        "streams": [
            {"message_id": stream.message_id, "text": stream.text}
            for stream in conversation.streams
        ],
        "queue": None
        if queue is None
        else {
            "queue_name": queue.queue_name,
            "position_in_queue": queue.queue_position,
            "estimated_wait_seconds": queue.estimated_wait_seconds,
            "display_message": queue.display_message,
        },
        "client_handoff": None
        if handoff is None
        else {"reason": handoff.reason, "queue_name": handoff.queue_name},
        "language": conversation.language,
        "end_reason": conversation.end_reason,
        "events_applied": conversation.events_applied,
        "anomalies": [
            {"sequence": a.sequence, "event": a.trigger, "phase": a.phase.value}
            for a in conversation.anomalies
        ],
    }


def _capabilities(capabilities: Capabilities | None) -> dict[str, Any] | None:
    if capabilities is None:
        return None
    known = {name: getattr(capabilities, name) for name in _CAPABILITY_FIELDS}
    # ``extra`` never holds a documented key (the decoder files those under their fields).
    return {**known, **capabilities.extra}


def _live_agent(live: LiveAgent | None) -> dict[str, Any] | None:
    if live is None:
        return None
    return {"id": live.id, "name": live.name, "avatar_url": live.avatar_url}


def _attachment(attachment: Attachment) -> dict[str, Any]:
    return {name: getattr(attachment, name) for name in _ATTACHMENT_FIELDS}


def _call_action(action: ChatCallAction) -> dict[str, Any]:
    return {"title": action.title, "contact_number": action.contact_number}


def _message(message: Message) -> dict[str, Any]:
    return {
        "sequence": message.sequence,
        "role": message.role.value,
        "message_id": message.message_id,
        "text": message.text,
        "attachments": [_attachment(a) for a in message.attachments],
        "suggestions": [s.message_text for s in message.suggestions],
        "call_actions": [_call_action(action) for action in message.call_actions],
        "client_event_id": message.client_event_id,
    }


# --- text --------------------------------------------------------------------------------------

_INDENT = "      "


def _level(level: str | None) -> str:
    return (level or "SYSTEM_MESSAGE_LEVEL_ERROR").removeprefix("SYSTEM_MESSAGE_LEVEL_").lower()


def _label(message: Message, conversation: Conversation) -> str:
    if message.role is Role.USER:
        return "user"
    if message.role is Role.AGENT:
        agent = conversation.agent
        return f"agent {agent.name}" if agent and agent.name else "agent"
    if message.role is Role.LIVE_AGENT:
        live = conversation.live_agent
        if live is not None and live.name and (message.agent_id in (None, live.id)):
            return f"live agent {live.name}"
        return f"live agent {message.agent_id}" if message.agent_id else "live agent"
    return f"system {_level(message.level)}"


def _indented(text: str, first: str) -> Iterable[str]:
    lines = text.splitlines() or [""]
    yield first + lines[0]
    for line in lines[1:]:
        yield _INDENT + line


def _message_lines(message: Message, conversation: Conversation) -> Iterable[str]:
    where = f"#{message.sequence}" if message.sequence is not None else "#-"
    head = f"{where:<6}{_label(message, conversation)}: "
    text = message.text
    if not message.complete:
        text += " […]"
    yield from _indented(text, head)
    notes = []
    if not message.complete:
        notes.append("streaming, incomplete")
    if message.role is Role.USER and message.client_event_id:
        notes.append(f"client_event_id {message.client_event_id}")
    if message.hint is not None and message.hint.value != "none":
        notes.append(f"hint: {message.hint.value}")
    if notes:
        yield _INDENT + "(" + "; ".join(notes) + ")"
    for number, suggestion in enumerate(message.suggestions, start=1):
        yield f"{_INDENT}{number}. {suggestion.message_text}"
    for attachment in message.attachments:
        title = attachment.title or "attachment"
        kind = "image" if attachment.content_type == "ATTACHMENT_CONTENT_TYPE_IMAGE" else "link"
        line = f"{_INDENT}[{kind}] {title} <{attachment.content_url or ''}>"
        if attachment.call_to_action_text:
            line += f" ({attachment.call_to_action_text})"
        yield line
    for action in message.call_actions:
        yield f"{_INDENT}[call] {action.title or 'call'} <{action.contact_number or ''}>"


def _presence(conversation: Conversation) -> str | None:
    """``Presence: agent left (reason), live agent present``, for each agent announced."""
    c = conversation
    agents = (
        ("agent", c.agent, c.agent_present, c.agent_left_reason),
        ("live agent", c.live_agent, c.live_agent_present, c.live_agent_left_reason),
    )
    parts = []
    for label, announced, present, reason in agents:
        if announced is None:
            continue
        state = "present" if present else f"left ({reason})" if reason else "left"
        parts.append(f"{label} {state}")
    return "Presence: " + ", ".join(parts) if parts else None


def render_text(conversation: Conversation) -> str:
    """A readable transcript: who is talking, the messages, then the conversation's state."""
    out: list[str] = []
    agent = conversation.agent
    if agent is not None:
        avatar = f" <{agent.avatar_url}>" if agent.avatar_url else ""
        out.append(f"Agent: {agent.name or '(unnamed)'}{avatar}")
    live = conversation.live_agent
    if live is not None:
        who = live.name or "(unnamed)"
        if live.id:
            who += f" [{live.id}]"
        out.append(f"Live agent: {who}")
    presence = _presence(conversation)
    if presence is not None:
        out.append(presence)
    caps = conversation.capabilities
    if caps is not None:
        parts = []
        if caps.streaming is not None:
            parts.append("streaming" if caps.streaming else "no streaming")
        if caps.heartbeat_interval_seconds is not None:
            parts.append(f"heartbeat {caps.heartbeat_interval_seconds} s")
        if caps.max_message_size_bytes is not None:
            parts.append(f"max message {caps.max_message_size_bytes} bytes")
        out.append("Session: " + (", ".join(parts) or "no capabilities"))
    if conversation.language:
        out.append(f"Language: {conversation.language}")
    out.append("")
    transcript = conversation.transcript
    if not transcript:
        out.append("(no messages)")
    for message in transcript:
        out.extend(_message_lines(message, conversation))
    out.append("")
    if conversation.notices:
        out.append("Notices:")
        out.extend(f"  [{_level(n.level)}] {n.message}" for n in conversation.notices)
    queue = conversation.queue
    if queue is not None:
        parts = [queue.queue_name or "queue"]
        if queue.queue_position is not None:
            parts.append(f"position {queue.queue_position}")
        if queue.estimated_wait_seconds is not None:
            parts.append(f"about {queue.estimated_wait_seconds} s")
        if queue.display_message:
            parts.append(repr(queue.display_message))
        out.append("Queue: " + ", ".join(parts))
    handoff = conversation.client_handoff
    if handoff is not None:
        out.append(f"Client handoff required: {handoff.reason} -> {handoff.queue_name}")
    out.append(f"Phase: {conversation.phase.value}")
    if conversation.end_reason is not None or conversation.ended:
        out.append(f"End reason: {conversation.end_reason or '(none given)'}")
    cursor = f"Cursor: {conversation.cursor} ({conversation.events_applied} events)"
    if conversation.gaps:
        cursor += "; missing " + ", ".join(
            str(first) if first == last else f"{first}-{last}" for first, last in conversation.gaps
        )
    out.append(cursor)
    for anomaly in conversation.anomalies:
        out.append(f"Anomaly: {anomaly.describe()}")
    return "\n".join(out) + "\n"
