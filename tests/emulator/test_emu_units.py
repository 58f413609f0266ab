"""Pure parts of the emulator: cursor, frames, batches, faults, host matching, rate limits."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polyai_messaging.emulator import FAULT_HELP, EmulatorConfig, Faults, parse_faults
from polyai_messaging.emulator import _faults as faults_module
from polyai_messaging.emulator._auth import host_matches, normalise_host
from polyai_messaging.emulator._fault_state import FaultState
from polyai_messaging.emulator._ratelimit import RateLimiter
from polyai_messaging.emulator._wire import (
    ClientFrame,
    FrameError,
    batch_frames,
    encode,
    parse_client_frame,
    parse_cursor,
    utf8_len,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, 0),
        ("0", 0),
        ("12", 12),
        ("seq:12", 12),
        ("SEQ:7", 7),
        (" 5 ", 5),
        ("seq:", 0),
        ("-3", 0),
        ("abc", 0),
        ("1.5", 0),
        ("²", 0),
        ("", 0),
    ],
)
def test_parse_cursor(raw: str | None, expected: int) -> None:
    assert parse_cursor(raw) == expected


@given(st.integers(min_value=0, max_value=10**12))
def test_parse_cursor_round_trips_both_syntaxes(value: int) -> None:
    assert parse_cursor(str(value)) == value
    assert parse_cursor(f"seq:{value}") == value


INVALID = "Unknown event type or invalid message format"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "Unknown event type or invalid message format"),
        ("[1, 2]", "Unknown event type or invalid message format"),
        ('{"payload": {}}', "Unknown event type or invalid message format"),
        ('{"type": "EVENT_TYPE_NOPE", "payload": {}}', INVALID),
        (
            '{"type": "EVENT_TYPE_POLY_AGENT_MESSAGE", "payload": {}}',
            "Event type not allowed: EVENT_TYPE_POLY_AGENT_MESSAGE",
        ),
        (
            '{"type": "EVENT_TYPE_EVENT_BATCH", "payload": {}}',
            "Event type not allowed: EVENT_TYPE_EVENT_BATCH",
        ),
        ('{"type": "EVENT_TYPE_USER_MESSAGE", "payload": {}}', INVALID),
        ('{"type": "EVENT_TYPE_USER_MESSAGE", "payload": []}', INVALID),
        (
            '{"type": "EVENT_TYPE_USER_TYPING", "payload": {"state": "SOMETHING"}}',
            "Unknown event type or invalid message format",
        ),
    ],
)
def test_invalid_client_frames(text: str, message: str) -> None:
    result = parse_client_frame(text)
    assert isinstance(result, FrameError)
    assert result.message == message


def test_valid_client_frame_keeps_custom_metadata_only() -> None:
    frame = {
        "type": "EVENT_TYPE_USER_MESSAGE",
        "payload": {"text": "hi"},
        "metadata": {"custom": {"client_event_id": "abc"}, "other": 1},
    }
    result = parse_client_frame(json.dumps(frame))
    assert isinstance(result, ClientFrame)
    assert result.metadata == {"custom": {"client_event_id": "abc"}}
    assert result.payload == {"text": "hi"}


def test_missing_payload_reads_as_empty() -> None:
    result = parse_client_frame('{"type": "EVENT_TYPE_HEARTBEAT"}')
    assert isinstance(result, ClientFrame)
    assert result.payload == {}


def test_error_for_server_type_keeps_metadata() -> None:
    text = '{"type": "EVENT_TYPE_SESSION_END", "payload": {}, "metadata": {"custom": {"k": "v"}}}'
    result = parse_client_frame(text)
    assert isinstance(result, FrameError)
    assert result.metadata == {"custom": {"k": "v"}}


def test_empty_batch() -> None:
    (frame,) = batch_frames([], 131072)
    batch = json.loads(frame)
    assert batch["type"] == "EVENT_TYPE_EVENT_BATCH"
    assert batch["sequence"] is None
    assert batch["payload"] == {"events": []}


@given(
    st.lists(st.text(min_size=0, max_size=300), max_size=40),
    st.integers(min_value=600, max_value=4000),
)
def test_batches_respect_limit_and_order(texts: list[str], limit: int) -> None:
    events = [encode({"sequence": index, "text": text}) for index, text in enumerate(texts)]
    frames = batch_frames(events, limit)
    inner = [event for frame in frames for event in json.loads(frame)["payload"]["events"]]
    assert [event["sequence"] for event in inner] == list(range(len(texts)))
    for frame in frames:
        # Only a batch holding a single oversized event may exceed the limit.
        if utf8_len(frame) > limit:
            assert len(json.loads(frame)["payload"]["events"]) == 1


def test_reverse_each_reverses_within_batches() -> None:
    events = [encode({"n": n}) for n in range(5)]
    (frame,) = batch_frames(events, 131072, reverse_each=True)
    assert [event["n"] for event in json.loads(frame)["payload"]["events"]] == [4, 3, 2, 1, 0]


def test_parse_faults_full_example() -> None:
    faults = parse_faults(
        "drop-after=5,duplicate,overlap,reorder,delay=0.2,refuse=429:2,freeze-after=10"
    )
    assert faults == Faults(
        drop_after=5,
        duplicate=True,
        overlap=3,
        reorder=True,
        delay=0.2,
        refuse_status=429,
        refuse_count=2,
        freeze_after=10,
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", Faults()),
        ("none", Faults()),
        (" , ", Faults()),
        ("drop-after=3:1", Faults(drop_after=3, drop_count=1)),
        ("refuse=401", Faults(refuse_status=401, refuse_count=1)),
        ("overlap=5", Faults(overlap=5)),
        ("fail-token,fail-session=2", Faults(fail_token=1, fail_session=2)),
        ("Duplicate", Faults(duplicate=True)),
        ("close=4001", Faults(close_code=4001, close_count=1)),
        ("close=1000:3", Faults(close_code=1000, close_count=3)),
        ("close=3000:0", Faults(close_code=3000, close_count=0)),
        ("no-replay", Faults(no_replay=1)),
        ("no-replay=4", Faults(no_replay=4)),
    ],
)
def test_parse_faults_examples(spec: str, expected: Faults) -> None:
    assert parse_faults(spec) == expected


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("explode", "unknown fault 'explode'"),
        ("drop-after", "needs a value"),
        ("drop-after=x", "non-negative integer"),
        ("duplicate=1", "takes no value"),
        ("refuse=500", "refuse status must be one of 401, 404, 429"),
        ("delay=soon", "number of seconds"),
        ("delay=-1", "delay must be"),
        ("reorder,reorder", "more than once"),
        ("close", "needs a value"),
        ("close=x", "non-negative integer"),
        ("no-replay=some", "non-negative integer"),
    ],
)
def test_parse_faults_errors(spec: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_faults(spec)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_close_fault_refuses_codes_that_cannot_be_sent(code: int) -> None:
    with pytest.raises(ValueError, match=f"'close={code}:2'"):
        parse_faults(f"duplicate,close={code}:2")
    with pytest.raises(ValueError, match=str(code)):
        Faults(close_code=code, close_count=1)


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1007, 1011, 1014, 3000, 4001, 4999])
def test_close_fault_accepts_codes_that_may_be_sent(code: int) -> None:
    assert parse_faults(f"close={code}").close_code == code


def test_errors_name_the_offending_item() -> None:
    with pytest.raises(ValueError, match="'refuse=500'"):
        parse_faults("duplicate,refuse=500,overlap")


def test_every_fault_is_documented() -> None:
    names = {spelling.partition("=")[0].partition("[")[0] for spelling in FAULT_HELP}
    assert names == set(faults_module._KNOWN)
    assert faults_module.__doc__ is not None
    for spelling in FAULT_HELP:
        assert f"``{spelling}``" in faults_module.__doc__


faults_strategy = st.builds(
    Faults,
    drop_after=st.none() | st.integers(0, 50),
    drop_count=st.none() | st.integers(0, 5),
    freeze_after=st.none() | st.integers(0, 50),
    freeze_count=st.none() | st.integers(0, 5),
    duplicate=st.booleans(),
    overlap=st.integers(0, 10),
    reorder=st.booleans(),
    delay=st.floats(0, 5, allow_nan=False),
    refuse_status=st.none() | st.sampled_from([401, 404, 429]),
    refuse_count=st.integers(0, 5),
    fail_token=st.integers(0, 3),
    fail_session=st.integers(0, 3),
    close_code=st.none() | st.sampled_from([1000, 1011, 1014, 3000, 4001, 4999]),
    close_count=st.integers(0, 5),
    no_replay=st.integers(0, 3),
)


@given(faults_strategy)
def test_fault_spec_round_trip(faults: Faults) -> None:
    spec = faults.to_spec()
    reparsed = parse_faults(spec)
    # The counts only exist together with their threshold, status or code.
    expected = Faults(
        **{
            **faults.__dict__,
            "drop_count": faults.drop_count if faults.drop_after is not None else None,
            "freeze_count": faults.freeze_count if faults.freeze_after is not None else None,
            "refuse_count": faults.refuse_count if faults.refuse_status is not None else 0,
            "close_count": faults.close_count if faults.close_code is not None else 0,
        }
    )
    assert reparsed == expected


def test_fault_state_counters_reset_on_assignment() -> None:
    state = FaultState(parse_faults("refuse=404:1,drop-after=2:1"))
    assert state.take_refusal() == 404
    assert state.take_refusal() is None
    assert not state.take_drop(1)
    assert state.take_drop(2)
    assert not state.take_drop(5)
    generation = state.generation
    state.faults = parse_faults("refuse=404:1")
    assert state.generation == generation + 1
    assert state.take_refusal() == 404


def test_fault_state_counts_closes_and_missing_replays() -> None:
    state = FaultState(parse_faults("close=4001:2,no-replay=1"))
    assert [state.take_close() for _ in range(3)] == [4001, 4001, None]
    assert [state.take_no_replay() for _ in range(2)] == [True, False]
    state.faults = parse_faults("close=3000")
    assert [state.take_close(), state.take_close()] == [3000, None]
    assert not state.take_no_replay()


def test_faults_active() -> None:
    assert not Faults().active
    assert Faults(duplicate=True).active


@pytest.mark.parametrize(
    ("registered", "presented", "ok"),
    [
        ("yourcompany.com", "yourcompany.com", True),
        ("yourcompany.com", "https://app.yourcompany.com", True),
        ("yourcompany.com", "http://a.b.yourcompany.com:8080/path?q=1", True),
        ("https://www.yourcompany.com", "www.yourcompany.com", True),
        ("https://www.yourcompany.com/", "https://www.yourcompany.com:443", True),
        ("yourcompany.com", "notyourcompany.com", False),
        ("yourcompany.com", "yourcompany.com.evil.net", False),
        ("www.yourcompany.com", "yourcompany.com", False),
        ("yourcompany.com", "evilyourcompany.com", False),
        ("ai.example.com", "ai.example.com", True),
        ("ai.example.com", "chat.ai.example.com", True),
        ("ai.example.com", "https://chat.ai.example.com:8443/x", True),
        ("ai.example.com", "example.com", False),
        ("io.github.com", "api.io.github.com", True),
        ("com.yourcompany.app", "com.yourcompany.app", True),
        ("com.yourcompany.app", "COM.YourCompany.App", True),
        ("com.yourcompany.app", "com.yourcompany.app.evil", False),
        ("com.yourcompany.app", "com.yourcompany", False),
        ("com.yourcompany.app", "com.yourcompany.application", False),
        ("localhost", "http://localhost:3000", True),
        ("yourcompany.com", "", False),
        ("", "yourcompany.com", False),
    ],
)
def test_host_matching(registered: str, presented: str, ok: bool) -> None:
    assert host_matches(registered, presented) is ok


# Top-level-domain-like labels are frequent, as they are what a heuristic would look at.
label = st.sampled_from(["com", "ai", "io", "org", "app", "localhost"]) | st.from_regex(
    r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True
)
labels = st.lists(label, max_size=4)


@given(
    labels.filter(bool),
    labels,
    labels,
    st.booleans(),
    st.sampled_from(["", "https://", "http://"]),
    st.booleans(),
)
def test_host_matches_itself_and_labels_added_on_the_left_only(
    registered: list[str],
    prefix: list[str],
    other: list[str],
    ends_with_registered: bool,
    scheme: str,
    port: bool,
) -> None:
    """Accepted exactly when the presented labels end with the registered ones, whatever the
    labels look like (so no label such as ``com`` or ``ai`` changes the rule)."""
    presented = [*prefix, *(registered if ends_with_registered else other)]
    url = scheme + ".".join(presented) + (":8443/x" if port else "")
    expected = len(presented) >= len(registered) and presented[-len(registered) :] == registered
    assert host_matches(".".join(registered), url) is expected


@given(labels.filter(bool), labels.filter(bool), st.from_regex(r"[a-z0-9-]{1,8}", fullmatch=True))
def test_host_matching_compares_whole_labels(
    registered: list[str], prefix: list[str], glued: str
) -> None:
    """Labels added on the left are accepted, labels added on the right or text glued onto the
    first label are not."""
    name = ".".join(registered)
    assert host_matches(name, ".".join([*prefix, *registered]))
    extended = [*registered, *prefix]
    if extended[-len(registered) :] != registered:  # else it is also a left extension
        assert not host_matches(name, ".".join(extended))
    assert not host_matches(name, glued + name)


def test_normalise_host_ipv6() -> None:
    assert normalise_host("http://[::1]:8080/x") == "::1"


def test_rate_limiter() -> None:
    limiter = RateLimiter(2.0)
    assert limiter.acquire("k", 0.0) == 0.0
    assert limiter.acquire("k", 0.0) == 0.0
    assert limiter.acquire("k", 0.0) == pytest.approx(0.5)
    assert limiter.acquire("other", 0.0) == 0.0
    assert limiter.acquire("k", 0.5) == 0.0


def test_config_validation_and_fast() -> None:
    with pytest.raises(ValueError, match="idle_timeout_seconds"):
        EmulatorConfig(idle_timeout_seconds=0)
    with pytest.raises(ValueError, match="reply_delay_seconds"):
        EmulatorConfig(reply_delay_seconds=-1)
    fast = EmulatorConfig.fast(idle_timeout_seconds=1.0)
    assert fast.reply_delay_seconds == 0
    assert fast.idle_timeout_seconds == 1.0
    assert fast.replace(max_frame_bytes=1000).max_frame_bytes == 1000
    with pytest.raises(TypeError):
        fast.connectors["x"] = "y"  # type: ignore[index]
