"""The generated hot-path decoders agree with cattrs, the reference, on every frame.

:mod:`polyai_messaging.core._decoders` replaces cattrs' structure functions on the common path for
speed. This differential test draws frames of every known type whose fields are each valid,
absent, null or of a wrong JSON type (at any depth), decodes them both ways, and requires the
same event or a rejection from both. The reference is the detailed cattrs converter over the
tagged union, with the envelope rules that are not type checks (payload absent means ``{}``, the
sequence range) applied as before the generated decoders existed.
"""

from __future__ import annotations

import json
import re
import sys
import typing
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import NoneType, UnionType
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from polyai_messaging.core import (
    KNOWN_TYPES,
    EventBatch,
    RemoteProtocolError,
    ServerEvent,
    UnknownEvent,
)
from polyai_messaging.core import _decoders as decoders
from polyai_messaging.core import _wire as wire

REJECTED = "rejected"

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
junk = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
timestamps = st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat) | st.sampled_from(
    ["2024-02-12T12:00:00Z", "2024-02-12T12:00:00.123456789+01:00", "2024-02-12", "noon"]
)


def valid(tp: Any) -> st.SearchStrategy[Any]:
    """JSON that the type accepts (so that deep fields get exercised too)."""
    if tp is str:
        return st.text(max_size=8)
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(min_value=-(2**40), max_value=2**40)
    args = typing.get_args(tp)
    if isinstance(tp, UnionType):
        return st.one_of([st.none() if arg is NoneType else valid(arg) for arg in args])
    if typing.get_origin(tp) is tuple:
        return st.lists(value(args[0]), max_size=3)  # an element may be junk too
    if typing.get_origin(tp) is Mapping:
        return st.dictionaries(st.text(max_size=4), junk, max_size=3)
    if attrs.has(tp):
        hints = typing.get_type_hints(tp)
        return st.fixed_dictionaries(
            {},
            optional={field.name: value(hints[field.name]) for field in attrs.fields(tp)},
        )
    raise AssertionError(f"no strategy for {tp}")


def value(tp: Any) -> st.SearchStrategy[Any]:
    """Mostly valid JSON for the type, sometimes any JSON at all."""
    return st.one_of(valid(tp), valid(tp), junk)


KINDS = sorted(kind for kind, cls in KNOWN_TYPES.items() if cls not in (EventBatch, UnknownEvent))


@st.composite
def frames(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(KINDS))
    payload_type = typing.get_type_hints(KNOWN_TYPES[kind])["payload"]
    envelope = st.fixed_dictionaries(
        {"type": st.just(kind)},
        optional={
            "id": st.text(max_size=8) | junk,
            "sequence": st.integers(min_value=-3, max_value=wire.MAX_SEQUENCE + 3) | junk,
            "timestamp": timestamps | junk,
            "metadata": st.fixed_dictionaries({"custom": junk}) | junk,
            "payload": value(payload_type),
            "rejected": junk,  # not a wire field: ignored like any unknown key
        },
    )
    return draw(envelope)


Decoded = tuple[ServerEvent, list[str]] | str
"""An event and the places (``payload.attachments[0]``) of the elements it dropped, or REJECTED."""


def accepts(value: Any, tp: Any) -> bool:
    try:
        wire._converter.structure(value, tp)
    except Exception:
        return False
    return True


def element_arrays(kind: str) -> list[tuple[str, Any]]:
    """The payload fields of ``kind`` that are arrays of objects, with the objects' class."""
    payload_type = typing.get_type_hints(KNOWN_TYPES[kind])["payload"]
    hints = typing.get_type_hints(payload_type)
    return [
        (field.name, typing.get_args(hints[field.name])[0])
        for field in attrs.fields(payload_type)
        if typing.get_origin(hints[field.name]) is tuple
        and attrs.has(typing.get_args(hints[field.name])[0])
    ]


def without_bad_elements(payload: dict[str, Any], kind: str) -> tuple[dict[str, Any], list[str]]:
    """Arrays of objects are lenient: the elements cattrs refuses on their own are dropped."""
    kept = dict(payload)
    dropped = []
    for name, item_type in element_arrays(kind):
        items = payload.get(name)
        if type(items) is list:
            kept[name] = [item for item in items if accepts(item, item_type)]
            dropped += [
                f"payload.{name}[{index}]"
                for index, item in enumerate(items)
                if not accepts(item, item_type)
            ]
    return kept, dropped


def reference(frame: dict[str, Any]) -> Decoded:
    payload = frame.get("payload")
    normalized = {**frame, "payload": {} if payload is None else payload}
    dropped: list[str] = []
    if type(normalized["payload"]) is dict:
        normalized["payload"], dropped = without_bad_elements(normalized["payload"], frame["type"])
    try:
        event: ServerEvent = wire._converter.structure(normalized, ServerEvent)  # type: ignore[arg-type]
    except Exception:
        return REJECTED
    sequence = event.sequence
    if sequence is not None and not 0 <= sequence <= wire.MAX_SEQUENCE:
        return REJECTED
    return event, dropped


def generated(frame: dict[str, Any]) -> Decoded:
    try:
        event = wire.decode_object(frame)
    except RemoteProtocolError as exc:
        # A rejection is always explained: the detailed converter found what the fast path did.
        return REJECTED if exc.reason != "could not decode frame" else "unexplained"
    # The path names the element, and maybe the field within it that is at fault.
    return event, [re.sub(r"(\]).*", r"\1", error.path) for error in event.rejected]


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_generated_decoders_agree_with_cattrs(frame: dict[str, Any]) -> None:
    assert generated(frame) == reference(frame)


MESSAGE_KINDS = [kind for kind in KINDS if element_arrays(kind)]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_messages_with_bad_elements_agree_with_cattrs(data: st.DataObject) -> None:
    """Frames of the types with arrays of objects, whose elements are often malformed."""
    kind = data.draw(st.sampled_from(MESSAGE_KINDS))
    payload_type = typing.get_type_hints(KNOWN_TYPES[kind])["payload"]
    hints = typing.get_type_hints(payload_type)
    # Required fields are mostly valid, so that the elements are what decides.
    payload = {
        field.name: data.draw(st.one_of(*[valid(hints[field.name])] * 4, junk))
        for field in attrs.fields(payload_type)
        if field.default is attrs.NOTHING
    }
    for name, item_type in element_arrays(kind):
        payload[name] = data.draw(st.lists(value(item_type) | junk, max_size=4))
    frame = {"type": kind, "payload": payload}
    expected = reference(frame)
    event(f"dropped elements: {expected != REJECTED and bool(expected[1])}")
    assert generated(frame) == expected


def test_the_types_with_arrays_of_objects_are_the_messages() -> None:
    assert sorted(MESSAGE_KINDS) == [
        "EVENT_TYPE_LIVE_AGENT_MESSAGE",
        "EVENT_TYPE_POLY_AGENT_MESSAGE",
        "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK",
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_every_type_decodes_a_minimal_valid_frame_the_same_way(kind: str) -> None:
    frame = {"type": kind, "id": "e1", "sequence": 3, "timestamp": "2024-02-12T12:00:00Z"}
    payload_type = typing.get_type_hints(KNOWN_TYPES[kind])["payload"]
    hints = typing.get_type_hints(payload_type)
    required = {
        field.name: {str: "x", int: 1}[hints[field.name]]
        for field in attrs.fields(payload_type)
        if field.default is attrs.NOTHING
    }
    frame["payload"] = required
    event = wire.decode_object(frame)
    assert type(event) is KNOWN_TYPES[kind]
    assert (event, []) == reference(frame)
    assert event.rejected == ()
    assert event.timestamp == datetime(2024, 2, 12, 12, tzinfo=UTC) + timedelta()


def compile_plain(cls: type) -> decoders.EventDecoder:
    """A decoder whose timestamps and metadata are taken as they are."""
    return decoders.compile_event_decoder(
        cls,
        hook_for=wire._converter.get_structure_hook,
        custom=frozenset(),
        timestamp=lambda value: value,
        metadata=lambda value: value,
        max_sequence=wire.MAX_SEQUENCE,
    )


def test_a_class_that_does_not_have_the_envelope_shape_is_refused() -> None:
    @attrs.frozen(slots=False)
    class NotAnEvent:
        payload: int

    with pytest.raises(TypeError, match="exactly the fields"):
        compile_plain(NotAnEvent)


@attrs.frozen
class Positive:
    n: int = attrs.field(validator=attrs.validators.gt(0))


@attrs.frozen(kw_only=True)
class Checked:
    id: str | None = None
    sequence: int | None = None
    timestamp: datetime | None = None
    metadata: Any = None
    payload: Positive
    rejected: Any = ()


def test_an_event_class_without_slots_is_refused() -> None:
    @attrs.frozen(kw_only=True, slots=False)
    class Unslotted:
        id: str | None = None
        sequence: int | None = None
        timestamp: datetime | None = None
        metadata: Any = None
        payload: Positive
        rejected: Any = ()

    # The generated decoder fills an event's slots directly.
    with pytest.raises(TypeError, match="exactly the fields"):
        compile_plain(Unslotted)
    assert compile_plain(Checked)({"payload": {"n": 3}}).rejected == ()


def test_classes_with_validators_are_built_through_their_init() -> None:
    decode = compile_plain(Checked)
    assert decode({"payload": {"n": 2}}).payload == Positive(2)
    with pytest.raises(ValueError, match="must be > 0"):
        decode({"payload": {"n": 0}})


around = st.sampled_from(["", " ", "\n", "\t\r", "\x0b", "\x0c", "\u00a0", "\ufeff", "x", "{}"])
json_texts = st.one_of(
    st.builds(
        lambda before, value, after: before + json.dumps(value) + after, around, junk, around
    ),
    st.text(max_size=12),
)


@given(json_texts)
def test_frames_are_parsed_exactly_as_json_loads_parses_them(text: str) -> None:
    try:
        expected: Any = ("ok", json.loads(text))
    except ValueError as exc:
        expected = ("error", type(exc))
    try:
        actual: Any = ("ok", wire._parse(text))
    except ValueError as exc:
        actual = ("error", type(exc))
    assert actual == expected


@pytest.mark.parametrize(
    "text", ['{"a":"r\u00e9servation \U0001f642"}', '{"a":"\ud800"}', '"\\ud800"', '{"a":1}']
)
def test_parsing_leaves_the_frame_as_it_was(text: str) -> None:
    # Parsing a str may cache its UTF-8 form inside it, as large as the frame and kept for as
    # long as the caller keeps the frame (a log, a test's list of frames).
    frame = "".join(list(text))  # a fresh str: nothing cached yet
    size = sys.getsizeof(frame)
    assert wire._parse(frame) == json.loads(text)
    assert sys.getsizeof(frame) == size


@pytest.mark.parametrize("literal", ["18446744073709551616", "-9223372036854775809"])
def test_an_integer_beyond_64_bits_is_the_one_parse_difference_and_no_field_takes_it(
    literal: str,
) -> None:
    """orjson reads such a literal as a float (json.loads as an int): the documented
    difference. No field of a frame may hold one, so the frame is refused either way."""
    assert wire._parse(literal) == float(literal)
    assert type(wire._parse(literal)) is float
    frame = f'{{"type":"EVENT_TYPE_POLY_AGENT_THINKING","id":"a","sequence":{literal}}}'
    with pytest.raises(RemoteProtocolError, match="sequence"):
        wire.decode(frame)
    with pytest.raises(RemoteProtocolError, match="sequence"):
        wire.decode_object(json.loads(frame))
