"""The terminal chat: pure rendering of session snapshots, and the loop that runs a chat.

Rendering is a pure function of two snapshots, :func:`render` ``(previous, new) -> Rendered``:
the permanent lines to print (messages once complete, agent and handoff notices, queue status,
system notices, link status, the end) and one ephemeral *indicator* line (a streaming reply as
it grows, or "Ada is typing…"). Because it diffs whole snapshots, it stays correct when the
session's update stream skips intermediate snapshots (it is conflated).

:func:`run_chat` drives a :class:`~polyai_messaging.trio_client.Session` from a terminal (lines
typed on stdin) or from a script (a list of lines, each sent once the previous reply is over).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Final, TextIO

import attrs
import trio

from .conversation import Conversation, Message, Notice, Role
from .effects import DeliveryStatus, Finished, LinkStatus, StatusChanged
from .errors import LocalProtocolError
from .events import (
    ClientHandoffRequired,
    HandoffAccepted,
    HandoffFailed,
    HandoffQueueStatus,
    HandoffTimeout,
    LanguageChanged,
    LiveAgentJoined,
    LiveAgentLeft,
    PolyAgentJoined,
    PolyAgentLeft,
    PolyAgentTriggeredHandoff,
    ServerEvent,
)
from .trio_client import Session, Update

__all__ = [
    "END_COMMANDS",
    "HELP_TEXT",
    "Rendered",
    "Terminal",
    "conversation_lines",
    "end_line",
    "event_line",
    "indicator_line",
    "message_lines",
    "render",
    "reply_complete",
    "run_chat",
    "status_line",
]

logger = logging.getLogger(__name__)

END_COMMANDS: Final = frozenset({"/end", "/leave", "/quit"})
"""Input lines that end the conversation (``USER_END_SESSION``)."""

HELP_TEXT: Final = "Type a message and press Enter; a number picks a suggestion; /end leaves."

_ELLIPSIS: Final = "…"
_TRAILING_QUIET: Final = 0.5
_MAX_SPAN: Final = 4096
_EMPTY = Conversation()


@attrs.frozen
class Rendered:
    """What one snapshot changes on screen."""

    lines: tuple[str, ...] = ()
    """Permanent lines, in order."""
    indicator: str | None = None
    """The ephemeral bottom line (typing indicator or a reply still streaming), if any."""


# --- pure rendering ---------------------------------------------------------------------------


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
    for sequence in _new_sequences(previous, new):
        event = new.journal.get(sequence)
        line = None if event is None else event_line(new, event)
        if line is not None:
            items.append((float(sequence), 0, [line]))
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
    text = message.text.replace("\n", "\n    ")
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
        lines.append(f"    ({title}: {url})")
    if suggestions and message.suggestions:
        buttons = "  ".join(
            f"[{number}] {suggestion.message_text}"
            for number, suggestion in enumerate(message.suggestions, start=1)
        )
        lines.append(f"    {buttons}")
    return lines


def event_line(conversation: Conversation, event: ServerEvent) -> str | None:
    """The notice for an agent, handoff, queue or language event (``None`` for the others)."""
    agent = _agent_name(conversation)
    if isinstance(event, PolyAgentJoined):
        return f"{event.payload.agent_name or agent} joined the conversation."
    if isinstance(event, PolyAgentTriggeredHandoff):
        return f"{agent} is transferring you to a human agent{_ELLIPSIS}"
    if isinstance(event, PolyAgentLeft):
        return f"{agent} left the conversation."
    if isinstance(event, HandoffAccepted):
        queue = event.payload.queue_name
        return "Handoff accepted" + (f" ({queue})." if queue else ".")
    if isinstance(event, HandoffQueueStatus):
        return _queue_line(event)
    if isinstance(event, ClientHandoffRequired):
        payload = event.payload
        where = payload.queue_name or payload.route or "another support channel"
        reason = f" (reason: {payload.reason})" if payload.reason else ""
        return f"Please continue with {where}: this conversation needs a handoff{reason}."
    if isinstance(event, HandoffFailed):
        reason = f" ({event.payload.reason})" if event.payload.reason else ""
        return f"The handoff failed{reason}: no live agent could take over. Try again or /end."
    if isinstance(event, HandoffTimeout):
        return "Nobody was available in time (handoff timed out). Try again later or /end."
    if isinstance(event, LiveAgentJoined):
        name = event.payload.live_agent.name or "A live agent"
        return f"{name} (live agent) joined the conversation."
    if isinstance(event, LiveAgentLeft):
        return f"{_live_name(conversation, None)} (live agent) left the conversation."
    if isinstance(event, LanguageChanged):
        return f"Language changed to {event.payload.language_code}."
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


def end_line(finished: Finished) -> str:
    """``Conversation ended: REASON``."""
    return f"Conversation ended: {finished.reason or finished.kind.value}"


def indicator_line(conversation: Conversation) -> str | None:
    """The ephemeral line: a reply still streaming, or who is typing; ``None`` when idle."""
    streams = conversation.streaming
    if streams:
        return f"{_agent_name(conversation)}: {streams[-1].text}{_ELLIPSIS}"
    if conversation.agent_thinking:
        return f"{_agent_name(conversation)} is typing{_ELLIPSIS}"
    if conversation.live_agent_typing:
        return f"{_live_name(conversation, None)} is typing{_ELLIPSIS}"
    return None


def reply_complete(conversation: Conversation, client_event_id: str | None) -> bool:
    """Whether the reply to our message (or, for ``None``, the greeting) is complete: someone
    else wrote after it, and nobody is typing or streaming."""
    if _busy(conversation):
        return False
    after = -1
    if client_event_id is not None:
        mine = conversation.delivered(client_event_id)
        if mine is None or mine.sequence is None:
            return False
        after = mine.sequence
    return any(
        message.role is not Role.USER and message.complete and (message.sequence or 0) > after
        for message in conversation.transcript
    )


def _busy(conversation: Conversation) -> bool:
    return bool(
        conversation.agent_thinking or conversation.live_agent_typing or conversation.streaming
    )


def _new_sequences(previous: Conversation, new: Conversation) -> list[int]:
    """Sequences journaled in ``new`` but not in ``previous`` (cheap: looks only at the span
    past the previous cursor and the previous gaps)."""
    gaps = [(first, last) for first, last in previous.gaps]
    span = max(0, new.cursor - previous.cursor) + sum(last - first + 1 for first, last in gaps)
    if new.cursor < previous.cursor or span > _MAX_SPAN:
        return sorted(s for s in new.journal if s not in previous.journal)
    candidates = [s for first, last in gaps for s in range(first, last + 1)]
    candidates += range(previous.cursor + 1, new.cursor + 1)
    return sorted(s for s in candidates if s in new.journal and s not in previous.journal)


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
        f"(not delivered: {entry.text!r})"
        for entry in new.state.outbox
        if entry.status is DeliveryStatus.FAILED and entry.client_event_id not in failed_before
    ]


def _queue_line(event: HandoffQueueStatus) -> str:
    payload = event.payload
    if payload.display_message:
        return payload.display_message
    parts = []
    position = payload.queue_position
    parts.append(
        "You are in the queue" if position is None else f"You are #{position} in the queue"
    )
    if payload.queue_name:
        parts.append(f" '{payload.queue_name}'")
    if payload.estimated_wait_seconds is not None:
        parts.append(f" (estimated wait {_duration(payload.estimated_wait_seconds)})")
    return "".join(parts) + "."


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} s"
    return f"{round(seconds / 60)} min"


def _notice_line(notice: Notice) -> str:
    return f"[{_level(notice.level)}] {notice.message}"


def _level(level: str | None) -> str:
    if not level:
        return "system"
    return level.removeprefix("SYSTEM_MESSAGE_LEVEL_").lower()


def _agent_name(conversation: Conversation) -> str:
    agent = conversation.agent
    return agent.name if agent is not None and agent.name else "Agent"


def _live_name(conversation: Conversation, agent_id: str | None) -> str:
    live = conversation.live_agent
    if live is not None and live.name and (agent_id is None or live.id in (None, agent_id)):
        return live.name
    return agent_id or "Live agent"


# --- the terminal -----------------------------------------------------------------------------


class Terminal:
    """Writes rendered output. Interactive terminals also get the indicator line, redrawn in
    place (``\\r`` and erase-line); otherwise only permanent lines are written."""

    def __init__(
        self,
        out: TextIO,
        *,
        interactive: bool,
        width: Callable[[], int] | None = None,
    ) -> None:
        self._out = out
        self._interactive = interactive
        self._width = width or (lambda: 80)
        self._indicator: str | None = None

    def show(self, rendered: Rendered) -> None:
        """Print the permanent lines, then (interactive only) the indicator."""
        if self._interactive and self._indicator:
            self._out.write("\r\x1b[K")
        for line in rendered.lines:
            self._out.write(line + "\n")
        self._indicator = rendered.indicator
        if self._interactive and self._indicator:
            self._out.write(_fit(self._indicator, self._width()))
        self._out.flush()

    def note(self, line: str) -> None:
        """Print one extra line (help, errors), keeping the indicator."""
        self.show(Rendered((line,), self._indicator))


def _fit(text: str, width: int) -> str:
    text = text.replace("\n", " ")
    room = max(10, width - 1)
    if len(text) <= room:
        return text
    return _ELLIPSIS + text[-(room - 1) :]


# --- running a chat ---------------------------------------------------------------------------


class _Renderer:
    def __init__(self, session: Session, terminal: Terminal) -> None:
        self._session = session
        self._terminal = terminal
        self._previous: Update | None = None

    async def run(self) -> None:
        async for update in self._session.updates():
            self.draw(update)

    def draw(self, update: Update) -> None:
        if self._previous is not None and update.version <= self._previous.version:
            return
        self._terminal.show(render(self._previous, update))
        self._previous = update


async def _pump_lines(fd: int, send: trio.MemorySendChannel[str]) -> None:
    """Send the lines read from ``fd`` (in a thread, abandoned on cancel); close at end of input."""
    buffer = b""
    async with send:
        while True:
            chunk = await trio.to_thread.run_sync(os.read, fd, 65536, abandon_on_cancel=True)
            if not chunk:
                if buffer:
                    await send.send(buffer.decode("utf-8", "replace"))
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                await send.send(line.decode("utf-8", "replace"))


async def _cancel_when_finished(session: Session, scope: trio.CancelScope) -> None:
    await session.wait_finished()
    scope.cancel()


async def _handle_line(session: Session, terminal: Terminal, line: str) -> str | bool | None:
    """Act on one input line: ``False`` to stop, a ``client_event_id`` when a message was sent,
    ``None`` when nothing was sent."""
    text = line.strip()
    if not text:
        return None
    if text.lower() in END_COMMANDS:
        try:
            await session.end()
        except LocalProtocolError as exc:
            terminal.note(f"! {exc}")
        return False
    if text.lower() in ("/help", "/?"):
        terminal.note(HELP_TEXT)
        return None
    try:
        if text.isdigit() and 1 <= int(text) <= len(session.conversation.suggestions):
            return await session.pick(int(text) - 1)
        return await session.send(text)
    except LocalProtocolError as exc:
        terminal.note(f"! {exc}")
        return None


async def _wait_reply(session: Session, client_event_id: str | None, timeout: float) -> bool:
    """Wait until the reply is complete (see :func:`reply_complete`), the session finished, or,
    when the server answered with something other than a message (a handoff notice), until a
    quiet second passed. ``False`` on timeout."""
    quiet = 1.0
    with trio.move_on_after(timeout):
        update: Update | None = session.latest
        while update is not None:
            conversation = update.conversation
            if update.finished is not None or reply_complete(conversation, client_event_id):
                return True
            if _answered(conversation, client_event_id) and not _busy(conversation):
                with trio.move_on_after(quiet) as scope:
                    update = await session.next_update(update.version)
                if scope.cancelled_caught:
                    return True
            else:
                update = await session.next_update(update.version)
        return True
    return False


def _answered(conversation: Conversation, client_event_id: str | None) -> bool:
    if client_event_id is None:
        return conversation.agent_joined
    mine = conversation.delivered(client_event_id)
    return mine is not None and mine.sequence is not None and conversation.cursor > mine.sequence


async def run_chat(
    session: Session,
    terminal: Terminal,
    *,
    script: Iterable[str] | None = None,
    input_fd: int | None = None,
    reply_timeout: float = 30.0,
    end_timeout: float = 10.0,
) -> Finished | None:
    """Run a chat until it ends; return how the session finished (``None`` if it did not).

    With ``script``, each line is sent once the previous reply is complete (or after
    ``reply_timeout``); without ``/end`` the chat stops after the last reply, leaving the session
    open on the server. Otherwise lines are read from ``input_fd`` (default: stdin); end of input
    ends the conversation. Input stops as soon as the session is over.
    """
    renderer = _Renderer(session, terminal)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(renderer.run)
        if script is not None:
            ended = await _run_script(session, terminal, script, reply_timeout)
        else:
            fd = sys.stdin.fileno() if input_fd is None else input_fd
            ended = await _run_interactive(session, terminal, fd)
        if ended:
            with trio.move_on_after(end_timeout):
                await session.wait_finished()
        renderer.draw(session.latest)
        nursery.cancel_scope.cancel()
    return session.finished


async def _run_script(
    session: Session, terminal: Terminal, script: Iterable[str], reply_timeout: float
) -> bool:
    """Send the script's lines one reply at a time; ``True`` if the conversation was ended."""
    if not await _wait_reply(session, None, reply_timeout):
        terminal.note("! no greeting within the reply timeout")
    for line in script:
        if session.finished is not None:
            return True
        result = await _handle_line(session, terminal, line)
        if result is False:
            return True
        if isinstance(result, str) and not await _wait_reply(session, result, reply_timeout):
            terminal.note(f"! no complete reply to {line.strip()!r} within {reply_timeout:g} s")
    # Let trailing events (a SESSION_END right after the last reply) arrive and print.
    await _quiet(session, _TRAILING_QUIET, reply_timeout)
    return session.finished is not None


async def _quiet(session: Session, quiet: float, limit: float) -> None:
    """Wait until no snapshot arrived for ``quiet`` seconds (at most ``limit``) or the end."""
    with trio.move_on_after(limit):
        update: Update | None = session.latest
        while update is not None and update.finished is None:
            with trio.move_on_after(quiet) as scope:
                update = await session.next_update(update.version)
            if scope.cancelled_caught:
                return


async def _run_interactive(session: Session, terminal: Terminal, fd: int) -> bool:
    """Read and act on typed lines until ``/end``, end of input (which ends the conversation)
    or the end of the session."""
    send, receive = trio.open_memory_channel[str](math.inf)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_pump_lines, fd, send)
        nursery.start_soon(_cancel_when_finished, session, nursery.cancel_scope)
        async with receive:
            async for line in receive:
                if await _handle_line(session, terminal, line) is False:
                    break
            else:
                with contextlib.suppress(LocalProtocolError):
                    await session.end()
        nursery.cancel_scope.cancel()
    return True
