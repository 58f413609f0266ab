"""Commands are valid frames by construction: their text always encodes as UTF-8.

Python strings may hold surrogate code points (U+D800 to U+DFFF), which UTF-8 cannot encode;
``json.loads`` yields them for a lone ``\\ud800`` escape in a server frame, so text an app got
from the server can carry one. A command refuses such text when it is built, with the library's
own error, and :func:`replace_lone_surrogates` repairs it.
"""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polyai_messaging.core import LocalProtocolError, replace_lone_surrogates
from polyai_messaging.core import _commands as commands
from polyai_messaging.core import _wire as wire

# Surrogates are drawn often: hypothesis leaves them out of text by default.
any_character = st.characters() | st.characters(categories=["Cs"])
any_text = st.text(any_character, max_size=12)


def has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(character) <= 0xDFFF for character in text)


@given(
    text=any_text,
    client_event_id=st.none() | any_text,
    custom=st.dictionaries(any_text, any_text, max_size=2),
)
def test_a_user_message_is_refused_or_encodes(
    text: str, client_event_id: str | None, custom: dict[str, str]
) -> None:
    strings = [text, client_event_id or "", *custom, *custom.values()]
    try:
        command = commands.UserMessage(text=text, client_event_id=client_event_id, custom=custom)
    except LocalProtocolError:
        assert any(has_surrogate(s) for s in strings)
        return
    assert not any(has_surrogate(s) for s in strings)
    encoded = wire.encode(command)
    assert wire.encoded_size(command) == len(encoded.encode("utf-8"))
    assert json.loads(encoded)["payload"]["text"] == text


@given(custom=st.dictionaries(any_text, any_text, max_size=2))
def test_every_command_checks_its_custom_map(custom: dict[str, str]) -> None:
    refused = any(has_surrogate(s) for pair in custom.items() for s in pair)
    for build in (
        commands.Heartbeat,
        commands.RequestPolyAgentJoin,
        commands.UserEndSession,
        lambda **kw: commands.UserTyping(state="TYPING_STATE_STARTED", **kw),
    ):
        try:
            command = build(custom=custom)
        except LocalProtocolError:
            assert refused
            continue
        assert not refused
        assert wire.encoded_size(command) == len(wire.encode(command).encode("utf-8"))


@pytest.mark.parametrize(
    ("arguments", "where"),
    [
        ({"text": "caf\udce9"}, "text"),
        ({"text": "ok", "client_event_id": "\ud800"}, "client_event_id"),
        ({"text": "ok", "custom": {"k": "\udfff"}}, "metadata.custom"),
        ({"text": "ok", "custom": {"\ud83d": "v"}}, "metadata.custom"),
    ],
)
def test_the_refusal_says_which_string_and_why(arguments: dict[str, Any], where: str) -> None:
    with pytest.raises(LocalProtocolError, match="surrogate") as info:
        commands.UserMessage(**arguments)
    assert where in str(info.value)


@pytest.mark.parametrize("custom", [{"n": 1}, {"n": None}, {1: "v"}, {"n": ["v"]}])
def test_a_non_string_custom_entry_is_a_local_protocol_error(custom: dict[Any, Any]) -> None:
    with pytest.raises(LocalProtocolError, match=r"metadata\.custom"):
        commands.UserMessage(text="x", custom=custom)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("plain é 日本 🙂", "plain é 日本 🙂"),
        ("\ud800", "\ufffd"),
        ("a\udc00b", "a\ufffdb"),
        ("\ud83d\ude42", "🙂"),  # a high+low pair is the character it encodes
        ("\ude42\ud83d", "\ufffd\ufffd"),  # a low then a high is two lone surrogates
        ("\ud83d\ud83d\ude42", "\ufffd🙂"),
        ("x\ud83d", "x\ufffd"),
    ],
)
def test_replace_lone_surrogates(text: str, expected: str) -> None:
    assert replace_lone_surrogates(text) == expected


@given(any_text)
def test_replaced_text_always_makes_a_valid_command(text: str) -> None:
    repaired = replace_lone_surrogates(text)
    assert not has_surrogate(repaired)
    if not has_surrogate(text):
        assert repaired == text
    wire.encode(commands.UserMessage(text=repaired))


@given(st.text(max_size=12))
def test_text_split_into_utf16_code_units_is_joined_back(text: str) -> None:
    units = "".join(
        chr(int.from_bytes(text.encode("utf-16-be")[i : i + 2], "big"))
        for i in range(0, len(text.encode("utf-16-be")), 2)
    )
    assert replace_lone_surrogates(units) == text


@given(text=any_text, custom=st.dictionaries(any_text, any_text, max_size=2))
def test_a_command_encodes_as_compact_json_with_text_unescaped(
    text: str, custom: dict[str, str]
) -> None:
    try:
        command = commands.UserMessage(text=text, client_event_id="c-1", custom=custom)
    except LocalProtocolError:
        return
    frame = {
        "type": "EVENT_TYPE_USER_MESSAGE",
        "payload": {"text": text},
        "metadata": {"custom": {**custom, "client_event_id": "c-1"}},
    }
    assert wire.encode(command) == json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def test_encoding_builds_no_json_encoder_per_command(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[object] = []
    original = json.JSONEncoder.__init__

    def counting(self: json.JSONEncoder, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(json.JSONEncoder, "__init__", counting)
    for n in range(3):
        wire.encode(commands.UserMessage(text=f"message {n}", client_event_id=f"c-{n}"))
    assert built == []


def _framed(command: commands.UserMessage) -> str:
    """A user message encoded through its frame, as every other command is."""
    custom = dict(command.custom)
    if command.client_event_id is not None:
        custom["client_event_id"] = command.client_event_id
    frame: dict[str, Any] = {"type": command.TYPE, "payload": {"text": command.text}}
    if custom:
        frame["metadata"] = {"custom": custom}
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


@given(
    text=any_text,
    client_event_id=st.none() | any_text,
    custom=st.dictionaries(st.sampled_from(["client_event_id", "k", "é"]) | any_text, any_text),
)
def test_a_user_message_is_written_as_its_frame_would_be_encoded(
    text: str, client_event_id: str | None, custom: dict[str, str]
) -> None:
    """The user message is written out directly; it must be exactly its frame's encoding (a
    ``client_event_id`` in ``custom`` included: the command's own replaces it in its place)."""
    try:
        command = commands.UserMessage(text=text, client_event_id=client_event_id, custom=custom)
    except LocalProtocolError:
        return
    assert wire.encode(command) == _framed(command)


def _outcome(make: Any) -> str:
    try:
        frame: str = make()
    except LocalProtocolError as error:
        return f"refused: {error}"
    return frame


any_value = any_text | st.integers() | st.none()


@given(
    text=any_value,
    client_event_id=any_value,
    custom=st.dictionaries(st.sampled_from(["client_event_id", "k"]) | any_value, any_value).map(
        lambda pairs: pairs if len(pairs) % 2 else MappingProxyType(pairs)
    )
    | st.sampled_from([[], "", None]),
)
def test_a_user_message_frame_is_written_as_the_command_would_be_encoded(
    text: Any, client_event_id: Any, custom: Any
) -> None:
    """The driver writes a user message's frame without building the command: the same frame,
    or the same refusal, as the command and ``encode`` give (strings, other values, maps)."""
    expected = _outcome(
        lambda: wire.encode(
            commands.UserMessage(text=text, client_event_id=client_event_id, custom=custom)
        )
    )
    assert _outcome(lambda: wire.encode_user_message(text, client_event_id, custom)) == expected


@given(text=any_text, custom=st.dictionaries(any_text, any_text, max_size=3))
def test_a_command_accepts_exactly_the_strings_utf8_can_encode(
    text: str, custom: dict[str, str]
) -> None:
    """The checks' shortcuts (ASCII text, a dict, an empty map) refuse and accept as the full
    check does: a string is refused exactly when it holds a surrogate."""
    refused = any(has_surrogate(s) for s in (text, *custom, *custom.values()))
    for mapping in (custom, MappingProxyType(custom)):
        try:
            command = commands.UserMessage(text=text, custom=mapping)
        except LocalProtocolError:
            assert refused
            continue
        assert not refused
        assert command.custom == custom
        assert type(command.custom) is dict
        assert command.custom is not custom
