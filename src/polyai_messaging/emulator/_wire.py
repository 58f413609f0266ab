"""The emulator's side of the wire: event names, envelopes, JSON, cursors, batches.

Everything here is pure (no I/O, no state) apart from reading the wall clock for timestamps.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "CLIENT_EVENT_TYPES",
    "ECHOED_EVENT_TYPES",
    "SERVER_EVENT_TYPES",
    "SYSTEM_LEVEL_ERROR",
    "ClientFrame",
    "EventType",
    "FrameError",
    "batch_frames",
    "encode",
    "make_event",
    "parse_client_frame",
    "parse_cursor",
    "utc_timestamp",
    "utf8_len",
]

Json = dict[str, Any]


class EventType(StrEnum):
    """Every ``type`` value of the protocol, sent or received (:ref:`protocol-events`)."""

    REQUEST_POLY_AGENT_JOIN = "EVENT_TYPE_REQUEST_POLY_AGENT_JOIN"
    USER_MESSAGE = "EVENT_TYPE_USER_MESSAGE"
    USER_TYPING = "EVENT_TYPE_USER_TYPING"
    USER_END_SESSION = "EVENT_TYPE_USER_END_SESSION"
    HEARTBEAT = "EVENT_TYPE_HEARTBEAT"
    POLY_AGENT_JOINED = "EVENT_TYPE_POLY_AGENT_JOINED"
    POLY_AGENT_THINKING = "EVENT_TYPE_POLY_AGENT_THINKING"
    POLY_AGENT_MESSAGE = "EVENT_TYPE_POLY_AGENT_MESSAGE"
    POLY_AGENT_MESSAGE_CHUNK = "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK"
    POLY_AGENT_LEFT = "EVENT_TYPE_POLY_AGENT_LEFT"
    POLY_AGENT_TRIGGERED_HANDOFF = "EVENT_TYPE_POLY_AGENT_TRIGGERED_HANDOFF"
    LIVE_AGENT_JOINED = "EVENT_TYPE_LIVE_AGENT_JOINED"
    LIVE_AGENT_TYPING = "EVENT_TYPE_LIVE_AGENT_TYPING"
    LIVE_AGENT_MESSAGE = "EVENT_TYPE_LIVE_AGENT_MESSAGE"
    LIVE_AGENT_LEFT = "EVENT_TYPE_LIVE_AGENT_LEFT"
    HANDOFF_ACCEPTED = "EVENT_TYPE_HANDOFF_ACCEPTED"
    HANDOFF_QUEUE_STATUS = "EVENT_TYPE_HANDOFF_QUEUE_STATUS"
    CLIENT_HANDOFF_REQUIRED = "EVENT_TYPE_CLIENT_HANDOFF_REQUIRED"
    HANDOFF_FAILED = "EVENT_TYPE_HANDOFF_FAILED"
    HANDOFF_TIMEOUT = "EVENT_TYPE_HANDOFF_TIMEOUT"
    SESSION_START = "EVENT_TYPE_SESSION_START"
    SESSION_END = "EVENT_TYPE_SESSION_END"
    SYSTEM_MESSAGE = "EVENT_TYPE_SYSTEM_MESSAGE"
    LANGUAGE_CHANGED = "EVENT_TYPE_LANGUAGE_CHANGED"
    EVENT_BATCH = "EVENT_TYPE_EVENT_BATCH"


CLIENT_EVENT_TYPES = frozenset(
    {
        EventType.REQUEST_POLY_AGENT_JOIN,
        EventType.USER_MESSAGE,
        EventType.USER_TYPING,
        EventType.USER_END_SESSION,
        EventType.HEARTBEAT,
    }
)
"""The five types a client may send (:ref:`protocol-sending`)."""

ECHOED_EVENT_TYPES = CLIENT_EVENT_TYPES - {EventType.USER_TYPING}
"""The four client types the server echoes (:ref:`protocol-delivery`)."""

SERVER_EVENT_TYPES = frozenset(EventType) - CLIENT_EVENT_TYPES
"""The twenty server-only types; a client sending one gets ``Event type not allowed``."""

SYSTEM_LEVEL_ERROR = "SYSTEM_MESSAGE_LEVEL_ERROR"

MESSAGE_UNKNOWN_OR_INVALID = "Unknown event type or invalid message format"
MESSAGE_TOO_LARGE = "Message too large"
_TYPE_NAMES = frozenset(event_type.value for event_type in EventType)
_TYPING_STATES = frozenset({"TYPING_STATE_STARTED", "TYPING_STATE_STOPPED"})


def utc_timestamp() -> str:
    """The current UTC time in ISO 8601 with millisecond precision and a ``Z`` suffix."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_event(
    event_type: str,
    payload: Json,
    *,
    sequence: int | None,
    metadata: Json | None = None,
) -> Json:
    """A full server envelope (:ref:`protocol-envelope`) with a fresh UUIDv4 ``id`` and the
    current timestamp."""
    event: Json = {
        "id": str(uuid.uuid4()),
        "sequence": sequence,
        "timestamp": utc_timestamp(),
        "type": str(event_type),
        "payload": payload,
    }
    if metadata is not None:
        event["metadata"] = metadata
    return event


def encode(value: Json) -> str:
    """Compact JSON text, UTF-8 characters kept as they are."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def utf8_len(text: str) -> int:
    """Size of ``text`` on the wire."""
    return len(text.encode("utf-8"))


def parse_cursor(raw: str | None) -> int:
    """The replay cursor: ``12`` or ``seq:12``; absent or invalid values mean 0
    (:ref:`protocol-websocket`)."""
    if raw is None:
        return 0
    text = raw.strip()
    if text.lower().startswith("seq:"):
        text = text[4:]
    # isdigit() alone accepts non-ASCII digits such as "²", which int() rejects.
    if not (text.isascii() and text.isdigit()):
        return 0
    return int(text)


@dataclass(frozen=True)
class ClientFrame:
    """A valid client event: one of the five client types, with its payload and metadata."""

    type: EventType
    payload: Json
    metadata: Json | None
    """``{"custom": {...}}`` when the client sent ``metadata.custom``, else ``None``."""


@dataclass(frozen=True)
class FrameError:
    """An invalid client frame: the system-message text to answer with."""

    message: str
    metadata: Json | None = None


def _echoable_metadata(frame: Json) -> Json | None:
    metadata = frame.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("custom"), dict):
        return {"custom": metadata["custom"]}
    return None


def parse_client_frame(text: str) -> ClientFrame | FrameError:
    """Validate one client text frame: JSON, one of the five client types, an object payload
    (:ref:`protocol-emulator`)."""
    try:
        frame = json.loads(text)
    except ValueError:
        return FrameError(MESSAGE_UNKNOWN_OR_INVALID)
    if not isinstance(frame, dict):
        return FrameError(MESSAGE_UNKNOWN_OR_INVALID)
    metadata = _echoable_metadata(frame)
    raw_type = frame.get("type")
    if not isinstance(raw_type, str) or raw_type not in _TYPE_NAMES:
        return FrameError(MESSAGE_UNKNOWN_OR_INVALID, metadata)
    event_type = EventType(raw_type)
    if event_type in SERVER_EVENT_TYPES:
        return FrameError(f"Event type not allowed: {event_type}", metadata)
    # A missing payload is read as {}; anything else that is not an object is invalid.
    payload = frame.get("payload", {})
    if payload is None:
        payload = {}
    if not isinstance(payload, dict) or (
        "metadata" in frame and not isinstance(frame["metadata"], dict)
    ):
        return FrameError(MESSAGE_UNKNOWN_OR_INVALID, metadata)
    if event_type is EventType.USER_MESSAGE and not isinstance(payload.get("text"), str):
        return FrameError(MESSAGE_UNKNOWN_OR_INVALID, metadata)
    if event_type is EventType.USER_TYPING and payload.get("state") not in _TYPING_STATES:
        return FrameError(MESSAGE_UNKNOWN_OR_INVALID, metadata)
    return ClientFrame(event_type, payload, metadata)


def batch_frames(
    event_texts: Sequence[str],
    max_bytes: int,
    *,
    reverse_each: bool = False,
) -> list[str]:
    """Pack encoded events into ``EVENT_BATCH`` frames of at most ``max_bytes`` UTF-8 bytes.

    Events stay in order and are never split; an event that alone exceeds the limit travels in
    a batch of its own. No events give one batch with an empty ``events`` list
    (:ref:`protocol-emulator`).
    ``reverse_each`` reverses the events inside each batch (the ``reorder`` fault).
    """
    groups: list[list[str]] = [[]]
    overhead = _batch_overhead()
    size = overhead
    for text in event_texts:
        # +1 for the comma separating this event from the previous one in the same batch.
        extra = utf8_len(text) + (1 if groups[-1] else 0)
        if groups[-1] and size + extra > max_bytes:
            groups.append([])
            size = overhead
            extra = utf8_len(text)
        groups[-1].append(text)
        size += extra
    return [_assemble_batch(group[::-1] if reverse_each else group) for group in groups]


def _batch_envelope_text() -> str:
    return encode(make_event(EventType.EVENT_BATCH, {"events": []}, sequence=None))


def _batch_overhead() -> int:
    # Every batch envelope has the same length: a UUID, a fixed-width timestamp, fixed keys.
    return utf8_len(_batch_envelope_text())


def _assemble_batch(event_texts: Sequence[str]) -> str:
    # The events are already encoded; splice them in rather than decoding and re-encoding.
    envelope = _batch_envelope_text()
    suffix = "[]}}"
    assert envelope.endswith(suffix)
    return envelope[: -len(suffix)] + "[" + ",".join(event_texts) + "]}}"
