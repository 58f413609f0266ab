"""Outbound client events: the five types a client may send (:ref:`protocol-sending`).

A command carries only ``type``, ``payload`` and optional ``metadata.custom``: never ``id``,
``sequence`` or ``timestamp``, which the server assigns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from ._errors import LocalProtocolError
from ._events import TYPING_STARTED, TYPING_STOPPED

__all__ = [
    "ClientCommand",
    "Heartbeat",
    "RequestPolyAgentJoin",
    "UserEndSession",
    "UserMessage",
    "UserTyping",
    "replace_lone_surrogates",
]

# A Python string may hold surrogate code points (JSON's "\ud800" decodes to one), and UTF-8
# cannot encode them: a frame carrying one could not be sent.
_SURROGATE = re.compile("[\ud800-\udfff]")


def replace_lone_surrogates(text: str) -> str:
    """``text`` with its surrogate code points made encodable as UTF-8.

    A high surrogate followed by a low one becomes the character the pair encodes; every other
    surrogate becomes U+FFFD, the replacement character. Text without surrogates is unchanged.
    """
    if _SURROGATE.search(text) is None:
        return text
    # As UTF-16 code units, a pair is a valid sequence and a lone surrogate an invalid one.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _encodable(value: Any, what: str) -> str:
    if type(value) is not str:
        raise LocalProtocolError(f"{what} must be a string, not {type(value).__name__}")
    if value.isascii():  # the usual case: no surrogate, and CPython knows it without a pass
        return value
    surrogate = _SURROGATE.search(value)
    if surrogate is not None:
        raise LocalProtocolError(
            f"{what} contains the lone surrogate U+{ord(surrogate.group()):04X}, which UTF-8 "
            "cannot encode (see replace_lone_surrogates)"
        )
    return value


def _string_map(value: Mapping[str, str]) -> Mapping[str, str]:
    # A dict first: the ABC's isinstance is a Python-level check, once per command.
    if type(value) is not dict and not isinstance(value, Mapping):
        raise LocalProtocolError("metadata.custom must be a mapping of strings to strings")
    if not value:  # the usual case for a message: the driver passes its id apart
        return {}
    return {
        _encodable(key, "metadata.custom key"): _encodable(item, "metadata.custom value")
        for key, item in value.items()
    }


def _text(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    _encodable(value, attribute.name)


def _optional_text(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        _encodable(value, attribute.name)


@attrs.frozen(kw_only=True)
class _Command:
    TYPE: ClassVar[str] = ""
    custom: Mapping[str, str] = attrs.field(factory=dict, converter=_string_map)
    """``metadata.custom``: string pairs the server echoes back on the echo and on errors."""


@attrs.frozen(kw_only=True)
class RequestPolyAgentJoin(_Command):
    """Ask the PolyAI agent to join; only when the history has no ``POLY_AGENT_JOINED``."""

    TYPE: ClassVar[str] = "EVENT_TYPE_REQUEST_POLY_AGENT_JOIN"


@attrs.frozen(kw_only=True)
class UserMessage(_Command):
    """A user message. ``client_event_id`` is sent as ``metadata.custom.client_event_id``."""

    TYPE: ClassVar[str] = "EVENT_TYPE_USER_MESSAGE"
    text: str = attrs.field(validator=_text)
    client_event_id: str | None = attrs.field(default=None, validator=_optional_text)


@attrs.frozen(kw_only=True)
class UserTyping(_Command):
    """The user started or stopped typing (shown to a live agent)."""

    TYPE: ClassVar[str] = "EVENT_TYPE_USER_TYPING"
    state: str = attrs.field(validator=attrs.validators.in_((TYPING_STARTED, TYPING_STOPPED)))


@attrs.frozen(kw_only=True)
class UserEndSession(_Command):
    """The user deliberately ends the conversation."""

    TYPE: ClassVar[str] = "EVENT_TYPE_USER_END_SESSION"


@attrs.frozen(kw_only=True)
class Heartbeat(_Command):
    """Keep-alive; the server echoes it."""

    TYPE: ClassVar[str] = "EVENT_TYPE_HEARTBEAT"


ClientCommand = RequestPolyAgentJoin | UserMessage | UserTyping | UserEndSession | Heartbeat
"""Every sendable client event."""
