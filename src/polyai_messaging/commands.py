"""Outbound client events: the five types a client may send (protocol §7).

A command carries only ``type``, ``payload`` and optional ``metadata.custom``: never ``id``,
``sequence`` or ``timestamp``, which the server assigns (protocol §6.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import attrs

from .events import TYPING_STARTED, TYPING_STOPPED

__all__ = [
    "ClientCommand",
    "Heartbeat",
    "RequestPolyAgentJoin",
    "UserEndSession",
    "UserMessage",
    "UserTyping",
]


def _string_map(value: Mapping[str, str]) -> Mapping[str, str]:
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise TypeError("metadata.custom must map strings to strings")
    return dict(value)


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
    text: str
    client_event_id: str | None = None


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
