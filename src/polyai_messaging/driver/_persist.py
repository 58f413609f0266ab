"""Save a :class:`~polyai_messaging.driver.SessionState` as JSON and restore it elsewhere.

What is kept is what resuming needs: the session id, the folded journal (as wire frames, so a
restore is just a re-fold), the outbox, the join-retry budget, the random stream position and the
wall time of the last frame sent (so that a session the server has since ended for idleness is
known as ended, not replaced).
Link bookkeeping is not kept: a restored state starts disconnected and resumes from the cursor.
The JSON never contains a token.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Final

import attrs
from orjson import Fragment as _Fragment
from orjson import JSONEncodeError as _OrjsonEncodeError
from orjson import dumps as _orjson_dumps
from orjson import loads as _orjson_loads

from ..core import (
    Capabilities,
    MessagingError,
    RemoteProtocolError,
    ServerEvent,
    UnknownEvent,
    decode_object,
    fold,
)
from ._effects import DeliveryStatus
from ._outbox import Outbox, OutboxEntry
from ._step import SessionConfig, SessionState

__all__ = ["FORMAT_VERSION", "StateFormatError", "dump_state", "event_to_wire", "load_state"]

FORMAT_VERSION = 1

_DIGIT_RUNS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
"""Translates every digit to ``0`` and every other byte to a space."""
_LONG_INTEGER = b"0" * 19
"""The digits of the shortest integer literal orjson may misread (below -2**63)."""


class StateFormatError(MessagingError):
    """Saved state could not be read; the message says where."""


class _JsonFloat(float):
    """A float as it is saved: orjson hands it to :func:`_saved_default`, which writes it as
    ``json.dumps`` does (orjson writes ``1e300`` for ``1e+300`` and ``null`` for NaN)."""

    __slots__ = ()


def _saved_default(value: Any) -> Any:
    if type(value) is _JsonFloat:
        return _Fragment(_COMPACT.encode(float(value)).encode())
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class _Converters(dict[type, Callable[[Any], Any]]):
    """``type`` -> the function making a value of that type plain JSON data, made on first use.

    :func:`event_to_wire` runs once per held event when a state is saved: looking the
    conversion up by exact type, with each attrs class's fields read once, costs a fraction of
    asking ``attrs`` and ``isinstance`` about every value.
    """

    def __init__(self, *, saved: bool) -> None:
        super().__init__()
        self.saved = saved
        """Floats become :class:`_JsonFloat` (for :func:`_encode_frames`)."""

    def plain(self, value: Any) -> Any:
        return self[type(value)](value)

    def __missing__(self, kind: type) -> Callable[[Any], Any]:
        convert = self._converter(kind)
        self[kind] = convert
        return convert

    def _converter(self, kind: type) -> Callable[[Any], Any]:
        plain = self.plain
        if issubclass(kind, Capabilities):

            def capabilities(value: Any) -> dict[str, Any]:
                fields = {
                    k: v for k, v in attrs.asdict(value).items() if k != "extra" and v is not None
                }
                return {key: plain(item) for key, item in {**value.extra, **fields}.items()}

            return capabilities
        if attrs.has(kind):
            return self._attributes(kind)
        if issubclass(kind, tuple | list):
            return lambda value: [plain(item) for item in value] if value else []
        if issubclass(kind, dict):
            return lambda value: {key: plain(item) for key, item in value.items()}
        if issubclass(kind, datetime):
            return lambda value: value.isoformat()
        if self.saved and issubclass(kind, float) and not issubclass(kind, _JsonFloat):
            return _JsonFloat
        return lambda value: value

    def _attributes(self, kind: type) -> Callable[[Any], dict[str, Any]]:
        """The fields of an attrs class that are not ``None``, by name, each made plain.

        Generated straight-line code (it runs for every event and payload saved): with a loop
        over the field names and ``getattr``, saving 100,000 events took 0.45-0.49 s, not 0.41.
        """
        lines = ["def attributes(value):", "    out = {}"]
        for field in attrs.fields(kind):
            lines += [
                f"    item = value.{field.name}",
                "    if item is not None:",
                f"        out[{field.name!r}] = item if type(item) in as_is else plain(item)",
            ]
        lines.append("    return out")
        namespace: dict[str, Any] = {"as_is": _AS_IS, "plain": self.plain}
        code = compile("\n".join(lines), f"<saving {kind.__qualname__}>", "exec")
        exec(code, namespace)  # noqa: S102
        return namespace["attributes"]  # type: ignore[no-any-return]


_AS_IS = frozenset({str, int, bool})
"""Types whose values are their own JSON data (not float: see :class:`_JsonFloat`)."""
_TO_WIRE = _Converters(saved=False)
_TO_SAVED = _Converters(saved=True)


def _wire(event: ServerEvent, converters: _Converters) -> dict[str, Any]:
    plain = converters.plain
    kind = event.type if isinstance(event, UnknownEvent) else type(event).TYPE
    frame: dict[str, Any] = {"type": kind}
    if event.id is not None:
        frame["id"] = event.id
    if event.sequence is not None:
        frame["sequence"] = event.sequence
    if event.timestamp is not None:
        frame["timestamp"] = plain(event.timestamp)
    if event.metadata is not None:
        frame["metadata"] = plain(event.metadata)
    frame["payload"] = plain(getattr(event, "payload", _NO_PAYLOAD))
    return frame


_NO_PAYLOAD: dict[str, Any] = {}


def event_to_wire(event: ServerEvent) -> dict[str, Any]:
    """The JSON object a server would have sent for ``event`` (decodes back to an equal event)."""
    return _wire(event, _TO_WIRE)


def dump_state(state: SessionState) -> str:
    """Serialise the resumable part of ``state`` as JSON."""
    conversation = state.conversation
    head = _COMPACT.encode(
        {
            "format": FORMAT_VERSION,
            "session_id": state.session_id,
            "seed": state.seed,
            "draws": state.draws,
            "joins_sent": state.joins_sent,
            "join_retries": state.join_retries,
            "last_sent_wall": state.last_sent_wall,
            "cursor": conversation.cursor,
        }
    )
    outbox = _COMPACT.encode(
        [
            {
                "client_event_id": e.client_event_id,
                "text": e.text,
                "custom": dict(e.custom),
                "status": e.status.value,
                "transmissions": e.transmissions,
                "checks": e.checks,
                "message_id": e.message_id,
            }
            for e in state.outbox
        ]
    )
    journal = _encode_frames(conversation.timeline)
    return f'{head[:-1]},"journal":[{journal}],"outbox":{outbox}}}'


_COMPACT: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""What ``json.dumps(value, separators=(",", ":"), ensure_ascii=False)`` writes, without
building an encoder per call."""

CHUNK = 64
"""Frames encoded at a time when saving, and parsed at a time when loading: a few hundred
objects, fewer than the allocations that start a young collection (700 by default), so that
most chunks are freed before any collection sees them (with 256, two of three runs of
``bench/persist.py`` spent about 40% of a 100,000-event save in the collector; with 64, 2%)."""


def _encode_frames(events: Sequence[ServerEvent]) -> str:
    """The events' wire frames, comma-separated, as ``json.dumps`` (compact) writes them.

    The frames are built and encoded ``CHUNK`` at a time, and each chunk's dicts freed before
    the next: the garbage collector never counts them among the objects that survive, which at
    100,000 events made it scan the whole heap (conversation and frames) several times over.
    orjson encodes a chunk several times faster than ``json``, and to the same text (strings
    are escaped alike, floats are written by ``json``'s rules); what it refuses (an integer
    beyond 64 bits, a lone surrogate) goes to ``json``.
    """
    pieces: list[str] = []
    for start in range(0, len(events), CHUNK):
        frames = [_wire(event, _TO_SAVED) for event in events[start : start + CHUNK]]
        try:
            piece = _orjson_dumps(frames, default=_saved_default).decode()
        except _OrjsonEncodeError:
            piece = _COMPACT.encode(frames)
        pieces.append(piece[1:-1])
    return ",".join(pieces)


def load_state(text: str, *, config: SessionConfig | None = None) -> SessionState:
    """Restore a state saved by :func:`dump_state`; raise :class:`StateFormatError` if malformed."""
    data, frames = _parse_state(text)
    events = None
    if frames is not None:
        # The split is proven right once every chunk has parsed: until then the fields it found
        # are not trusted. Whatever fails is read again from the whole text, and reported in
        # the usual order (the format first).
        try:
            events = list(_Decoded(frames))
        except (_Unsplit, StateFormatError):
            data, _ = _parse_state(text, split=False)
    if not isinstance(data, dict):
        raise StateFormatError("saved state must be a JSON object")
    if data.get("format") != FORMAT_VERSION:
        raise StateFormatError(f"format: expected {FORMAT_VERSION}, got {data.get('format')!r}")
    session_id = _field(data, "session_id", str)
    if events is None:
        events = list(_Decoded(iter(_field(data, "journal", list))))
    conversation = fold(events)
    if conversation.cursor != _field(data, "cursor", int):
        raise StateFormatError("cursor does not match the journal")
    outbox = []
    for index, raw in enumerate(_field(data, "outbox", list)):
        try:
            outbox.append(
                OutboxEntry(
                    client_event_id=_field(raw, "client_event_id", str),
                    text=_field(raw, "text", str),
                    custom=_string_map(raw.get("custom", {})),
                    status=DeliveryStatus(raw["status"]),
                    transmissions=_field(raw, "transmissions", int),
                    checks=_field({"checks": 0, **raw}, "checks", int),
                    message_id=_optional_str(raw, "message_id"),
                    serial=index,
                )
            )
        except (StateFormatError, KeyError, ValueError, TypeError, AttributeError) as exc:
            raise StateFormatError(f"outbox[{index}]: {exc}") from None
    return SessionState(
        session_id=session_id,
        config=config or SessionConfig(),
        seed=_field(data, "seed", int),
        draws=_field(data, "draws", int),
        joins_sent=_field(data, "joins_sent", int),
        join_retries=_field(data, "join_retries", int),
        conversation=conversation,
        outbox=Outbox.from_entries(outbox),
        last_sent_wall=_optional_number(data, "last_sent_wall"),
        # A restored session has been connected before: its reconnect reports a resume outcome.
        was_connected=bool(events),
    )


class _Decoded:
    """The journal's frames decoded, each as soon as it is parsed (so that its dicts are freed
    before the next chunk is read); a frame that does not decode is named by its index."""

    def __init__(self, frames: Iterator[Any]) -> None:
        self.frames = frames
        self.count = 0

    def __iter__(self) -> Iterator[ServerEvent]:
        for frame in self.frames:
            try:
                event = decode_object(frame)
            except RemoteProtocolError as exc:
                raise StateFormatError(f"journal[{self.count}]: {exc}") from None
            self.count += 1
            yield event


_JOURNAL = b',"journal":[{"type":"'
"""Where :func:`dump_state` starts the journal (after the fields it writes first)."""
_FRAME = b'{"type":"'
"""How :func:`dump_state` starts every frame."""
_BETWEEN = b"}," + _FRAME
"""What separates two frames of the journal as :func:`dump_state` writes them."""
_JSON = json.JSONDecoder()


class _Unsplit(Exception):
    """The journal could not be parsed a chunk at a time after all: parse the whole text."""


def _parse_state(text: str, *, split: bool = True) -> tuple[Any, Iterator[Any] | None]:
    """``json.loads(text)``; for a journal laid out as :func:`dump_state` writes it, the object
    without its ``journal`` and an iterator parsing the journal's frames (which raises
    :class:`_Unsplit` if they are not laid out so after all).

    Parsing the whole text at once would hold every frame's dicts (more objects than the
    restored conversation) until the last one is decoded: the garbage collector scans them
    all, several times over as they pile up. Frames parsed a chunk at a time, each decoded
    before the next chunk is read, are freed young.

    orjson's parser is used where it is sure to agree with ``json.loads``: it refuses some
    texts ``json.loads`` accepts (NaN, numbers out of a double's range, lone surrogates), which
    then go to ``json.loads``, and reads an integer beyond 64 bits as a float, so a text with a
    run of 19 digits or more (where such an integer could be) goes to ``json.loads`` whole.
    """
    try:
        data = text.encode()  # a lone surrogate cannot be encoded: json.loads reads it
    except UnicodeEncodeError:
        return _loads(text), None
    if data.translate(_DIGIT_RUNS).find(_LONG_INTEGER) >= 0:
        return _loads(text), None
    return (split and _split_journal(data)) or (_loads(text, data), None)


def _split_journal(data: bytes) -> tuple[Any, Iterator[Any]] | None:
    """The saved object (UTF-8 ``data``) without its journal, and the journal's frames parsed
    lazily; ``None`` if the text is not laid out as :func:`dump_state` writes it.

    :data:`_BETWEEN` cannot occur inside a JSON string (its quote is neither escaped nor
    followed by what may follow a string's end): it ends a value and starts an object. The
    fields before the journal are checked to be an object on their own, so the journal is a
    field of the top object, and its first frame starts with :data:`_FRAME`. Each chunk of
    frames, from one separator to another, is checked to be a list of JSON values (see
    :func:`_frames`): its brackets balance, so the separator after it is between two elements
    of the journal, as the one before it was. The last frame is read alone, and must be
    followed by the journal's end; what follows that ends the object.
    """
    start = data.find(_JOURNAL)
    if start < 0:
        return None
    head = data[:start]
    pieces = data[start + len(_JOURNAL) :].split(_BETWEEN)
    # The last piece holds the last frame, the journal's end and the fields after it.
    last = (_FRAME + pieces.pop()).decode()
    try:
        fields = _orjson_loads(head + b"}")
        frame, end = _JSON.raw_decode(last)
    except (ValueError, RecursionError):
        return None
    if type(fields) is not dict or not fields or "journal" in fields or last[end : end + 1] != "]":
        return None  # (with no field before it, the journal would not follow a comma)
    skeleton = head + last[end + 1 :].encode()
    try:
        fields = _loads(skeleton, skeleton)
    except StateFormatError:
        return None
    if type(fields) is not dict or "journal" in fields:
        return None  # not an object, or one whose journal is given again (the last one counts)
    return fields, _frames(pieces, frame)


def _frames(pieces: list[bytes], last: Any) -> Iterator[Any]:
    """Each of ``pieces`` made a frame again (all but its first and last characters), then
    ``last``."""
    for start in range(0, len(pieces), CHUNK):
        chunk = b"[" + _FRAME + _BETWEEN.join(pieces[start : start + CHUNK]) + b"}]"
        try:
            frames = _orjson_loads(chunk)
        except ValueError:
            raise _Unsplit from None
        yield from frames
    yield last


def _loads(text: str | bytes, data: bytes | None = None) -> Any:
    """``json.loads(text)``, by orjson's parser first if ``data`` (the text's UTF-8) is given:
    see :func:`_parse_state` for where they agree."""
    if data is not None:
        try:
            return _orjson_loads(data)
        except ValueError:
            pass
    try:
        return json.loads(text)
    except ValueError:
        raise StateFormatError("saved state is not valid JSON") from None


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise StateFormatError("custom: expected an object of strings")
    return value


def _optional_number(data: Any, name: str) -> float | None:
    value = data.get(name)  # absent from states saved by earlier versions
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StateFormatError(f"{name}: expected a number or null")
    return float(value)


def _optional_str(data: Any, name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise StateFormatError(f"{name}: expected string or null")
    return value


def _field(data: Any, name: str, kind: type[Any]) -> Any:
    if not isinstance(data, dict) or name not in data:
        raise StateFormatError(f"{name}: missing")
    value = data[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise StateFormatError(f"{name}: expected {kind.__name__}")
    return value
