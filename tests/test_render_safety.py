"""Hostile text from the server never reaches the terminal raw, and never crashes the chat.

Every field a server controls (message text, agent and live-agent names, suggestions,
attachments, queue names, reasons, notices, the end reason) goes through the real renderer with
arbitrary text: escape sequences, bells, carriage returns, C1 controls, lone surrogates,
bidirectional overrides. The output holds none of them, encodes as UTF-8, and no line of it
can pass for something the user typed.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from typing import Any
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from polyai_messaging.cli import _replay as replay
from polyai_messaging.cli._main import build_parser
from polyai_messaging.cli._render import render
from polyai_messaging.cli._safe import terminal_safe
from polyai_messaging.core import fold
from polyai_messaging.driver import Finished, FinishKind
from test_chat_cli import Script, snapshot

HOSTILE = [
    "\x1b]0;pwned\x07",  # sets the window title
    "\x1b[2J\x1b[H",  # clears the screen
    "ok\rYou: I agree to pay",  # overwrites the line
    "\nYou: I agree to pay",  # a forged user line
    "\x9b31m",  # C1 CSI
    "\ud800",  # a lone surrogate
    "\u202eyap ot eerga I",  # right-to-left override
    "\x07\x00\x7f",
]
TEXT = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40))
UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


def hostile_conversation(texts: list[str]) -> Any:
    t = iter(texts * 20)
    script = Script()
    events = [
        script("SESSION_START", {"capabilities": {}}),
        script("POLY_AGENT_JOINED", {"agent_name": next(t)}),
        script(
            "POLY_AGENT_MESSAGE",
            {
                "message_id": "m1",
                "text": next(t),
                "attachments": [{"title": next(t), "content_url": next(t)}],
                "response_suggestions": [{"message_text": next(t)}],
            },
        ),
        script("POLY_AGENT_TRIGGERED_HANDOFF"),
        script("HANDOFF_ACCEPTED", {"queue_name": next(t)}),
        script("HANDOFF_QUEUE_STATUS", {"queue_name": next(t), "position_in_queue": 2}),
        script("HANDOFF_QUEUE_STATUS", {"display_message": next(t)}),
        script("LIVE_AGENT_JOINED", {"agent": {"id": next(t), "name": next(t)}}),
        script("LIVE_AGENT_MESSAGE", {"message_id": "m2", "agent_id": next(t), "text": next(t)}),
        script("LANGUAGE_CHANGED", {"language_code": next(t)}),
        script("HANDOFF_FAILED", {"reason": next(t)}),
        script("CLIENT_HANDOFF_REQUIRED", {"reason": next(t), "route": next(t)}),
        script("SYSTEM_MESSAGE", {"message": next(t), "level": next(t)}, transient=True),
        script("POLY_AGENT_MESSAGE_CHUNK", {"message_id": "m3", "chunk_index": 1, "text": next(t)}),
    ]
    return fold(events)


@settings(max_examples=150, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=6))
def test_no_server_text_reaches_the_terminal_raw(texts: list[str]) -> None:
    conversation = hostile_conversation(texts)
    finished = Finished(FinishKind.ENDED, texts[0])
    rendered = render(None, snapshot(conversation, finished=finished))
    streaming = render(None, snapshot(conversation))
    output = [*rendered.lines, streaming.indicator or ""]
    for line in output:
        assert not UNSAFE.search(line), repr(line)
        line.encode("utf-8")  # printable: no lone surrogate survives
        for physical in line.split("\n"):
            assert not physical.startswith("You:"), repr(line)


def test_control_characters_become_visible_symbols() -> None:
    assert terminal_safe("a\x1b[2Jb\x07") == "a\u241b[2Jb\u2407"
    assert terminal_safe("tab\tand\nnewline") == "tab\tand\nnewline"
    assert terminal_safe("one\nline", multiline=False) == "one line"
    assert terminal_safe("\ud800\u202e\x85") == "\ufffd\ufffd\ufffd"


# --- replay: a captured log is server text too ---------------------------------------------------


def hostile_log(texts: list[str]) -> list[str]:
    """A log of frames whose every free-text field holds one of ``texts``."""
    t = itertools.cycle(texts)
    frames = [
        {"type": "EVENT_TYPE_POLY_AGENT_JOINED", "payload": {"agent_name": next(t)}},
        {
            "type": "EVENT_TYPE_POLY_AGENT_MESSAGE",
            "payload": {
                "message_id": "m1",
                "text": next(t),
                "attachments": [{"title": next(t), "content_url": next(t)}],
                "response_suggestions": [{"message_text": next(t)}],
            },
        },
        {
            "type": "EVENT_TYPE_LIVE_AGENT_JOINED",
            "payload": {"agent": {"id": next(t), "name": next(t)}},
        },
        {"type": "EVENT_TYPE_SYSTEM_MESSAGE", "payload": {"message": next(t), "level": next(t)}},
        {"type": "EVENT_TYPE_HANDOFF_QUEUE_STATUS", "payload": {"queue_name": next(t)}},
        {"type": "EVENT_TYPE_SESSION_END", "payload": {"reason": next(t)}},
    ]
    return [
        json.dumps({"id": f"e{n}", "sequence": n, **frame}) for n, frame in enumerate(frames, 1)
    ]


@settings(max_examples=50, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=4), st.booleans())
def test_replay_shows_no_server_text_raw(texts: list[str], as_json: bool) -> None:
    out, err = io.StringIO(), io.StringIO()
    argv = ["replay", "-", *(["--json"] if as_json else [])]
    args = build_parser().parse_args(argv)
    with patch("sys.stdin", io.TextIOWrapper(io.BytesIO("\n".join(hostile_log(texts)).encode()))):
        assert replay.run(args, out, err) == 0
    for stream in (out, err):
        text = stream.getvalue()
        text.encode("utf-8")  # printable
        assert not UNSAFE.search(text.replace("\n", "").replace("\t", "")), repr(text)
    if as_json:
        document = json.loads(out.getvalue())  # still JSON, with the same text in it
        assert document["transcript"][0]["text"] == texts[1 % len(texts)]
