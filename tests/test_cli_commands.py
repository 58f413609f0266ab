"""The command line as a person or a program meets it: help, flags, exit statuses, failures.

Exit statuses: 0 done, 1 the conversation failed, 2 a usage error, 130 Ctrl-C, 141 the output
was closed. A failure is one line on stderr with the precise cause and what to do; never a
traceback.
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli_emulator import CLI, ENV, interrupt, running_emulator, start_interruptible
from polyai_messaging.cli import main
from polyai_messaging.cli._main import build_parser
from polyai_messaging.emulator import FAULT_HELP

TOKEN = "demo-connector-token"
TIMEOUT = 60


def run(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**ENV, **env},
        check=False,
    )


@contextlib.contextmanager
def cli_emulator(*options: str) -> Iterator[dict[str, Any]]:
    """``polyai-messaging emulator --port 0 --fast [options]``: its announcement."""
    with running_emulator("--port", "0", "--fast", *options) as (announced, _):
        yield announced


@pytest.fixture(scope="module")
def emulator() -> Iterator[dict[str, Any]]:
    """``polyai-messaging emulator --port 0 --fast``: its announcement."""
    with cli_emulator() as announced:
        yield announced


def help_of(*command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``argv``, which must be refused as a usage error (status 2); return stderr."""
    try:
        status = main(argv)
    except SystemExit as exit_info:  # refused by the parser
        status = exit_info.code  # type: ignore[assignment]
    assert status == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err


# --- help -------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [(), ("demo",), ("chat",), ("emulator",), ("replay",)])
def test_help_lists_the_exit_statuses(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_of(*command, capsys=capsys)
    statuses = re.findall(r"^ +(\d+) +\S", text.split("exit status:")[1], re.MULTILINE)
    assert statuses == ["0", "1", "2", "130", "141"]


@pytest.mark.parametrize("command", ["demo", "chat"])
def test_script_help_says_dash_reads_stdin(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = " ".join(help_of(command, capsys=capsys).split())
    assert "'-' reads stdin" in text
    assert "when stdin or stdout is not a terminal" in text


@pytest.mark.parametrize("command", ["demo", "emulator"])
def test_faults_help_lists_every_spec(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(command, capsys=capsys)
    for spec, meaning in FAULT_HELP.items():
        assert re.search(rf"^  {re.escape(spec)} +{re.escape(meaning)}$", text, re.MULTILINE)


# --- flags: one meaning per name ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "streaming"),
    [
        (["demo"], True),
        (["demo", "--no-streaming"], False),
        (["demo", "--streaming"], True),
        (["chat", "--base-url", "https://x.example", "--host", "x.example"], True),
        (
            ["chat", "--base-url", "https://x.example", "--host", "x.example", "--no-streaming"],
            False,
        ),
    ],
)
def test_streaming_is_one_flag_pair_with_one_default(argv: list[str], streaming: bool) -> None:
    assert build_parser().parse_args(argv).streaming is streaming


def test_chat_session_id_resumes_a_conversation(emulator: dict[str, Any], tmp_path: Path) -> None:
    headers = {"X-Token": TOKEN, "X-Host": emulator["host"]}
    with httpx.Client(base_url=emulator["base_url"], timeout=TIMEOUT) as http:
        token = http.post("/api/v1/access-token", headers=headers).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        session_id = http.post("/api/v1/sessions", headers=auth).json()["session_id"]
    chat = ["chat", "--base-url", emulator["base_url"], "--host", emulator["host"]]
    first = run(
        *chat,
        "--session-id",
        session_id,
        stdin="remember me\n",
        **{"POLYAI_CONNECTOR_TOKEN": TOKEN},
    )
    assert first.returncode == 0, first.stderr
    assert 'Ada: You said: "remember me" (2 words). What else can I do for you?' in first.stdout
    # The second run, in the same conversation, is shown its history first.
    again = run(
        *chat, "--session-id", session_id, stdin="/end\n", **{"POLYAI_CONNECTOR_TOKEN": TOKEN}
    )
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    assert "You: remember me" in lines
    assert lines[-1] == "Conversation ended: you left."


# --- input ------------------------------------------------------------------------------------


def test_piped_stdin_is_a_script_one_line_per_reply() -> None:
    result = run("demo", "--fast", stdin="hello\nhow are you\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    hello = lines.index("You: hello")
    assert lines.index("Ada: Hi, I'm Ada, the PolyAI demo agent. How can I help you today?") < hello
    assert lines[hello + 1] == 'Ada: You said: "hello" (1 word). What else can I do for you?'
    assert lines[hello + 3] == "You: how are you"
    assert lines[hello + 4] == 'Ada: You said: "how are you" (3 words). What else can I do for you?'
    assert "\x1b" not in result.stdout  # no terminal control without a terminal


def test_text_echoed_by_the_server_reaches_the_terminal_made_safe() -> None:
    result = run("demo", "--fast", stdin="\x1b]0;pwned\x07 \x1b[2J hi\n")
    assert result.returncode == 0, result.stderr
    assert "You: \u241b]0;pwned\u2407 \u241b[2J hi" in result.stdout.splitlines()
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", result.stdout)


def test_an_unreadable_script_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = usage_error(["demo", "--fast", "--script", str(tmp_path / "missing.txt")], capsys)
    (line,) = err.splitlines()
    assert "missing.txt" in line
    assert "No such file" in line


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "inf"])
def test_a_reply_timeout_must_be_a_positive_number(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "--reply-timeout" in usage_error(["demo", "--reply-timeout", value], capsys)


@pytest.mark.parametrize("url", ["ws://127.0.0.1:1", "wss://messaging.example.com", "example.com"])
def test_a_base_url_that_is_not_http_is_a_usage_error(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POLYAI_CONNECTOR_TOKEN", TOKEN)
    err = usage_error(["chat", "--base-url", url, "--host", "localhost"], capsys)
    assert "--base-url is the REST base URL" in err


def test_a_terminal_that_cannot_show_unicode_gets_replacements_not_a_crash(tmp_path: Path) -> None:
    script = tmp_path / "script.txt"
    script.write_text("human\n/end\n", encoding="utf-8")
    result = subprocess.run(
        [*CLI, "demo", "--fast", "--script", str(script)],
        capture_output=True,
        text=True,
        encoding="ascii",
        errors="strict",  # what was written is ASCII, or this read fails
        timeout=TIMEOUT,
        env={**ENV, "PYTHONIOENCODING": "ascii"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "Conversation ended: you left." in result.stdout


@pytest.mark.parametrize("command", ["demo", "emulator", "replay"])
def test_an_unknown_option_is_reported_with_its_commands_usage(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = usage_error([command, *(["log.jsonl"] if command == "replay" else []), "--nope"], capsys)
    assert f"usage: polyai-messaging {command}" in err
    assert f"polyai-messaging {command}: error: unrecognized arguments: --nope" in err


def test_a_bad_faults_spec_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(["demo", "--faults", "drop-after=x"], capsys)
    assert "--faults" in err


# --- failures: the cause in one line, with what to do -----------------------------------------


def chat_failure(
    base_url: str,
    host: str,
    token: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> list[str]:
    """Run ``chat`` where it must fail (status 1); return stderr's lines."""
    monkeypatch.setenv("POLYAI_CONNECTOR_TOKEN", token)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: a script
    status = main(["chat", "--base-url", base_url, "--host", host])
    captured = capsys.readouterr()
    assert status == 1, captured
    assert captured.out == ""
    assert "Traceback" not in captured.err
    assert token not in captured.err
    return captured.err.splitlines()


def test_a_wrong_connector_token(
    emulator: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (line,) = chat_failure(emulator["base_url"], "localhost", "wrong-token", monkeypatch, capsys)
    assert "Connector token does not exist" in line
    assert "401" in line
    assert "$POLYAI_CONNECTOR_TOKEN" in line  # what to check


def test_creating_the_session_shows_its_retries(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The emulator refuses the first create-session call (500): the chat says it retries,
    then carries on; nothing is silent for the second of the wait."""
    with cli_emulator("--faults", "fail-session=1") as announced:
        monkeypatch.setenv("POLYAI_CONNECTOR_TOKEN", TOKEN)
        monkeypatch.setattr("sys.stdin", io.StringIO("/end\n"))
        status = main(["chat", "--base-url", announced["base_url"], "--host", announced["host"]])
    captured = capsys.readouterr()
    assert status == 0, captured
    progress, resume = captured.err.splitlines()
    assert re.fullmatch(r"connecting… retry 2 of 3 in \d+\.\d s", progress), progress
    # A script's stdout is the transcript; the id to resume with goes to stderr.
    assert re.fullmatch(r"Session (\S+) \(resume it with --session-id \1\)\.", resume), resume
    assert captured.out.splitlines()[-1] == "Conversation ended: you left."


def test_a_failing_token_service_is_named_with_what_to_do(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``demo --faults fail-token=5``: every access-token call answers 500; the last line says
    so (the cause, not just 'the token provider failed') and what to do."""
    script = tmp_path / "script.txt"
    script.write_text("hi\n", encoding="utf-8")
    status = main(["demo", "--fast", "--faults", "fail-token=5", "--script", str(script)])
    captured = capsys.readouterr()
    assert status == 1, captured
    *progress, failure = captured.err.splitlines()
    assert [line.split(" in ")[0] for line in progress] == [
        "connecting… retry 2 of 3",
        "connecting… retry 3 of 3",
    ]
    assert "the server failed" in failure
    assert "HTTP 500" in failure
    assert "try again later" in failure


def test_tls_failures_are_not_retried(
    emulator: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """https:// to a server that speaks plain HTTP: a TLS failure, which retrying cannot fix, so
    the one line comes at once, with no 'retry' progress before it."""
    https_url = emulator["base_url"].replace("http://", "https://")
    (line,) = chat_failure(https_url, emulator["host"], TOKEN, monkeypatch, capsys)
    assert "could not reach the server" in line
    assert "SSL" in line


def test_a_certificate_that_does_not_verify_is_not_retried(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with cli_emulator("--tls") as announced:
        (line,) = chat_failure(announced["base_url"], announced["host"], TOKEN, monkeypatch, capsys)
    assert "CERTIFICATE_VERIFY_FAILED" in line
    assert "--ca-file" in line


def test_a_wrong_host(
    emulator: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (line,) = chat_failure(emulator["base_url"], "wrong.example", TOKEN, monkeypatch, capsys)
    assert "Failed to validate connector" in line
    assert "--host" in line


def test_an_unreachable_url_shows_its_retries(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    lines = chat_failure(f"http://127.0.0.1:{port}", "localhost", TOKEN, monkeypatch, capsys)
    elapsed = time.monotonic() - start
    *progress, failure = lines
    assert len(progress) == 2
    for number, line in enumerate(progress, start=2):
        match = re.fullmatch(rf"connecting… retry {number} of 3 in (\d+\.\d) s", line)
        assert match is not None, line
    waited = sum(float(re.findall(r"in (\S+) s", line)[0]) for line in progress)
    assert waited <= elapsed + 0.1  # the waits announced are the waits made
    assert "could not reach the server" in failure
    assert "--base-url" in failure


def demo_without(module: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``polyai-messaging demo --fast --script FILE`` (the script: ``/end``) in an interpreter
    where ``module`` cannot be imported."""
    code = (
        f"import sys; sys.modules[{module!r}] = None;"
        "from polyai_messaging.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    script = tmp_path / "script.txt"
    script.write_text("/end\n", encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-c", code, "demo", "--fast", "--script", str(script)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=ENV,
        check=False,
    )


@pytest.mark.parametrize("module", ["websockets", "hypercorn"])
def test_a_missing_extra_is_named(tmp_path: Path, module: str) -> None:
    result = demo_without(module, tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "polyai-messaging: this command needs pip install 'polyai-messaging[cli]'"
    ]


def test_a_script_needs_no_line_editor(tmp_path: Path) -> None:
    result = demo_without("prompt_toolkit", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "Conversation ended: you left."


# --- closed pipes and Ctrl-C ------------------------------------------------------------------


def with_stdout_closed(argv: list[str], *, after: str | None = None) -> tuple[int, str]:
    """Run ``argv`` and close the reading end of its stdout, as ``| head -1`` does: at once, or
    once it has printed the line ``after``. Returns the exit status and stderr."""
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    assert process.stdout is not None
    assert process.stderr is not None
    if after is not None:
        assert process.stdout.readline() == after
    process.stdout.close()
    with process.stderr:
        stderr = process.stderr.read()
    return process.wait(timeout=TIMEOUT), stderr


def test_a_closed_stdout_ends_quietly(tmp_path: Path) -> None:
    """``demo | head -1``: no traceback, no 'Broken pipe', status 141 as for a shell tool."""
    script = tmp_path / "script.txt"
    script.write_text("hello\nhello again\n/end\n", encoding="utf-8")
    status, stderr = with_stdout_closed(
        [*CLI, "demo", "--no-streaming", "--script", str(script)], after="Connected.\n"
    )
    assert status == 141
    assert stderr == ""


@pytest.mark.parametrize("command", [[], ["emulator"], ["demo"], ["chat"], ["replay"]])
def test_help_into_a_closed_stdout_ends_quietly(command: list[str]) -> None:
    """``polyai-messaging emulator --help | head -1``: the help is printed while the command
    line is parsed, before any command runs; a closed pipe there ends as quietly."""
    # Closed before the interpreter has started: every write meets a closed pipe.
    status, stderr = with_stdout_closed([*CLI, *command, "--help"])
    assert status == 141
    assert stderr == ""


def test_ctrl_c_while_connecting_exits_130() -> None:
    with socket.socket() as sock:  # accepts connections, never answers: connecting hangs
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sock.settimeout(TIMEOUT)
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        process = start_interruptible(
            [*CLI, "chat", "--base-url", base_url, "--host", "localhost", "--script", "-"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**ENV, "POLYAI_CONNECTOR_TOKEN": TOKEN},
        )
        # Its first request's connection: from here on it is connecting, however long the
        # interpreter took to start (a fixed sleep could interrupt it still importing).
        try:
            connection, _ = sock.accept()
        except TimeoutError:
            process.kill()
            process.communicate()
            raise
        with connection:
            stderr = interrupt(process, TIMEOUT)
    assert process.returncode == 130
    assert stderr.strip() == "Interrupted."
