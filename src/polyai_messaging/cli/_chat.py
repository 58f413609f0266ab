"""The chat loop shared by the terminal and scripts, on asyncio.

:func:`run_script` drives a :class:`~polyai_messaging.asyncio.Session` from lines (a file, or
stdin when it is not a terminal), each sent once the previous reply is over, and prints the
transcript. The interactive terminal, :func:`polyai_messaging.cli._prompt.run_interactive`,
uses the same pieces: :func:`following`, which shows every new snapshot on an :class:`Output`
(turned into lines by the pure functions of ``_render`` and ``_wording``, re-exported
here), and :func:`handle_line`, which acts on one input line.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterable
from typing import Final, Protocol, TextIO, TypeVar

from ..core import Conversation, LocalProtocolError
from ..driver import Finished
from ..runtime import SessionRuntime, Update
from ._render import Rendered, conversation_lines, render
from ._wording import end_line, event_line, indicator_line, message_lines, status_line

# The rendering names are re-exported so that ``polyai_messaging.cli._chat`` stays the one import
# callers need.
__all__ = [
    "END_COMMANDS",
    "HELP_TEXT",
    "LineReader",
    "Output",
    "PlainOutput",
    "Rendered",
    "background",
    "conversation_lines",
    "end_line",
    "event_line",
    "following",
    "handle_line",
    "indicator_line",
    "message_lines",
    "render",
    "run_script",
    "status_line",
    "unless_finished",
    "wait_end",
]

END_COMMANDS: Final = frozenset({"/end", "/leave", "/quit"})
"""Input lines that end the conversation (``USER_END_SESSION``)."""

HELP_TEXT: Final = (
    "Type a message and press Enter; a number picks a suggestion; /end or Ctrl-D leaves the"
    " conversation; Ctrl-C quits without ending it."
)

_TRAILING_QUIET: Final = 0.5
_ANSWER_QUIET: Final = 1.0
_T = TypeVar("_T")


class Output(Protocol):
    """Where the chat shows what happens."""

    def show(self, rendered: Rendered) -> None:
        """Show the permanent lines, and the indicator where there is room for one."""

    def note(self, line: str) -> None:
        """Show one extra line (help, a refused input)."""


class PlainOutput:
    """Permanent lines only, flushed one snapshot at a time: a transcript, for a file or a
    pipe (an indicator would only be noise there)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def show(self, rendered: Rendered) -> None:
        """Write the permanent lines."""
        for line in rendered.lines:
            self._out.write(line + "\n")
        self._out.flush()

    def note(self, line: str) -> None:
        """Write one line."""
        self.show(Rendered((line,)))


class _Renderer:
    def __init__(self, output: Output) -> None:
        self._output = output
        self._previous: Update | None = None

    def draw(self, update: Update) -> None:
        if self._previous is not None and update.version <= self._previous.version:
            return
        self._output.show(render(self._previous, update))
        self._previous = update


@contextlib.asynccontextmanager
async def background(*jobs: Coroutine[object, object, None]) -> AsyncIterator[None]:
    """Run ``jobs`` as tasks for the duration of the block (cancelled on leaving it). A job
    that fails cancels the block, and the block raises its error (in an exception group)."""
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(job) for job in jobs]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()


@contextlib.asynccontextmanager
async def following(session: SessionRuntime, output: Output) -> AsyncIterator[None]:
    """Show every new snapshot of ``session`` on ``output`` during the block, and the latest
    one on leaving it (so that the end is shown even if the block was quicker)."""
    renderer = _Renderer(output)

    async def follow() -> None:
        async for update in session.updates():
            renderer.draw(update)

    async with background(follow()):
        yield
    renderer.draw(session.latest)


async def handle_line(session: SessionRuntime, output: Output, line: str) -> str | bool | None:
    """Act on one input line: ``False`` to stop, a ``client_event_id`` when a message was sent,
    ``None`` when nothing was sent."""
    text = line.strip()
    if not text:
        return None
    if text.lower() in END_COMMANDS:
        try:
            await session.end()
        except LocalProtocolError as exc:
            output.note(f"! {exc}")
        return False
    if text.lower() in ("/help", "/?"):
        output.note(HELP_TEXT)
        return None
    try:
        if text.isdigit() and 1 <= int(text) <= len(session.conversation.suggestions):
            return await session.pick(int(text) - 1)
        return await session.send(text)
    except LocalProtocolError as exc:
        output.note(f"! {exc}")
        return None


async def wait_end(session: SessionRuntime, timeout: float) -> None:
    """Wait (at most ``timeout``) for the end the server confirms after ``/end``."""
    await _within(timeout, session.wait_finished())


async def _within(timeout: float, waiting: Awaitable[_T]) -> _T | None:
    """``waiting``'s result, or ``None`` if it took longer than ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            return await waiting
    except TimeoutError:
        return None


async def unless_finished(session: SessionRuntime, waiting: Awaitable[_T]) -> _T | None:
    """``waiting``'s result; ``None`` if the session finished first (``waiting`` is cancelled).

    Whatever ``waiting`` raises (Ctrl-C at the prompt) is raised here, after both tasks are
    done: a task left unawaited would print its error when the program exits.
    """
    task = asyncio.ensure_future(waiting)
    finished = asyncio.ensure_future(session.wait_finished())
    try:
        await asyncio.wait([task, finished], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, finished):
            pending.cancel()
        await asyncio.wait([task, finished])
    # A session closed before it finished (LocalProtocolError) has finished too.
    ended = None if finished.cancelled() else finished.exception()
    if ended is not None and not isinstance(ended, LocalProtocolError):
        raise ended
    return task.result() if not task.cancelled() else None


class LineReader:
    """The lines of a text stream, read as they come: a pipe may be written while the chat
    runs. A daemon thread reads, so that a read still waiting when the chat ends holds nothing
    up; :meth:`readline` may be cancelled without losing a line."""

    def __init__(self, stream: Iterable[str]) -> None:
        loop = asyncio.get_running_loop()
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()

        def deliver(line: str | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is reading
                loop.call_soon_threadsafe(self._lines.put_nowait, line)

        def read() -> None:
            for line in stream:
                deliver(line)
            deliver(None)

        threading.Thread(target=read, name="polyai-messaging-input", daemon=True).start()

    async def readline(self) -> str | None:
        """The next line; ``None`` at the end of the stream."""
        line = await self._lines.get()
        if line is None:
            self._lines.put_nowait(None)  # the end stays the end
        return line


# --- scripts ------------------------------------------------------------------------------------


async def run_script(
    session: SessionRuntime,
    output: Output,
    lines: LineReader,
    *,
    reply_timeout: float = 30.0,
    end_timeout: float = 10.0,
) -> Finished | None:
    """Send ``lines`` one reply at a time; return how the session finished (``None`` if not).

    Each line is sent once the previous reply is complete (or after ``reply_timeout``), the
    first once the greeting is. ``/end`` ends the conversation; without it the chat stops after
    the last reply, leaving the session open on the server.
    """
    async with following(session, output):
        if await _within(reply_timeout, _reply(session, None)) is None:
            output.note("! no greeting within the reply timeout")
        ended = False
        while (line := await unless_finished(session, lines.readline())) is not None:
            result = await handle_line(session, output, line)
            if result is False:
                ended = True
                break
            if (
                isinstance(result, str)
                and await _within(reply_timeout, _reply(session, result)) is None
            ):
                output.note(f"! no complete reply to {line.strip()!r} within {reply_timeout:g} s")
        if ended:
            await wait_end(session, end_timeout)
        else:
            # Let trailing events (a SESSION_END right after the last reply) arrive and print.
            await _within(reply_timeout, _quiet(session, _TRAILING_QUIET))
    return session.finished


async def _reply(session: SessionRuntime, client_event_id: str | None) -> bool:
    """Wait until the reply is complete (``Conversation.reply_complete``), the session finished,
    or, when the server answered with something other than a message (a handoff notice), until
    a quiet second passed."""
    update: Update | None = session.latest
    while update is not None:
        conversation = update.conversation
        if update.finished is not None or conversation.reply_complete(client_event_id):
            return True
        following_update = _next(session, update)
        if _answered(conversation, client_event_id) and not conversation.busy:
            following_update = _within(_ANSWER_QUIET, following_update)
        update = await following_update
        if update is None:  # quiet (or closed): the answer is all there
            return True
    return True


async def _next(session: SessionRuntime, update: Update) -> Update | None:
    return await session.next_update(update.version)


async def _quiet(session: SessionRuntime, quiet: float) -> None:
    """Wait until no snapshot arrived for ``quiet`` seconds, or the end."""
    update: Update | None = session.latest
    while update is not None and update.finished is None:
        update = await _within(quiet, _next(session, update))


def _answered(conversation: Conversation, client_event_id: str | None) -> bool:
    if client_event_id is None:
        return conversation.agent_joined
    mine = conversation.delivered(client_event_id)
    return mine is not None and mine.sequence is not None and conversation.cursor > mine.sequence
