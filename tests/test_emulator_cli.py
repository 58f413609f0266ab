"""``polyai-messaging emulator``: the first line of stdout tells a program where it listens;
bad options are one-line usage errors; Ctrl-C stops it with status 130."""

from __future__ import annotations

import json
import re
import signal
import socket
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from cli_emulator import TIMEOUT, read_line, running_emulator
from polyai_messaging.cli import main

ANNOUNCEMENT_KEYS = {"base_url", "ws_url", "connector_token", "host", "tls", "ca_file"}


def open_session(announcement: dict[str, Any], verify: ssl.SSLContext | bool = True) -> str:
    """A new session's WebSocket URL, made with the announced connector and host."""
    headers = {"X-Token": announcement["connector_token"], "X-Host": announcement["host"]}
    with httpx.Client(base_url=announcement["base_url"], verify=verify, timeout=TIMEOUT) as http:
        token = http.post("/api/v1/access-token", headers=headers).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        session_id = http.post("/api/v1/sessions", headers=auth).json()["session_id"]
    return f"{announcement['ws_url']}?session_id={session_id}&access_token={token}"


def test_the_first_line_is_json_with_a_working_url_and_the_heartbeat_interval() -> None:
    with running_emulator("--port", "0", "--fast", "--heartbeat-interval", "2") as (
        announced,
        process,
    ):
        assert set(announced) == ANNOUNCEMENT_KEYS
        match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)", announced["base_url"])
        assert match is not None
        assert int(match.group(1)) > 0
        assert announced["ws_url"] == f"ws://127.0.0.1:{match.group(1)}/ws"
        assert announced["tls"] is False
        assert announced["ca_file"] is None
        with connect(open_session(announced)) as ws:
            (start,) = json.loads(ws.recv(timeout=TIMEOUT))["payload"]["events"]
        assert start["payload"]["capabilities"]["heartbeat_interval_seconds"] == 2
        # Human-readable lines follow the JSON one.
        assert read_line(process).startswith("Emulator listening on ")


def test_idle_timeout_option_ends_quiet_sessions() -> None:
    with running_emulator("--port", "0", "--fast", "--idle-timeout", "0.3") as (announced, _):
        with connect(open_session(announced)) as ws:
            ws.recv(timeout=TIMEOUT)  # the replay
            end = json.loads(ws.recv(timeout=TIMEOUT))
        assert end["type"] == "EVENT_TYPE_SESSION_END"
        assert end["payload"] == {"reason": "REASON_USER_ABANDONED"}


def test_with_tls_the_first_line_names_the_ca_file(tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    with running_emulator("--port", "0", "--fast", "--tls", "--ca-file", str(ca_file)) as (
        announced,
        _,
    ):
        assert announced["tls"] is True
        assert announced["ca_file"] == str(ca_file)
        assert announced["base_url"].startswith("https://127.0.0.1:")
        assert announced["ws_url"].startswith("wss://127.0.0.1:")
        context = ssl.create_default_context(cafile=announced["ca_file"])
        with connect(open_session(announced, context), ssl=context) as ws:
            assert json.loads(ws.recv(timeout=TIMEOUT))["type"] == "EVENT_TYPE_EVENT_BATCH"


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_a_port_out_of_range_is_a_one_line_usage_error(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["emulator", "--port", port]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"polyai-messaging emulator: port must be between 0 and 65535, got {port}"
    ]


@pytest.mark.parametrize(
    ("option", "value"), [("--heartbeat-interval", "-1"), ("--idle-timeout", "0")]
)
def test_bad_timings_are_one_line_usage_errors(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["emulator", "--port", "0", option, value]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("polyai-messaging emulator: ")


def test_bind_names_the_address_and_host_is_not_an_emulator_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with running_emulator("--port", "0", "--fast", "--bind", "localhost") as (announced, _):
        assert announced["base_url"].startswith("http://127.0.0.1:")
    # --host means the X-Host header (chat), nothing else.
    with pytest.raises(SystemExit) as exit_info:
        main(["emulator", "--host", "127.0.0.1"])
    assert exit_info.value.code == 2
    assert "--host" in capsys.readouterr().err


def test_ctrl_c_stops_it_even_when_the_suite_was_started_with_sigint_ignored() -> None:
    """A suite run as a shell's background job (``pytest &``) starts with SIGINT ignored, which
    its children would inherit: the emulator must still get the Ctrl-C the tests send it."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with running_emulator("--port", "0", "--fast") as (announced, _):
            assert announced["tls"] is False
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_bind_address_off_loopback_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulator", "--port", "0", "--bind", "0.0.0.0"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("polyai-messaging emulator: ")


def test_a_bad_faults_spec_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["emulator", "--port", "0", "--faults", "drop-after=x"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--faults" in err
    assert "Traceback" not in err


def test_a_port_in_use_says_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["emulator", "--port", str(taken.getsockname()[1])]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert "in use" in line
    assert "--port 0" in line
