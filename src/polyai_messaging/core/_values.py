"""How each JSON value of a frame is read: the converter's hooks.

Strict: cattrs would otherwise coerce ``5`` into ``"5"``; a value of the wrong JSON type raises
``TypeError`` (or ``ValueError`` for a malformed timestamp), which the caller turns into a
:class:`~polyai_messaging.core.RemoteProtocolError` naming the path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    IterableValidationError,
    IterableValidationNote,
)

from ._decoders import builder
from ._events import Capabilities, Metadata

_T = TypeVar("_T")


def read_str(value: Any, _: type) -> str:
    if type(value) is not str:
        raise TypeError("expected string")
    return value


def read_int(value: Any, _: type) -> int:
    if type(value) is not int:
        raise TypeError("expected int")
    return value


def read_bool(value: Any, _: type) -> bool:
    if type(value) is not bool:
        raise TypeError("expected bool")
    return value


def read_optional_str(value: Any, _: type) -> str | None:
    if value is None or type(value) is str:
        return value
    raise TypeError("expected string")


def read_optional_int(value: Any, _: type) -> int | None:
    if value is None or type(value) is int:
        return value
    raise TypeError("expected int")


def read_optional_timestamp(value: Any, _: type) -> datetime | None:
    if value is None:
        return None
    if type(value) is str:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return read_timestamp(value, datetime)


def read_timestamp(value: Any, _: type) -> datetime:
    if type(value) is not str:
        raise TypeError("expected ISO 8601 string")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        pass
    text = value
    # Python 3.11 accepts 'Z' and offsets but at most 6 fractional digits.
    dot = text.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        if end - dot > 7:
            text = text[: dot + 7] + text[end:]
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("expected ISO 8601 timestamp") from None


def read_object(value: Any) -> Mapping[str, Any]:
    if type(value) is not dict:
        raise TypeError("expected object")
    return value


def read_metadata(value: Any, _: type) -> Metadata:
    # Metadata is the client's own data echoed back: a malformed ``custom`` or non-string
    # values in it are dropped rather than costing the whole frame.
    custom = read_object(value).get("custom")
    if type(custom) is not dict:
        return new_metadata({})
    pairs = custom.copy()
    for key, item in custom.items():
        if type(item) is not str:
            del pairs[key]
    return new_metadata(pairs)


_BuildingMetadata: Any = builder(Metadata)


def new_metadata(custom: dict[str, str]) -> Metadata:
    """``Metadata(custom=custom)`` without attrs' keyword ``__init__`` (once per echo)."""
    metadata = _BuildingMetadata()
    metadata.custom = custom
    metadata.__class__ = Metadata
    return metadata  # type: ignore[no-any-return]


_CAPABILITY_KEYS = {
    "streaming": read_bool,
    "max_message_size_bytes": read_int,
    "max_reconnect_attempts": read_int,
    "heartbeat_interval_seconds": read_int,
}


def read_capabilities(value: Any, _: type) -> Capabilities:
    known: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, item in read_object(value).items():
        check = _CAPABILITY_KEYS.get(key)
        if check is None:
            extra[key] = item
        elif item is not None:
            try:
                known[key] = check(item, object)
            except TypeError as exc:
                exc.__notes__ = [AttributeValidationNote(f"Structuring {key}", key, object)]
                raise ClassValidationError("Capabilities", [exc], Capabilities) from None
    return Capabilities(**known, extra=extra)


def read_raw_mapping(value: Any, _: type) -> Mapping[str, Any]:
    return read_object(value)


def list_hook(
    converter: cattrs.Converter, item_type: type[_T]
) -> Callable[[Any, type], tuple[_T, ...]]:
    structure = converter.structure

    def hook(value: Any, _: type) -> tuple[_T, ...]:
        if type(value) is not list:
            raise TypeError("expected list")
        if not value:
            return ()
        try:
            return tuple(structure(item, item_type) for item in value)
        except Exception:
            errors: list[Exception] = []
            for index, item in enumerate(value):
                try:
                    structure(item, item_type)
                except Exception as exc:
                    note = IterableValidationNote(f"Structuring @ index {index}", index, item_type)
                    exc.__notes__ = [*getattr(exc, "__notes__", []), note]
                    errors.append(exc)
            raise IterableValidationError("list", errors, tuple) from None

    return hook
