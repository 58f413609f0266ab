"""The terminal chat's prompt, in-process: a pipe for the keyboard, the emulator for a server."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from polyai_messaging.asyncio import open_session
from polyai_messaging.cli import _prompt
from polyai_messaging.driver import FinishKind
from polyai_messaging.testing import open_emulator

TIMEOUT = 20.0


def sent_frames(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the session sent, from its debug log, as STARTED / STOPPED / the event's type."""
    kinds = []
    for record in caplog.records:
        frame = re.search(r"-> (\{.*)", record.getMessage())
        if frame is None:
            continue
        text = frame.group(1)
        state = re.search(r"TYPING_STATE_(\w+)", text)
        kind = re.search(r'"type":\s*"EVENT_TYPE_(\w+)"', text)
        if state is not None:
            kinds.append(state.group(1))
        elif kind is not None and kind.group(1) != "HEARTBEAT":
            kinds.append(kind.group(1))
    return kinds


def test_typing_stops_when_the_line_is_left_alone_and_before_it_is_sent(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_prompt, "TYPING_IDLE_SECONDS", 0.3)
    caplog.set_level(logging.DEBUG, logger="polyai_messaging")

    async def chat() -> None:
        async with (
            open_emulator() as emulator,
            open_session(emulator.base_url, emulator.token_provider) as session,
        ):
            await session.wait_reply()  # the greeting
            with create_pipe_input() as keyboard, create_app_session(keyboard, DummyOutput()):
                chatting = asyncio.ensure_future(_prompt.run_interactive(session))
                keyboard.send_text("hel")
                await asyncio.sleep(1.0)  # left alone: no longer typing
                keyboard.send_text("lo\r")
                async with asyncio.timeout(TIMEOUT):
                    while len(session.conversation.transcript) < 3:  # greeting, hello, reply
                        await session.next_update(session.latest.version)
                keyboard.send_text("/end\r")
                async with asyncio.timeout(TIMEOUT):
                    finished = await chatting
        assert finished is not None
        assert finished.kind is FinishKind.ENDED

    asyncio.run(chat())
    assert sent_frames(caplog) == [
        "REQUEST_POLY_AGENT_JOIN",
        "STARTED",
        "STOPPED",  # after TYPING_IDLE_SECONDS without a key
        "STARTED",
        "STOPPED",  # before the message
        "USER_MESSAGE",
        "USER_END_SESSION",
    ]


@pytest.mark.parametrize(
    ("text", "width", "shown"),
    [
        ("Ada is typing…", 80, "Ada is typing…"),
        ("Ada: " + "x" * 30 + "end", 20, "…" + "x" * 15 + "end"),
        ("two\nlines", 80, "two lines"),
    ],
)
def test_the_indicator_fits_one_line_and_keeps_the_end_of_a_stream(
    text: str, width: int, shown: str
) -> None:
    assert _prompt._fit(text, width) == shown
