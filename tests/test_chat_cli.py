"""The terminal chat: pure rendering, the plain output, and the CLI in script mode."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

from cli_emulator import CLI, ENV, running_emulator
from polyai_messaging.cli import _live as cli_live
from polyai_messaging.cli import main
from polyai_messaging.cli._chat import (
    PlainOutput,
    Rendered,
    conversation_lines,
    end_line,
    indicator_line,
    render,
    status_line,
)
from polyai_messaging.core import Conversation, decode_object, fold
from polyai_messaging.driver import (
    DeliveryStatus,
    Finished,
    FinishKind,
    LinkStatus,
    Outbox,
    OutboxEntry,
    SessionState,
    StatusChanged,
)
from polyai_messaging.rest import _calls as rest
from polyai_messaging.runtime import Update


class Script:
    """Builds server events with consecutive sequences."""

    def __init__(self) -> None:
        self.sequence = 0
        self.transient = 0

    def __call__(self, kind: str, payload: dict[str, Any] | None = None, **extra: Any) -> Any:
        if extra.pop("transient", False):
            self.transient += 1
            envelope: dict[str, Any] = {"id": f"t{self.transient}", "sequence": None}
        else:
            self.sequence += 1
            envelope = {"id": f"e{self.sequence}", "sequence": self.sequence}
        envelope |= {"type": f"EVENT_TYPE_{kind}", "payload": payload or {}, **extra}
        return decode_object(envelope)


def agent_message(text: str, message_id: str, suggestions: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "text": text,
        "attachments": [],
        "response_suggestions": [{"message_text": s} for s in suggestions],
    }


def chunk(message_id: str, index: int, text: str, **extra: Any) -> dict[str, Any]:
    return {"message_id": message_id, "chunk_index": index, "text": text, **extra}


def snapshot(
    conversation: Conversation,
    *,
    version: int = 1,
    session_id: str = "s1",
    status: StatusChanged | None = None,
    finished: Finished | None = None,
    outbox: tuple[OutboxEntry, ...] = (),
) -> Update:
    state = attrs.evolve(
        SessionState.new(session_id),
        conversation=conversation,
        outbox=Outbox.from_entries(outbox),
    )
    return Update(version, state, status, finished)


def greeting_events(script: Script) -> list[Any]:
    return [
        script("SESSION_START", {"capabilities": {"streaming": True}}),
        script("REQUEST_POLY_AGENT_JOIN"),
        script("POLY_AGENT_JOINED", {"agent_name": "Ada"}),
        script("POLY_AGENT_THINKING"),
    ]


# --- pure rendering -----------------------------------------------------------------------------


def test_greeting_streams_progressively_then_prints_once_complete() -> None:
    script = Script()
    start = fold(greeting_events(script))
    first = render(None, snapshot(start))
    assert first.lines == ("Ada joined the conversation.",)
    assert first.indicator == "Ada is typing…"

    attachment = {"title": "Our locations", "content_url": "https://example.com/locations"}
    partial = fold(
        [script("POLY_AGENT_MESSAGE_CHUNK", chunk("g", 1, "Hi, I'm ", attachments=[attachment]))],
        start,
    )
    second = render(snapshot(start), snapshot(partial, version=2))
    assert second.lines == ()
    assert second.indicator == "Ada: Hi, I'm …"

    done = fold(
        [
            script("POLY_AGENT_MESSAGE_CHUNK", chunk("g", 2, "Ada.")),
            script(
                "POLY_AGENT_MESSAGE_CHUNK",
                chunk(
                    "g",
                    3,
                    "",
                    is_complete=True,
                    response_suggestions=[{"message_text": "Book"}, {"message_text": "Help"}],
                ),
            ),
        ],
        partial,
    )
    third = render(snapshot(partial, version=2), snapshot(done, version=3))
    assert third.lines == (
        "Ada: Hi, I'm Ada.",
        "    (Our locations: https://example.com/locations)",
        "    [1] Book  [2] Help",
    )
    assert third.indicator is None


def test_skipped_snapshots_render_the_same_lines() -> None:
    """Conflation: rendering only the last snapshot prints what rendering each one did."""
    script = Script()
    events = [
        *greeting_events(script),
        script("POLY_AGENT_MESSAGE", agent_message("Hello!", "m1", ("Talk to a human",))),
        script("USER_MESSAGE", {"text": "Talk to a human", "message_id": "u1"}),
        script("POLY_AGENT_TRIGGERED_HANDOFF"),
        script("POLY_AGENT_LEFT"),
        script("HANDOFF_ACCEPTED"),
        script(
            "HANDOFF_QUEUE_STATUS",
            {
                "queue_name": "General Support",
                "position_in_queue": 2,
                "estimated_wait_seconds": 120,
            },
        ),
        script("LIVE_AGENT_JOINED", {"agent": {"id": "a42", "name": "Sarah"}}),
        script(
            "LIVE_AGENT_TYPING",
            {"state": "TYPING_STATE_STARTED", "agent_id": "a42"},
            transient=True,
        ),
        script(
            "LIVE_AGENT_MESSAGE", {"message_id": "l1", "agent_id": "a42", "text": "Hi, Sarah here."}
        ),
        script("LANGUAGE_CHANGED", {"language_code": "fr-FR"}),
        script("LIVE_AGENT_LEFT"),
        script(
            "SYSTEM_MESSAGE",
            {"level": "SYSTEM_MESSAGE_LEVEL_WARNING", "message": "Heads up"},
            transient=True,
        ),
    ]
    stepwise: list[str] = []
    previous: Update | None = None
    conversation = Conversation()
    for version, event in enumerate(events, start=1):
        conversation = fold([event], conversation)
        update = snapshot(conversation, version=version)
        stepwise += render(previous, update).lines
        previous = update
    at_once = render(None, snapshot(conversation)).lines
    # Suggestion buttons are only shown under the latest message, so a snapshot that already
    # holds the user's answer does not show them; everything else is identical.
    buttons = "    [1] Talk to a human"
    assert list(at_once) == [line for line in stepwise if line != buttons]
    assert stepwise == [
        "Ada joined the conversation.",
        "Ada: Hello!",
        buttons,
        "You: Talk to a human",
        "Ada is transferring you to a human agent…",
        "Ada left the conversation.",
        "Handoff accepted.",
        "You are #2 in the queue 'General Support' (estimated wait 2 min).",
        "Sarah (live agent) joined the conversation.",
        "Sarah (live agent): Hi, Sarah here.",
        "Language changed to fr-FR.",
        "Sarah (live agent) left the conversation.",
        "[warning] Heads up",
    ]


def test_indicators() -> None:
    script = Script()
    conversation = fold(greeting_events(script))
    assert indicator_line(conversation) == "Ada is typing…"
    conversation = fold(
        [
            script("POLY_AGENT_MESSAGE", agent_message("Hi", "m1")),
            script("LIVE_AGENT_JOINED", {"agent": {"id": "a42", "name": "Sarah"}}),
            script("LIVE_AGENT_TYPING", {"state": "TYPING_STATE_STARTED"}, transient=True),
        ],
        conversation,
    )
    assert indicator_line(conversation) == "Sarah is typing…"
    conversation = fold(
        [script("LIVE_AGENT_TYPING", {"state": "TYPING_STATE_STOPPED"}, transient=True)],
        conversation,
    )
    assert indicator_line(conversation) is None


def test_handoff_outcomes_and_client_handoff() -> None:
    script = Script()
    base = fold([*greeting_events(script), script("POLY_AGENT_MESSAGE", agent_message("Hi", "m"))])
    after = fold(
        [
            script("POLY_AGENT_TRIGGERED_HANDOFF"),
            script("CLIENT_HANDOFF_REQUIRED", {"reason": "COMPLEX_QUERY", "queue_name": "Support"}),
            script("HANDOFF_FAILED"),
            script("HANDOFF_TIMEOUT", {"reason": "queue closed"}),
            script("HANDOFF_QUEUE_STATUS", {"display_message": "Almost there"}),
            script("HANDOFF_QUEUE_STATUS", {"position": 4}),
        ],
        base,
    )
    assert conversation_lines(base, after) == [
        "Ada is transferring you to a human agent…",
        "Please continue with Support: this conversation needs a handoff (reason: COMPLEX_QUERY).",
        "The handoff failed: no live agent could take over. Try again or /end.",
        "Nobody was available in time (handoff timed out). Try again later or /end.",
        "Almost there",
        "You are #4 in the queue.",
    ]


def test_a_conversation_rebuilt_from_scratch_shows_only_what_is_new() -> None:
    # After a reset the driver rebuilds the conversation from the replay: the new log does not
    # extend the old one, so the renderer compares them by sequence instead.
    script = Script()
    events = [
        script("POLY_AGENT_JOINED", {"agent_name": "Ada"}),
        script("LANGUAGE_CHANGED", {"language_code": "fr-FR"}),
    ]
    before = fold(events[:1])
    rebuilt = fold(events)
    assert rebuilt.log.since(before.log) is None
    assert conversation_lines(before, rebuilt) == ["Language changed to fr-FR."]
    # ... and the usual case, an extension, reads only the added part of the log
    extended = fold(events[1:], before)
    assert list(extended.log.since(before.log) or ()) == events[1:]
    assert conversation_lines(before, extended) == ["Language changed to fr-FR."]


def test_link_status_end_new_session_and_failed_delivery() -> None:
    lost = StatusChanged(LinkStatus.RECONNECTING, "closed (1006)", 1, 2.0, 1)
    assert status_line(None, lost) == (
        "Connection lost (closed (1006)); reconnecting in 2.0 s (attempt 1)."
    )
    assert status_line(lost, lost) is None
    assert status_line(lost, StatusChanged(LinkStatus.OPEN, "connected", 1, None, 2)) == (
        "Reconnected."
    )
    assert status_line(None, StatusChanged(LinkStatus.OPEN, "connected", 0, None, 1)) == (
        "Connected."
    )

    script = Script()
    conversation = fold(greeting_events(script))
    entry = OutboxEntry("c1", "hello")
    before = snapshot(conversation, outbox=(entry,))
    failed = attrs.evolve(entry, status=DeliveryStatus.FAILED)
    ended = snapshot(
        conversation,
        version=2,
        outbox=(failed,),
        finished=Finished(FinishKind.ENDED, "REASON_USER_END"),
    )
    result = render(before, ended)
    assert result.lines == (
        "(not delivered: 'hello')",
        "Conversation ended: you left.",
    )
    assert result.indicator is None

    other = render(before, snapshot(fold(greeting_events(Script())), version=3, session_id="s2"))
    assert other.lines[0].startswith("-- The session could not continue")
    assert "Ada joined the conversation." in other.lines


def test_reply_complete() -> None:
    script = Script()
    conversation = fold([*greeting_events(script)])
    assert not conversation.reply_complete(None)
    conversation = fold([script("POLY_AGENT_MESSAGE", agent_message("Hi", "m1"))], conversation)
    assert conversation.reply_complete(None)
    conversation = fold(
        [script("USER_MESSAGE", {"text": "x"}, metadata={"custom": {"client_event_id": "c1"}})],
        conversation,
    )
    assert not conversation.reply_complete("c1")
    conversation = fold([script("POLY_AGENT_THINKING")], conversation)
    assert not conversation.reply_complete("c1")
    conversation = fold([script("POLY_AGENT_MESSAGE", agent_message("Ok", "m2"))], conversation)
    assert conversation.reply_complete("c1")


def test_interrupted_stream_and_agent_errors_end_the_wait() -> None:
    script = Script()
    base = fold([*greeting_events(script), script("POLY_AGENT_MESSAGE", agent_message("Hi", "m1"))])
    asked = fold(
        [
            script("USER_MESSAGE", {"text": "x"}, metadata={"custom": {"client_event_id": "c1"}}),
            script("POLY_AGENT_THINKING"),
        ],
        base,
    )
    assert asked.agent_thinking
    overloaded = fold(
        [script("SYSTEM_MESSAGE", {"message": "Our system is experiencing high load."})], asked
    )
    assert not overloaded.agent_thinking
    assert indicator_line(overloaded) is None
    assert overloaded.reply_complete("c1")

    streaming = fold(
        [
            script("USER_MESSAGE", {"text": "y"}, metadata={"custom": {"client_event_id": "c2"}}),
            script("POLY_AGENT_THINKING"),
            script("POLY_AGENT_MESSAGE_CHUNK", chunk("s", 1, "I was about ")),
        ],
        overloaded,
    )
    assert indicator_line(streaming) == "Ada: I was about …"
    assert not streaming.reply_complete("c2")
    error = "Sorry, I encountered an error. Please try again."
    broken = fold([script("SYSTEM_MESSAGE", {"message": error})], streaming)
    assert conversation_lines(streaming, broken) == [
        "Ada: I was about… (interrupted)",
        f"[error] {error}",
    ]
    assert conversation_lines(broken, broken) == []
    assert indicator_line(broken) is None
    assert broken.reply_complete("c2")


def test_the_end_is_said_in_words() -> None:
    def said(kind: FinishKind, reason: str | None) -> str:
        return end_line(Finished(kind, reason))

    assert said(FinishKind.ENDED, "REASON_USER_END") == "Conversation ended: you left."
    assert said(FinishKind.ENDED, "REASON_NATURAL_END") == (
        "Conversation ended: the conversation is over."
    )
    assert said(FinishKind.ENDED, "REASON_USER_ABANDONED") == (
        "Conversation ended: nothing was heard from you for too long."
    )
    assert said(FinishKind.ENDED, None) == "Conversation ended."
    # A reason nobody documented is shown as it is, made safe.
    assert said(FinishKind.ENDED, "REASON_\x1b]0;X\x07NEW") == (
        "Conversation ended (reason: REASON_\u241b]0;X\u2407NEW)."
    )
    assert said(FinishKind.GAVE_UP, "5 reconnect attempts failed") == (
        "Connection lost: could not reconnect (5 reconnect attempts failed)."
    )
    assert said(FinishKind.NEW_SESSION_REQUIRED, "session_not_found").startswith(
        "Conversation lost: the server no longer knows it"
    )
    refused = said(FinishKind.NEW_SESSION_REQUIRED, "authentication_failed; 3 in a row")
    assert refused.startswith("Conversation lost: the server refused its access tokens")
    for kind in FinishKind:
        line = said(kind, "why")
        assert "_" not in line.split("(")[0], line  # never an enum's spelling
        assert line.endswith("(why).") or kind is FinishKind.ENDED


def test_plain_output_writes_permanent_lines_only() -> None:
    out = io.StringIO()
    plain = PlainOutput(out)
    plain.show(Rendered(("one",), "Ada is typing…"))
    plain.note("two")
    assert out.getvalue() == "one\ntwo\n"


# --- the command line -------------------------------------------------------------------------


def write_script(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "script.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_demo_script_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = write_script(tmp_path, "hello", "2", "/end", "never sent")
    status = main(["demo", "--fast", "--no-streaming", "--script", str(script)])
    output = capsys.readouterr().out
    assert status == 0
    lines = output.splitlines()
    assert "Ada joined the conversation." in lines
    assert "Ada: Hi, I'm Ada, the PolyAI demo agent. How can I help you today?" in lines
    assert "    (Our locations: https://example.com/locations)" in lines
    assert (
        "    [1] I have a question about my order  [2] I need to make a booking  "
        "[3] Talk to a human"
    ) in lines
    assert "You: hello" in lines
    assert "You: Talk to a human" in lines  # "2" picked the second suggestion of the reply
    assert "Sarah (live agent) joined the conversation." in lines
    assert lines[-1] == "Conversation ended: you left."
    assert "never sent" not in output
    assert "\x1b[K" not in output  # no terminal control codes without a terminal


def test_demo_script_streaming_subprocess_with_debug_log(tmp_path: Path) -> None:
    script = write_script(tmp_path, "hello there", "error:stream-error", "goodbye")
    result = subprocess.run(
        [
            *CLI,
            "demo",
            "--fast",
            "--script",
            str(script),
            "--reply-timeout",
            "5",
            "--log-level=debug",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "Ada: Hi, I'm Ada, the PolyAI demo agent. How can I help you today?" in lines
    assert 'Ada: You said: "hello there" (2 words). What else can I do for you?' in lines
    assert "    [1] Tell me more  [2] Talk to a human" in lines
    assert "Ada: I was about to answer that when… (interrupted)" in lines
    assert "[error] Sorry, I encountered an error. Please try again." in lines
    assert "Ada: Thanks for chatting with us. Goodbye!" in lines
    assert not [line for line in lines if line.startswith("!")]  # no reply wait timed out
    assert lines[-1] == "Conversation ended: the conversation is over."
    # Every frame is logged, and no access token is.
    assert "#1] -> " in result.stderr
    assert "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK" in result.stderr
    assert "access_token=***" in result.stderr
    assert not re.search(r"access_token=(?!\*\*\*)", result.stderr)
    # Only the library's own records: no dependency's debug output (httpx, httpcore...).
    loggers = set(re.findall(r"^\S+ \S+ (?:DEBUG|INFO|WARNING|ERROR) (\S+):", result.stderr, re.M))
    assert loggers
    assert all(name.startswith("polyai_messaging") for name in loggers), loggers


def test_emulator_and_chat_commands(tmp_path: Path) -> None:
    with running_emulator("--port", "0", "--fast") as (announced, _):
        script = write_script(tmp_path, "hi", "/end")
        chat = ["chat", "--base-url", announced["base_url"], "--host", "localhost"]
        result = subprocess.run(
            [*CLI, *chat, "--script", str(script)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**ENV, "POLYAI_CONNECTOR_TOKEN": "demo-connector-token"},
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert "Ada: Hi, I'm Ada" in result.stdout
    assert 'Ada: You said: "hi" (1 word). What else can I do for you?' in result.stdout
    assert result.stdout.splitlines()[-1] == "Conversation ended: you left."


def test_cli_platforms_match_the_rest_module() -> None:
    assert set(cli_live.PLATFORMS) == rest.PLATFORMS


def test_building_the_parser_imports_no_network_stack() -> None:
    code = (
        "import sys; from polyai_messaging.cli._main import build_parser; build_parser(); "
        "print(sorted(m for m in ('trio', 'httpx', 'hypercorn', 'websockets', 'prompt_toolkit')"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert result.stdout.strip() == "[]"


def test_chat_needs_the_connector_token_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POLYAI_CONNECTOR_TOKEN", raising=False)
    status = main(["chat", "--base-url", "https://messaging.us-1.poly.ai", "--host", "x.com"])
    assert status == 2
    assert "POLYAI_CONNECTOR_TOKEN" in capsys.readouterr().err


def test_chat_refuses_plain_http_to_a_remote_host(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POLYAI_CONNECTOR_TOKEN", "secret-connector-token")
    status = main(["chat", "--base-url", "http://example.com", "--host", "example.com"])
    assert status == 2  # a usage error: nothing was sent
    err = capsys.readouterr().err
    assert "TLS" in err or "https" in err
    assert "secret-connector-token" not in err


def test_an_empty_message_shows_nothing_but_its_suggestions() -> None:
    """The renderer shows what the vendor SDKs show: nothing for a message without text,
    attachments or suggestions; the suggestions of one without text."""
    yes = [{"message_text": "Yes"}]
    frames = [
        {"type": "EVENT_TYPE_POLY_AGENT_MESSAGE", "id": "a", "sequence": 1,
         "payload": {"message_id": "m1", "text": ""}},
        {"type": "EVENT_TYPE_POLY_AGENT_MESSAGE", "id": "b", "sequence": 2,
         "payload": {"message_id": "m2", "text": "", "response_suggestions": yes}},
    ]  # fmt: skip
    empty = fold([decode_object(frames[0])])
    assert conversation_lines(Conversation(), empty) == []
    with_suggestion = fold([decode_object(frame) for frame in frames])
    assert conversation_lines(empty, with_suggestion) == ["Agent:", "    [1] Yes"]
