"""The interactive terminal chat: a line editor (prompt_toolkit) under the conversation.

The user types at a prompt with line editing and history; what happens in the conversation is
printed above it (``patch_stdout``) without touching the half-typed line, and the ephemeral
indicator (a reply still streaming, "Ada is typing…") is the prompt's bottom toolbar. The
prompt line is erased once accepted: the transcript shows the message once, as the server
echoed it. Typing is reported to the server (``USER_TYPING``): started while the line holds
text (not a ``/`` command), stopped when it is emptied, sent, or left alone for
:data:`TYPING_IDLE_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Final

from prompt_toolkit import PromptSession
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.styles import Style

from ..core import LocalProtocolError
from ..driver import Finished
from ..runtime import SessionRuntime
from ._chat import Rendered, background, following, handle_line, unless_finished, wait_end
from ._status import Interrupted

__all__ = ["PROMPT", "TYPING_IDLE_SECONDS", "PromptOutput", "run_interactive"]

PROMPT: Final = "> "
"""What the input line starts with."""

TYPING_IDLE_SECONDS: Final = 5.0
"""A line left alone this long counts as no longer being typed (``TYPING_STATE_STOPPED``)."""

_ELLIPSIS: Final = "…"  # marks an indicator cut to the terminal's width
_STYLE: Final = Style.from_dict({"bottom-toolbar": "noreverse"})


class PromptOutput:
    """Shows the chat around a prompt: lines above it, the indicator under it."""

    def __init__(self, prompt: PromptSession[str]) -> None:
        self._prompt = prompt
        self._indicator: str | None = None

    def show(self, rendered: Rendered) -> None:
        """Print the permanent lines above the prompt; show the indicator under it."""
        for line in rendered.lines:
            print(line)  # stdout is patched: the line goes above the prompt
        if rendered.indicator != self._indicator:
            self._indicator = rendered.indicator
            self._prompt.bottom_toolbar = None if rendered.indicator is None else self._toolbar
            self._prompt.app.invalidate()

    def note(self, line: str) -> None:
        """Print one line above the prompt."""
        print(line)

    def _toolbar(self) -> str:
        width = self._prompt.app.output.get_size().columns
        return _fit(self._indicator or "", width)


def _fit(text: str, width: int) -> str:
    """``text`` on one line of ``width``: a longer one keeps its end (where a stream grows)."""
    text = text.replace("\n", " ")
    room = max(10, width - 1)
    if len(text) <= room:
        return text
    return _ELLIPSIS + text[-(room - 1) :]


class _Typing:
    """Tells the server whether the user is typing, from the changes of the input line."""

    def __init__(self, session: SessionRuntime) -> None:
        self._session = session
        self._typing = False
        self._changed = asyncio.Event()
        # One report at a time, so that a stop is never overtaken by an older start.
        self._lock = asyncio.Lock()

    def on_change(self, buffer: Buffer) -> None:
        """The input line changed (prompt_toolkit calls this)."""
        text = buffer.text.strip()
        self._typing = bool(text) and not text.startswith("/")  # a command is not a message
        self._changed.set()

    async def run(self) -> None:
        """Report the changes, and a stop once the line was left alone long enough."""
        while True:
            try:
                async with asyncio.timeout(TYPING_IDLE_SECONDS):
                    await self._changed.wait()
            except TimeoutError:
                self._typing = False
            self._changed.clear()
            await self._tell()

    async def stop(self) -> None:
        """The line was sent: report a stop first."""
        self._typing = False
        self._changed.clear()
        await self._tell()

    async def _tell(self) -> None:
        async with self._lock:
            with contextlib.suppress(LocalProtocolError):  # the session is over: nobody to tell
                await self._session.typing(self._typing)


async def run_interactive(
    session: SessionRuntime,
    *,
    banner: Iterable[str] = (),
    end_timeout: float = 10.0,
) -> Finished | None:
    """Chat at a prompt until ``/end``, Ctrl-D (both end the conversation) or the end of the
    session; return how the session finished. Ctrl-C raises :class:`Interrupted`, leaving the
    conversation open on the server.

    The terminal is prompt_toolkit's current one (``create_app_session`` chooses another).
    """
    prompt: PromptSession[str] = PromptSession(PROMPT, erase_when_done=True, style=_STYLE)
    screen = PromptOutput(prompt)
    typing = _Typing(session)
    prompt.default_buffer.on_text_changed += typing.on_change
    with patch_stdout():
        for line in banner:
            screen.note(line)
        async with following(session, screen), background(typing.run()):
            await _converse(session, screen, prompt, typing)
            await wait_end(session, end_timeout)
    return session.finished


async def _converse(
    session: SessionRuntime, screen: PromptOutput, prompt: PromptSession[str], typing: _Typing
) -> None:
    """Act on the lines typed until ``/end``, end of input (which leaves) or the end."""
    while (line := await unless_finished(session, _read(prompt))) is not None:
        await typing.stop()
        if await handle_line(session, screen, line) is False:
            return
    if session.finished is None:  # end of input (Ctrl-D) leaves
        with contextlib.suppress(LocalProtocolError):
            await session.end()


async def _read(prompt: PromptSession[str]) -> str | None:
    """The next line typed; ``None`` at end of input (Ctrl-D)."""
    try:
        return await prompt.prompt_async()
    except EOFError:
        return None
    except KeyboardInterrupt:
        # Raised here rather than let through: a KeyboardInterrupt escaping a task stops the
        # event loop abruptly, without the session's orderly exit.
        raise Interrupted from None
