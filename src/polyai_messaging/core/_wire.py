"""Frames to events and commands to frames.

:func:`decode` is the single inbound entry point: any text either becomes a
:data:`~polyai_messaging.core.ServerEvent` or raises
:class:`~polyai_messaging.core.RemoteProtocolError` with a readable path; it never raises
anything else. :func:`encode` produces only the five client types, compact JSON.

Decoding runs a generated straight-line decoder per type first (:mod:`._decoders`); only when it
fails is the frame structured again by cattrs with detailed validation, to name the offending
path. Bad input is rare, so the common path pays nothing for good error messages. cattrs also
declares the tagged union and structures what the generated decoders do not inline.

Arrays of objects in a payload (attachments, suggestions, call actions) are lenient: when their
malformed elements are a frame's only fault, the slow path drops them and returns the event with
each one reported in its ``rejected``, as a batch reports its malformed elements.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from json.encoder import encode_basestring as _quoted
from typing import Any, Final

import attrs
import cattrs
from cattrs.gen import override
from cattrs.strategies import configure_tagged_union
from orjson import loads as _orjson_loads

from ._commands import ClientCommand, UserMessage, UserTyping, _encodable, _string_map
from ._decoders import (
    EventDecoder,
    compile_envelope_decoder,
    compile_event_decoder,
    tuple_item,
)
from ._errors import RemoteProtocolError
from ._events import (
    KNOWN_TYPES,
    Capabilities,
    EventBatch,
    Metadata,
    ServerEvent,
    UnknownEvent,
)
from ._values import (
    list_hook,
    read_bool,
    read_capabilities,
    read_int,
    read_metadata,
    read_optional_int,
    read_optional_str,
    read_optional_timestamp,
    read_raw_mapping,
    read_str,
    read_timestamp,
)

__all__ = ["MAX_BATCH_DEPTH", "MAX_SEQUENCE", "decode", "decode_object", "encode", "encoded_size"]

MAX_SEQUENCE = 2**53 - 1
"""Largest accepted ``sequence``: the exact-integer range of JSON numbers (I-JSON, RFC 7493).

Beyond it a sequence cannot be ranked exactly (the reducer ranks events with floats), and a
huge one would overflow; a negative one cannot be a resume cursor (:ref:`protocol-websocket`).
"""

MAX_BATCH_DEPTH = 8
"""Deepest accepted nesting of batches (a batch frame is depth 1, a batch inside it 2, ...).

Servers do not nest batches, but nesting is tolerated by flattening it. A batch deeper than this
is refused as one bad element of the batch holding it, like any other bad element: flattening
without a bound would recurse once per level.
"""


def _payload_object(value: Mapping[str, Any]) -> dict[str, Any]:
    """The frame's payload: absent or null means ``{}``; anything else must be an object."""
    payload = value.get("payload")
    if payload is None:
        return {}
    if type(payload) is not dict:
        raise RemoteProtocolError("expected object", path="payload")
    return payload


def _unknown(value: Any, _: type) -> UnknownEvent:
    return UnknownEvent(type=value["type"], payload=_payload_object(value), **_envelope(value))


def _envelope_timestamp(value: Any) -> datetime | None:
    try:
        return read_optional_timestamp(value, datetime)
    except (TypeError, ValueError) as exc:
        raise RemoteProtocolError(str(exc), path="timestamp") from None


def _envelope_metadata(value: Any) -> Metadata:
    try:
        return read_metadata(value, Metadata)
    except TypeError as exc:
        raise RemoteProtocolError(str(exc), path="metadata") from None


_envelope = compile_envelope_decoder(
    timestamp=_envelope_timestamp, metadata=_envelope_metadata, max_sequence=MAX_SEQUENCE
)
"""The envelope fields, checked (for the hand-written batch and unknown hooks)."""


def _batch(value: Any, depth: int) -> EventBatch:
    """A batch frame nested ``depth`` deep (the outermost is 1), its inner batches flattened."""
    # Only an absent/null payload or events list means "empty"; ``[]``, ``0`` or ``""`` in
    # their place are malformed, not empty.
    events_raw = _payload_object(value).get("events")
    if events_raw is None:
        events_raw = []
    elif type(events_raw) is not list:
        raise RemoteProtocolError("expected list", path="payload.events")
    events: list[ServerEvent] = []
    rejected: list[RemoteProtocolError] = []
    for index, item in enumerate(events_raw):
        try:
            # decode_object's common case, inlined (replays are long): a known type's decoder.
            kind = item.get("type") if type(item) is dict and "payload" in item else None
            decoder = _DECODERS.get(kind) if type(kind) is str else None
            if decoder is None:
                event = _inner_event(_reshape_inner(item), depth)
            else:
                try:
                    event = decoder(item)
                except RemoteProtocolError:
                    raise
                except Exception:
                    event = _without_bad_elements(item, decoder)
        except RemoteProtocolError as exc:
            rejected.append(_within(f"payload.events[{index}]", exc))
            continue
        if event.rejected:  # reported once, by the batch, with the element's place in it
            where = f"payload.events[{index}]"
            rejected.extend(_within(where, exc) for exc in event.rejected)
            event = attrs.evolve(event, rejected=())
        if isinstance(event, EventBatch):  # tolerate nesting by flattening it
            events.extend(event.events)
        else:
            events.append(event)
    return EventBatch(events=tuple(events), rejected=tuple(rejected), **_envelope(value))


def _inner_event(item: Any, depth: int) -> ServerEvent:
    """An element of a batch nested ``depth`` deep, decoded."""
    if type(item) is dict and item.get("type") == EventBatch.TYPE:
        if depth == MAX_BATCH_DEPTH:
            raise RemoteProtocolError(f"batches nested more than {MAX_BATCH_DEPTH} deep")
        return _batch(item, depth + 1)
    return decode_object(item)


def _reshape_inner(item: Any) -> Any:
    """Protocol Appendix B: an inner event may carry its payload under a type-derived key."""
    if type(item) is dict and "payload" not in item and type(item.get("type")) is str:
        key = item["type"].removeprefix("EVENT_TYPE_").lower()
        if key in item:
            return {**item, "payload": item[key]}
    return item


def _within(prefix: str, error: RemoteProtocolError) -> RemoteProtocolError:
    """``error``, found in the part of the frame at path ``prefix``, with its full path."""
    path = error.path
    if path:
        path = f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"
    return RemoteProtocolError(error.reason, path=path or prefix)


def _is_object_array(tp: Any) -> bool:
    item = tuple_item(tp)
    return item is not None and attrs.has(item)


def _is(expected: object) -> Callable[[Any], bool]:
    return lambda candidate: bool(candidate == expected)


def _tag(cls: type[Any]) -> str:
    return str(cls.TYPE)


def _objects_only(converter: cattrs.Converter) -> Callable[[type[Any]], Callable[[Any, Any], Any]]:
    """Hook factory for attrs classes: the value must be a JSON object.

    cattrs' generated hooks test fields with ``in``: a string or list in place of an object
    whose fields are all optional would otherwise decode as an empty object.
    """

    def factory(cls: type[Any]) -> Callable[[Any, Any], Any]:
        structure = converter.gen_structure_attrs_fromdict(cls)

        def hook(value: Any, _: Any) -> Any:
            if type(value) is not dict:
                raise TypeError("expected object")
            return structure(value, cls)

        return hook

    return factory


def _make_converter() -> cattrs.Converter:
    # Decoding errors are set by the decoder, never read from the frame.
    never_read = override(omit=True)
    converter = cattrs.Converter(
        detailed_validation=True, type_overrides={tuple[RemoteProtocolError, ...]: never_read}
    )
    converter.register_structure_hook_factory(attrs.has, _objects_only(converter))
    converter.register_structure_hook(str, read_str)
    converter.register_structure_hook(int, read_int)
    converter.register_structure_hook(bool, read_bool)
    converter.register_structure_hook(datetime, read_timestamp)
    converter.register_structure_hook(Metadata, read_metadata)
    converter.register_structure_hook(Capabilities, read_capabilities)
    # Direct hooks for optional scalars: cattrs' generic Optional handling dispatches per call.
    for generic, hook in (
        (str | None, read_optional_str),
        (int | None, read_optional_int),
        (datetime | None, read_optional_timestamp),
        (Mapping[str, Any], read_raw_mapping),
    ):
        converter.register_structure_hook_func(_is(generic), hook)
    # Arrays of objects: only a JSON array (cattrs' own tuple hook takes any iterable).
    converter.register_structure_hook_factory(
        _is_object_array, lambda tp: list_hook(converter, tuple_item(tp))
    )
    # UnknownEvent's own hook first, so the tagged union's default keeps the raw type/payload.
    converter.register_structure_hook(UnknownEvent, _unknown)
    converter.register_structure_hook(EventBatch, lambda value, _: _batch(value, 1))
    configure_tagged_union(
        ServerEvent,
        converter,
        tag_generator=_tag,
        tag_name="type",
        default=UnknownEvent,
    )
    return converter


_converter = _make_converter()
"""The reference structuring of frames: it explains rejections and serves the generated
decoders the hooks of types they do not inline."""


def _event_decoders(converter: cattrs.Converter) -> dict[str, EventDecoder]:
    """``type`` -> generated decoder, for every type but the batch and unknown ones.

    The decoders call this converter's hooks for what they do not inline, so the generated path
    and the explaining one agree on every type.
    """
    return {
        kind: compile_event_decoder(
            cls,
            hook_for=converter.get_structure_hook,
            custom=frozenset({Metadata, Capabilities}),
            timestamp=_envelope_timestamp,
            metadata=_envelope_metadata,
            max_sequence=MAX_SEQUENCE,
        )
        for kind, cls in KNOWN_TYPES.items()
        if cls not in (EventBatch, UnknownEvent)
    }


_DECODERS = _event_decoders(_converter)


def _element_arrays(cls: type[Any]) -> tuple[tuple[str, type[Any]], ...]:
    """The payload fields of event class ``cls`` that are arrays of objects, with their class."""
    payload = typing.get_type_hints(cls)["payload"]
    if not attrs.has(payload):
        return ()
    hints = typing.get_type_hints(payload)
    return tuple(
        (field.name, tuple_item(hints[field.name]))
        for field in attrs.fields(payload)
        if _is_object_array(hints[field.name])
    )


_ELEMENT_ARRAYS = {kind: _element_arrays(KNOWN_TYPES[kind]) for kind in _DECODERS}
"""``type`` -> its lenient arrays: a malformed element of one is dropped, not the frame."""


def decode(frame: str | bytes | bytearray) -> ServerEvent:
    """Decode one WebSocket frame into a server event.

    Raises :class:`RemoteProtocolError` (and nothing else) for binary frames, invalid JSON,
    non-object frames, a missing or non-string ``type``, and fields of the wrong type. Malformed
    elements of a batch or of an array of objects are dropped instead, and listed in the event's
    ``rejected``.
    """
    if not isinstance(frame, str):
        raise RemoteProtocolError("binary frames are not part of the protocol")
    try:
        try:  # _parse, inlined (once per frame)
            value = _orjson_loads(frame if frame.isascii() else frame.encode())
        except ValueError:
            value = json.loads(frame)
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(f"invalid JSON ({type(exc).__name__})") from None
    # decode_object's common case, inlined: an object of a type with a generated decoder.
    try:
        # Only an object is indexed by a string; a type without a decoder is a KeyError, an
        # unhashable one a TypeError: decode_object sorts them out.
        decoder = _DECODERS[value["type"]]
    except (KeyError, TypeError):
        return decode_object(value)
    try:
        return decoder(value)  # type: ignore[no-any-return]
    except RemoteProtocolError:
        raise
    except Exception:
        return _without_bad_elements(value, decoder)


def _parse(frame: str) -> Any:
    """``json.loads(frame)``, by orjson's parser where it agrees.

    orjson accepts a subset of what ``json.loads`` accepts (strict RFC 8259: no NaN, no lone
    surrogate escapes) and parses it to the same values, several times faster; anything it
    refuses goes to ``json.loads`` itself, so the accepted texts and the errors are
    ``json.loads``'s (property tested). One difference is left, on purpose: an integer literal
    beyond 64 bits becomes a float, not an int. No field of a frame may hold one (sequences are
    refused above 2**53 either way), so at worst a value kept as it came (an unknown
    capability, an unknown event's payload) reads as a float; checking every frame for such a
    literal would cost as much as parsing it.
    """
    try:
        # Given a str, orjson reads CPython's cached UTF-8 form of it, which is then kept with
        # the str for as long as the caller keeps the frame: a copy of every non-ASCII frame.
        # Bytes leave the frame as it was (an encoding error is a ValueError: json.loads).
        return _orjson_loads(frame if frame.isascii() else frame.encode())
    except ValueError:
        return json.loads(frame)


def decode_object(value: Any) -> ServerEvent:
    """Decode an already-parsed JSON value (for example one line of a log) into an event."""
    if type(value) is not dict:
        raise RemoteProtocolError("expected a JSON object")
    kind = value.get("type")
    if type(kind) is not str:
        raise RemoteProtocolError("expected string" if "type" in value else "missing", path="type")
    decoder = _DECODERS.get(kind)
    if decoder is None:
        if kind == EventBatch.TYPE:
            return _batch(value, 1)
        return _unknown(value, UnknownEvent)
    try:
        return decoder(value)  # type: ignore[no-any-return]
    except RemoteProtocolError:
        raise
    except Exception:
        return _without_bad_elements(value, decoder)


def _without_bad_elements(value: dict[str, Any], decoder: EventDecoder) -> ServerEvent:
    """The slow path, for a frame that failed to decode: decode it without its malformed array
    elements (reported in ``rejected``), or raise why if they are not its only fault."""
    payload: dict[str, Any] = value.get("payload") or {}  # anything but an object has raised
    kept: dict[str, list[Any]] = {}
    rejected: list[RemoteProtocolError] = []
    for name, item_type in _ELEMENT_ARRAYS[value["type"]]:
        items = payload.get(name)
        if type(items) is list:
            kept[name] = _good_elements(items, item_type, f"payload.{name}", rejected)
    if not rejected:
        raise _refusal(value)
    repaired = {**value, "payload": {**payload, **kept}}
    try:
        event = decoder(repaired)
    except Exception:
        raise _refusal(repaired) from None
    return attrs.evolve(event, rejected=tuple(rejected))  # type: ignore[no-any-return]


def _good_elements(
    items: list[Any], item_type: type[Any], path: str, rejected: list[RemoteProtocolError]
) -> list[Any]:
    """The elements of the array at ``path`` that are valid alone; the others go to ``rejected``."""
    good = []
    for index, item in enumerate(items):
        error = _explain(item, item_type)
        if error is None:
            good.append(item)
        else:
            rejected.append(_within(f"{path}[{index}]", error))
    return good


def _refusal(value: Mapping[str, Any]) -> RemoteProtocolError:
    """Why the frame ``value`` is refused, with the path of (one of) its faults."""
    payload = value.get("payload")
    normalized = {**value, "payload": {} if payload is None else payload}
    return _explain(normalized, ServerEvent) or RemoteProtocolError("could not decode frame")


def _explain(value: Any, cls: Any) -> RemoteProtocolError | None:
    """Why the reference converter refuses ``value`` as a ``cls``; ``None`` if it accepts it."""
    try:
        _converter.structure(value, cls)
    except RemoteProtocolError as exc:
        return exc
    except Exception as exc:
        messages = cattrs.transform_error(exc, path="$", format_exception=_describe)
        first = messages[0] if messages else str(exc)
        reason, _, path = first.partition(" @ $")
        return RemoteProtocolError(reason, path=path.lstrip("."))
    return None


def _describe(exc: BaseException, _: Any) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, TypeError | ValueError) and str(exc).startswith("expected"):
        return str(exc)
    if isinstance(exc, AttributeError | TypeError):
        return "expected object"
    return str(exc) or type(exc).__name__


# --- encoding ---------------------------------------------------------------------------------


def _payload(command: ClientCommand) -> dict[str, Any]:
    if isinstance(command, UserMessage):
        return {"text": command.text}
    if isinstance(command, UserTyping):
        return {"state": command.state}
    return {}


# json.dumps builds a new encoder for any non-default option: one shared, as it holds no state.
_COMPACT: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


_CLIENT_EVENT_ID = "client_event_id"
_USER_MESSAGE_START = f'{{"type":{_quoted(UserMessage.TYPE)},"payload":{{"text":'
_CLIENT_EVENT_ID_KEY = f"{_quoted(_CLIENT_EVENT_ID)}:"


def encode_user_message(text: str, client_event_id: str | None, custom: Mapping[str, str]) -> str:
    """``encode(UserMessage(text=text, client_event_id=client_event_id, custom=custom))``:
    the same frame after the same checks (the same :class:`LocalProtocolError`), without the
    command, its ``__init__`` and its validators' calls (once per message the driver sends)."""
    if type(custom) is not dict or custom:
        custom = _string_map(custom)  # checked in the order UserMessage's fields are
    if type(text) is not str or not text.isascii():  # ``_encodable``'s common case, inlined
        _encodable(text, "text")
    if client_event_id is not None and (
        type(client_event_id) is not str or not client_event_id.isascii()
    ):
        _encodable(client_event_id, "client_event_id")
    return _user_message_frame(text, client_event_id, custom)


def _user_message(command: UserMessage) -> str:
    return _user_message_frame(command.text, command.client_event_id, command.custom)


def _user_message_frame(text: str, client_event_id: str | None, custom: Mapping[str, str]) -> str:
    """:func:`encode` of a user message, written out: exactly what ``_COMPACT`` writes for its
    frame (strings quoted by the same function), without building the frame or an encoder."""
    text = _USER_MESSAGE_START + _quoted(text) + "}"
    if not custom:
        if client_event_id is None:
            return text + "}"
        return (
            f'{text},"metadata":{{"custom":{{{_CLIENT_EVENT_ID_KEY}{_quoted(client_event_id)}}}}}}}'
        )
    pairs = [
        # The id replaces a custom entry of the same key in its place, as a dict update does.
        _quoted(key)
        + ":"
        + _quoted(
            client_event_id if key == _CLIENT_EVENT_ID and client_event_id is not None else value
        )
        for key, value in custom.items()
    ]
    if client_event_id is not None and _CLIENT_EVENT_ID not in custom:
        pairs.append(_CLIENT_EVENT_ID_KEY + _quoted(client_event_id))
    return f'{text},"metadata":{{"custom":{{{",".join(pairs)}}}}}}}'


def encode(command: ClientCommand) -> str:
    """Encode a client command as compact JSON: ``type``, ``payload`` and maybe ``metadata``."""
    if type(command) is UserMessage:  # once per message sent
        return _user_message(command)
    frame: dict[str, Any] = {"type": command.TYPE, "payload": _payload(command)}
    custom = dict(command.custom)
    if isinstance(command, UserMessage) and command.client_event_id is not None:
        custom["client_event_id"] = command.client_event_id
    if custom:
        frame["metadata"] = {"custom": custom}
    return _COMPACT.encode(frame)


def encoded_size(command: ClientCommand) -> int:
    """UTF-8 size in bytes of the encoded frame, the unit of ``max_message_size_bytes``."""
    return len(encode(command).encode("utf-8"))
