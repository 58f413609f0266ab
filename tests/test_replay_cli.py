"""``polyai-messaging replay FILE [--json]`` and the rendering in ``transcript.py``."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from polyai_messaging.cli import _main as cli
from polyai_messaging.cli import _replay as replay
from polyai_messaging.core import Conversation, render_text, to_json
from polyai_messaging.core import _reducer as reducer
from polyai_messaging.core import _wire as wire

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample-session.jsonl"

KEYS = {
    "phase",
    "cursor",
    "gaps",
    "capabilities",
    "agent",
    "agent_present",
    "agent_left_reason",
    "live_agent",
    "live_agent_present",
    "live_agent_left_reason",
    "transcript",
    "notices",
    "streams",
    "queue",
    "client_handoff",
    "language",
    "end_reason",
    "events_applied",
    "anomalies",
}


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def replay_json(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[dict[str, Any], str]:
    status, out, err = run_cli(capsys, "replay", str(path), "--json")
    assert status == 0
    return json.loads(out), err


# --- the shipped sample ------------------------------------------------------------------------


def test_sample_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    document, err = replay_json(capsys, SAMPLE)
    assert err == ""
    assert set(document) == KEYS
    assert document["phase"] == "ended"
    assert document["end_reason"] == "REASON_NATURAL_END"
    assert document["cursor"] == 30
    assert document["gaps"] == []
    assert document["events_applied"] == 30
    assert document["anomalies"] == []
    assert document["language"] == "fr-FR"
    assert document["agent"] == {"name": "Ada", "avatar_url": "https://example.com/avatars/ada.png"}
    assert document["live_agent"] == {
        "id": "agent_42",
        "name": "Sarah",
        "avatar_url": "https://example.com/avatars/sarah.png",
    }
    assert document["capabilities"] == {
        "streaming": True,
        "max_message_size_bytes": 131072,
        "max_reconnect_attempts": 5,
        "heartbeat_interval_seconds": 30,
    }
    assert document["queue"] == {
        "queue_name": "Reservations",
        "position_in_queue": 1,
        "estimated_wait_seconds": 45,
        "display_message": "You're next!",
    }
    assert document["client_handoff"] is None
    assert document["streams"] == []
    assert document["notices"] == [
        {
            "level": "SYSTEM_MESSAGE_LEVEL_WARNING",
            "message": "Our system is experiencing high load. Please try again in a moment.",
        }
    ]
    transcript = document["transcript"]
    assert [(m["sequence"], m["role"]) for m in transcript] == [
        (5, "agent"),
        (8, "user"),
        (10, "agent"),
        (12, "user"),
        (14, "agent"),
        (24, "live_agent"),
        (25, "user"),  # the resend at 26 is the same message
        (28, "live_agent"),
    ]
    greeting, _, where, _, check, _, resent, confirmation = transcript
    assert greeting == {
        "sequence": 5,
        "role": "agent",
        "message_id": "msg_greeting",
        "text": "Hello! I'm Ada, the virtual host of Trattoria Roma. How can I help you today?",
        "attachments": [],
        "suggestions": ["Book a table", "Opening hours"],
        "call_actions": [],
        "client_event_id": None,
    }
    assert where["attachments"] == [
        {
            "title": "Our locations",
            "preview_image_url": "https://example.com/thumb.png",
            "content_url": "https://example.com/locations",
            "content_type": "ATTACHMENT_CONTENT_TYPE_URL",
            "call_to_action_text": "View locations",
        }
    ]
    # the reply interrupted by the drop, completed by the replay (chunks 14 and 15 overlap)
    assert check["text"] == (
        "Let me check availability for tomorrow at 7pm. I'm afraid a colleague needs to confirm "
        "bookings for that evening: I'm handing you over."
    )
    assert (resent["client_event_id"], resent["message_id"]) == ("5b0f0c1e-0003", "umsg_25")
    assert confirmation["attachments"][0]["content_type"] == "ATTACHMENT_CONTENT_TYPE_IMAGE"


def test_sample_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_cli(capsys, "replay", str(SAMPLE))
    assert (status, err) == (0, "")
    for expected in (
        "Agent: Ada <https://example.com/avatars/ada.png>",
        "Live agent: Sarah [agent_42]",
        "Presence: agent left, live agent left",
        "Language: fr-FR",
        "#5    agent Ada: Hello! I'm Ada, the virtual host of Trattoria Roma.",
        "      1. Book a table\n      2. Opening hours\n",
        "#8    user: I'd like to book a table for tomorrow at 7pm.",
        "[link] Our locations <https://example.com/locations> (View locations)",
        "#24   live agent Sarah: Hi, I'm Sarah from Reservations.",
        "[image] Confirmation R-2024-0212 <https://example.com/confirm.png> (Open image)",
        "Notices:\n  [warning] Our system is experiencing high load.",
        'Queue: Reservations, position 1, about 45 s, "You\'re next!"',
        "Phase: ended",
        "End reason: REASON_NATURAL_END",
        "Cursor: 30 (30 events)",
    ):
        assert expected in out
    assert out.count("Nous serons quatre.") == 1
    # a multi-line message keeps its lines, indented
    assert "Une table pour quatre demain à 19h.\n      Voici votre confirmation." in out


def test_the_sample_exercises_what_it_claims() -> None:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    values = [json.loads(line) for line in lines]
    frames = [v for v in values if "type" in v]
    kinds = {f["type"] for f in frames}
    assert {
        "EVENT_TYPE_EVENT_BATCH",
        "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK",
        "EVENT_TYPE_HANDOFF_QUEUE_STATUS",
        "EVENT_TYPE_LIVE_AGENT_JOINED",
        "EVENT_TYPE_LANGUAGE_CHANGED",
        "EVENT_TYPE_SESSION_END",
        "EVENT_TYPE_HEARTBEAT",
    } <= kinds
    result = replay.replay_lines(lines)
    assert result.problems == ()
    assert result.skipped == len(values) - len(frames)
    assert result.frames == len(frames)
    assert result.script is None
    # replay overlap and repeated frames are dropped as duplicates
    assert result.conversation.duplicates_dropped >= 4


def test_any_line_order_of_the_sample_gives_the_same_document() -> None:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    reference = to_json(replay.replay_lines(lines).conversation)
    assert to_json(replay.replay_lines(lines[::-1]).conversation) == reference
    middle = len(lines) // 2
    assert to_json(replay.replay_lines(lines[middle:] + lines[:middle]).conversation) == reference


def test_console_script_entry_point() -> None:
    script = Path(sys.executable).with_name("polyai-messaging")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "polyai_messaging.cli"]
    done = subprocess.run(
        [*command, "replay", str(SAMPLE), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["cursor"] == 30


# --- malformed input ----------------------------------------------------------------------------


def test_malformed_lines_are_reported_and_the_rest_folded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean, _ = replay_json(capsys, SAMPLE)
    lines = SAMPLE.read_bytes().split(b"\n")
    bad = [
        b"{not json",
        b'{"type":"EVENT_TYPE_POLY_AGENT_MESSAGE","payload":{"message_id":5}}',
        b'{"type":"EVENT_TYPE_EVENT_BATCH","payload":{"events":[7,'
        + lines[2][lines[2].index(b'[{"id"') + 1 : -3]
        + b"]}}",  # the first batch's SESSION_START again, after a non-object element
        b'"just a string"',
        b'{"type":"EVENT_TYPE_LANGUAGE_CHANGED","payload":{"language_code":"\xff"}}',
        b'{"comment":"an annotation, skipped"}',
        b"",
        b"   ",
    ]
    mixed = lines[:5] + bad + lines[5:]
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"\n".join(mixed))
    document, err = replay_json(capsys, path)
    assert document == clean
    assert err.splitlines() == [
        f"{path}:6: invalid JSON (Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1))",
        f"{path}:7: payload.message_id: expected string",
        f"{path}:8: payload.events[0]: expected a JSON object",
        f"{path}:9: expected a JSON object",
        f"{path}:10: not UTF-8 text (byte 66)",
    ]


def test_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.jsonl"
    status, out, err = run_cli(capsys, "replay", str(missing))
    assert status == 2
    assert out == ""
    assert err == f"polyai-messaging replay: cannot read {missing}: No such file or directory\n"


def test_a_directory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_cli(capsys, "replay", str(tmp_path), "--json")
    assert status == 2
    assert f"cannot read {tmp_path}" in err


def test_an_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    document, err = replay_json(capsys, path)
    assert err == ""
    assert document["phase"] == "connecting"
    assert (document["cursor"], document["transcript"], document["capabilities"]) == (0, [], None)
    status, out, _ = run_cli(capsys, "replay", str(path))
    assert status == 0
    assert "(no messages)" in out


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(SAMPLE.read_bytes())))
    status, out, _ = run_cli(capsys, "replay", "-", "--json")
    assert status == 0
    assert json.loads(out)["end_reason"] == "REASON_NATURAL_END"


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_cli(capsys)
    assert status == 2
    assert "replay" in err


def test_replay_needs_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["replay"])
    assert info.value.code == 2
    assert "FILE" in capsys.readouterr().err


def test_a_scripted_conversation_adds_the_driver_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    script = [json.dumps({"scenario": "sample", "streaming": True}), *lines]
    path = tmp_path / "script.jsonl"
    path.write_text("\n".join(script), encoding="utf-8")
    document, _ = replay_json(capsys, path)
    assert set(document) > KEYS
    assert {"sent", "mismatches", "delivery"} <= set(document)
    assert document["cursor"] == 30


def test_a_malformed_script_line_is_reported_not_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "script.jsonl"
    path.write_text(
        "\n".join(
            [
                '{"scenario":"broken"}',
                '{"type":"EVENT_TYPE_EVENT_BATCH","payload":{"events":[{"id":"a","sequence":1,'
                '"type":"EVENT_TYPE_SESSION_START","payload":{}}]}}',
                '{"client_sends":5}',
            ]
        ),
        encoding="utf-8",
    )
    status, out, err = run_cli(capsys, "replay", str(path), "--json")
    assert status == 0
    assert err == f"{path}:3: client_sends: expected object\n"
    assert json.loads(out)["cursor"] == 1


# --- rendering ----------------------------------------------------------------------------------


def fold(*frames: dict[str, Any]) -> Conversation:
    return reducer.fold(wire.decode_object(frame) for frame in frames)


def test_json_of_partial_streams_gaps_anomalies_and_client_handoff() -> None:
    conversation = fold(
        {
            "type": "EVENT_TYPE_SESSION_START",
            "id": "a",
            "sequence": 1,
            "payload": {"capabilities": {"streaming": True, "context_id": "ctx"}},
        },
        {
            "type": "EVENT_TYPE_HANDOFF_ACCEPTED",
            "id": "b",
            "sequence": 2,
        },
        {
            "type": "EVENT_TYPE_CLIENT_HANDOFF_REQUIRED",
            "id": "c",
            "sequence": 3,
            "payload": {"reason": "COMPLEX_QUERY", "queue_name": "Support Queue"},
        },
        {
            "type": "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK",
            "id": "d",
            "sequence": 6,
            "payload": {"message_id": "m9", "text": "Partial ", "chunk_index": 1},
        },
        {
            "type": "EVENT_TYPE_HANDOFF_QUEUE_STATUS",
            "id": "e",
            "sequence": 7,
            "payload": {"position": 4},
        },
    )
    document = to_json(conversation)
    assert set(document) == KEYS
    assert document["capabilities"] == {
        "streaming": True,
        "max_message_size_bytes": None,
        "max_reconnect_attempts": None,
        "heartbeat_interval_seconds": None,
        "context_id": "ctx",
    }
    assert document["gaps"] == [[4, 5]]
    assert document["streams"] == [{"message_id": "m9", "text": "Partial "}]
    assert document["transcript"][0]["text"] == "Partial "
    assert document["anomalies"] == [
        {"sequence": 2, "event": "EVENT_TYPE_HANDOFF_ACCEPTED", "phase": "connecting"},
        {"sequence": 3, "event": "EVENT_TYPE_CLIENT_HANDOFF_REQUIRED", "phase": "queued"},
    ]
    assert document["client_handoff"] == {"reason": "COMPLEX_QUERY", "queue_name": "Support Queue"}
    assert document["queue"]["position_in_queue"] == 4
    assert document["agent"] is None
    assert document["live_agent"] is None
    json.dumps(document)  # JSON-ready

    text = render_text(conversation)
    assert "#6    agent: Partial  […]" in text
    assert "(streaming, incomplete)" in text
    assert "Client handoff required: COMPLEX_QUERY -> Support Queue" in text
    assert "missing 4-5" in text
    assert "Anomaly: EVENT_TYPE_HANDOFF_ACCEPTED at sequence 2 while connecting" in text


def test_text_of_system_messages_shows_level_and_hint() -> None:
    conversation = fold(
        {
            "type": "EVENT_TYPE_SYSTEM_MESSAGE",
            "id": "s",
            "sequence": 4,
            "payload": {"message": "Error: Conversation not found"},
        }
    )
    text = render_text(conversation)
    assert "#4    system error: Error: Conversation not found" in text
    assert "(hint: rejoin)" in text
    assert to_json(conversation)["transcript"][0]["role"] == "system"
