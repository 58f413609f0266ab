"""The terminal chat: the loop that runs a chat, and the terminal it writes to.

:func:`run_chat` drives a :class:`~polyai_messaging.trio.Session` from a terminal (lines
typed on stdin) or from a script (a list of lines, each sent once the previous reply is over).
Each new snapshot is turned into lines by the pure functions of
:mod:`polyai_messaging.cli._render` (re-exported here) and written by a :class:`Terminal`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable
from typing import Final, TextIO

import trio

from ..core import Conversation, LocalProtocolError
from ..driver import Finished
from ..runtime import Update
from ..trio import Session
from ._render import (
    Rendered,
    conversation_lines,
    end_line,
    event_line,
    indicator_line,
    message_lines,
    render,
    status_line,
)

# The rendering names are re-exported so that ``polyai_messaging.cli._chat`` stays the one import
# callers need.
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
    "run_chat",
    "status_line",
]

logger = logging.getLogger(__name__)

END_COMMANDS: Final = frozenset({"/end", "/leave", "/quit"})
"""Input lines that end the conversation (``USER_END_SESSION``)."""

HELP_TEXT: Final = "Type a message and press Enter; a number picks a suggestion; /end leaves."

_ELLIPSIS: Final = "…"  # marks an indicator cut to the terminal width
_TRAILING_QUIET: Final = 0.5


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
    """Wait until the reply is complete (``Conversation.reply_complete``), the session finished, or,
    when the server answered with something other than a message (a handoff notice), until a
    quiet second passed. ``False`` on timeout."""
    quiet = 1.0
    with trio.move_on_after(timeout):
        update: Update | None = session.latest
        while update is not None:
            conversation = update.conversation
            if update.finished is not None or conversation.reply_complete(client_event_id):
                return True
            if _answered(conversation, client_event_id) and not conversation.busy:
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
