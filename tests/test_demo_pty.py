"""``polyai-messaging demo`` in a pseudo-terminal, as a person would use it.

The program runs under pexpect in a pty; what it writes is fed to a terminal emulator (pyte), so
the tests read the *screen* a person sees (redraws, erasures and all), not the raw byte stream.
The emulated terminal answers cursor-position requests, as a real one does.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pyte
import pytest

TIMEOUT = 20.0
ROWS, COLUMNS = 60, 200
LEFT = "\x1b[D"
CTRL_C, CTRL_D = "\x03", "\x04"
ENTER = "\r"
PROMPT = "> "


class _AnsweringScreen(pyte.Screen):
    """A screen that answers the program's queries (cursor position) as a terminal does."""

    def __init__(self, child: pexpect.spawn) -> None:
        super().__init__(COLUMNS, ROWS)
        self.child = child

    def write_process_input(self, data: str) -> None:
        self.child.send(data)


class Terminal:
    """A program in a pty, and the screen it draws."""

    def __init__(self, child: pexpect.spawn) -> None:
        self.child = child
        self.screen = _AnsweringScreen(child)
        self.stream = pyte.Stream(self.screen)
        self.prompt_lines: list[str] = []
        """The input line after each read of the program's output (see :attr:`prompt_line`)."""

    def pump(self, seconds: float = 0.05) -> None:
        """Feed whatever the program wrote within ``seconds`` to the screen."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                data = self.child.read_nonblocking(65536, timeout=0.02)
            except pexpect.TIMEOUT:
                data = ""
            except pexpect.EOF:
                return
            if data:
                self.stream.feed(data)
                self.prompt_lines.append(self.prompt_line)
            elif time.monotonic() >= deadline:
                return

    @property
    def lines(self) -> list[str]:
        """The screen's lines, trailing blanks removed."""
        return [line.rstrip() for line in self.screen.display]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def bottom(self) -> str:
        """The bottom line: the indicator (who is typing, a reply as it streams)."""
        return self.lines[-1]

    @property
    def prompt_line(self) -> str:
        """The input line: the last one that starts with the prompt."""
        prompts = [line for line in self.lines if line.startswith(PROMPT.rstrip())]
        return prompts[-1] if prompts else ""

    def wait(self, condition: Callable[[Terminal], bool], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not condition(self):
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}; screen:\n{self.text}")
            if not self.child.isalive():
                self.pump(0.2)
                if not condition(self):
                    pytest.fail(f"exited before {what}; screen:\n{self.text}")
                return
            self.pump()

    def wait_for(self, text: str) -> None:
        self.wait(lambda t: text in t.text, repr(text))

    def type(self, keys: str, pause: float = 0.03) -> None:
        """Type one key at a time, as a person does, reading the screen in between."""
        for key in keys:
            self.child.send(key)
            self.pump(pause)

    def exit_status(self) -> int | None:
        self.child.expect(pexpect.EOF, timeout=TIMEOUT)
        self.child.close()
        return self.child.exitstatus


def spawn(*args: str, stderr: Path | None = None) -> pexpect.spawn:
    command = [sys.executable, "-m", "polyai_messaging.cli", *args]
    if stderr is not None:  # keep the log off the screen
        command = ["/bin/sh", "-c", 'exec "$@" 2>"$0"', str(stderr), *command]
    return pexpect.spawn(
        command[0],
        command[1:],
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(ROWS, COLUMNS),
        env={**os.environ, "PYTHONIOENCODING": "utf-8", "TERM": "xterm"},
    )


@pytest.fixture
def terminal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Terminal]:
    """``polyai-messaging demo`` with the test's parameters as extra arguments; the debug log
    goes to ``tmp_path / "log"``."""
    extra: list[str] = getattr(request, "param", [])
    child = spawn("demo", "--log-level", "debug", *extra, stderr=tmp_path / "log")
    try:
        yield Terminal(child)
    finally:
        if child.isalive():
            child.terminate(force=True)
        child.close()


def occurrences(term: Terminal, line: str) -> int:
    return sum(1 for shown in term.lines if shown == line)


def greeted(term: Terminal) -> None:
    term.wait_for("[1] I have a question about my order  [2] I need to make a booking")


def test_greeting_suggestions_and_the_end_in_words(terminal: Terminal) -> None:
    terminal.wait_for("Trigger words: human, callback")
    terminal.wait_for("Ada joined the conversation.")
    greeted(terminal)
    assert "Ada: Hi, I'm Ada, the PolyAI demo agent. How can I help you today?" in terminal.lines
    assert "    (Our locations: https://example.com/locations)" in terminal.lines
    terminal.type("1" + ENTER)
    terminal.wait_for('Ada: You said: "I have a question about my order" (7 words).')
    terminal.wait_for("[1] Tell me more  [2] Talk to a human")
    assert occurrences(terminal, "You: I have a question about my order") == 1
    terminal.type("/end" + ENTER)
    terminal.wait_for("Conversation ended: you left.")
    assert terminal.exit_status() == 0


@pytest.mark.parametrize("terminal", [["--faults", "delay=0.2"]], indirect=True)
def test_typing_while_the_agent_streams_keeps_the_half_typed_line(terminal: Terminal) -> None:
    greeted(terminal)
    question = " ".join(f"w{n}" for n in range(20))  # a long reply: many chunks, slowed down
    terminal.type(question + ENTER, pause=0)
    # The reply streams in the bottom line ...
    terminal.wait(lambda t: t.bottom.startswith("Ada: You said"), "the reply to stream")
    assert terminal.bottom.endswith("…")
    # ... while the user types, slowly; no redraw touches the half-typed text.
    half = "I am typing mid-stre"
    typed = [f"{PROMPT}{half[:length]}".rstrip() for length in range(len(half) + 1)]
    terminal.prompt_lines.clear()
    indicators = set()
    for length in range(1, len(half) + 1):
        terminal.type(half[length - 1], pause=0.06)
        terminal.wait(lambda t, n=length: t.prompt_line == typed[n], repr(typed[length]))
        indicators.add(terminal.bottom)
    assert len({i for i in indicators if i.startswith("Ada: You said")}) > 1, "no overlap"
    # At no time was any of it lost: a line printed above the prompt redraws the prompt, which
    # may be caught absent for an instant (""), but never showing other text.
    assert set(terminal.prompt_lines) - {""} <= set(typed)
    terminal.wait_for(f'Ada: You said: "{question}" (20 words). What else can I do for you?')
    assert terminal.prompt_line == typed[-1]
    # Arrow keys edit the line: "mid-stre" becomes "mid-Xstre".
    terminal.type(LEFT * 4 + "X")
    terminal.wait(lambda t: t.prompt_line == f"{PROMPT}I am typing mid-Xstre", "the edit")
    terminal.type(ENTER)
    terminal.wait_for('Ada: You said: "I am typing mid-Xstre" (4 words).')
    # Each line shows once: the prompt line gives way to the transcript's.
    assert occurrences(terminal, "You: I am typing mid-Xstre") == 1
    assert occurrences(terminal, f"You: {question}") == 1
    assert not [line for line in terminal.lines if "I am typing" in line and "You" not in line]


def test_typing_is_sent_to_the_server(terminal: Terminal, tmp_path: Path) -> None:
    greeted(terminal)
    terminal.type("hello there")
    terminal.wait(lambda _: "TYPING_STATE_STARTED" in (tmp_path / "log").read_text(), "STARTED")
    terminal.type(ENTER)
    terminal.wait_for('Ada: You said: "hello there" (2 words).')
    sent = re.findall(r"-> (\{.*)", (tmp_path / "log").read_text())
    kinds = [
        "STARTED" if "TYPING_STATE_STARTED" in frame else
        "STOPPED" if "TYPING_STATE_STOPPED" in frame else
        "MESSAGE" if "EVENT_TYPE_USER_MESSAGE" in frame else None
        for frame in sent
    ]  # fmt: skip
    kinds = [kind for kind in kinds if kind is not None]
    assert kinds == ["STARTED", "STOPPED", "MESSAGE"]


@pytest.mark.parametrize("terminal", [["--no-streaming"]], indirect=True)
def test_handoff_to_a_live_agent_then_ctrl_d_leaves(terminal: Terminal) -> None:
    terminal.wait_for("[3] Talk to a human")
    terminal.type("3" + ENTER)
    terminal.wait_for("Ada is transferring you to a human agent…")
    terminal.wait_for("You are #2 in the queue 'General Support'")
    terminal.wait_for("Sarah (live agent) joined the conversation.")
    terminal.wait_for("Sarah (live agent): Hi, I'm Sarah from the support team.")
    terminal.type(CTRL_D)  # leaves the conversation
    terminal.wait_for("Conversation ended: you left.")
    assert terminal.exit_status() == 0


def test_the_end_from_the_server_closes_the_prompt(terminal: Terminal) -> None:
    greeted(terminal)
    terminal.type("goodbye" + ENTER)
    terminal.wait_for("Conversation ended: the conversation is over.")
    assert terminal.exit_status() == 0


def test_ctrl_c_quits_with_status_130(terminal: Terminal, tmp_path: Path) -> None:
    greeted(terminal)
    terminal.type("half a line" + CTRL_C)
    assert terminal.exit_status() == 130
    assert "Traceback" not in terminal.text
    stderr = (tmp_path / "log").read_text()  # the screen shows stdout; stderr went here
    assert "Interrupted." in stderr
    assert "Traceback" not in stderr
    assert "never retrieved" not in stderr
