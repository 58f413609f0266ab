"""What the REST calls return: the access token and the created session.

Both are read from a decoded JSON body; a body that is not the documented shape raises
:class:`~polyai_messaging.core.RemoteProtocolError` naming the field, never showing its value
(which may be a token).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Final

import attrs

from ..core import RemoteProtocolError

__all__ = [
    "DEFAULT_REFRESH_MARGIN",
    "VISIBLE_ASCII",
    "AccessToken",
    "SessionInfo",
    "json_type",
    "required",
]

DEFAULT_REFRESH_MARGIN: Final = 300.0
"""Seconds before expiry at which a token counts as expired (the vendor SDKs use 5 minutes)."""

VISIBLE_ASCII: Final = re.compile(r"[\x21-\x7e]+")
"""What a token (or a header that carries one) may be made of."""


def _check_secret(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    # Never echo the value: it is the secret.
    if not isinstance(value, str) or not VISIBLE_ASCII.fullmatch(value):
        raise ValueError("access token must be a non-empty string of visible ASCII characters")


def _check_expires_in(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("expires_in must be a non-negative integer")


@attrs.frozen(repr=False)
class AccessToken:
    """An access token (a JWT) as returned by ``POST /api/v1/access-token``.

    ``repr()`` and ``str()`` never show the secret; read :attr:`secret` only to send it.
    """

    _secret: str = attrs.field(alias="secret", repr=False, validator=_check_secret)
    expires_in: int = attrs.field(validator=_check_expires_in)
    """Lifetime in seconds, as sent by the server (``expires_in``)."""
    token_type: str = "Bearer"  # noqa: S105 (a scheme name, not a password)
    """Always ``"Bearer"`` per the documentation."""
    obtained_at: float = attrs.field(factory=time.time)
    """Wall-clock time (epoch seconds) the token was requested; the lifetime counts from here."""

    @property
    def secret(self) -> str:
        """The token itself, for the ``Authorization`` header and the WebSocket URL only."""
        return self._secret

    @property
    def expires_at(self) -> float:
        """Wall-clock time (epoch seconds) at which the token expires."""
        return self.obtained_at + self.expires_in

    def is_expired(self, now: float, margin: float = DEFAULT_REFRESH_MARGIN) -> bool:
        """Whether the token should be replaced at wall-clock time ``now``.

        True from ``margin`` seconds before expiry (5 minutes by default, as the SDKs do). The
        margin is capped at half the lifetime, so a short-lived token is still usable for a while.
        """
        effective_margin = min(margin, self.expires_in / 2)
        return now >= self.expires_at - effective_margin

    @classmethod
    def from_json(cls, data: object, *, obtained_at: float) -> AccessToken:
        """Build a token from a decoded ``POST /api/v1/access-token`` response body.

        Raises :class:`~polyai_messaging.core.RemoteProtocolError` (naming the field, never
        showing its value) if the body is not the documented shape.
        """
        where = "access-token response"
        if not isinstance(data, Mapping):
            raise RemoteProtocolError(f"{where} must be a JSON object, got {json_type(data)}")
        secret = required(data, "access_token", where)
        if not isinstance(secret, str) or not VISIBLE_ASCII.fullmatch(secret):
            raise RemoteProtocolError(
                f"must be a non-empty string of visible ASCII characters, got {json_type(secret)}",
                path="access_token",
            )
        expires_in = required(data, "expires_in", where)
        if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
            raise RemoteProtocolError(
                f"must be a positive integer, got {json_type(expires_in)}", path="expires_in"
            )
        token_type = data.get("token_type", "Bearer")
        if not isinstance(token_type, str):
            raise RemoteProtocolError(
                f"must be a string, got {json_type(token_type)}", path="token_type"
            )
        if token_type.casefold() != "bearer":
            raise RemoteProtocolError("unsupported token type (expected Bearer)", path="token_type")
        return cls(secret, expires_in, token_type, obtained_at)

    def __repr__(self) -> str:
        return (
            f"AccessToken(<redacted>, expires_in={self.expires_in}, "
            f"token_type={self.token_type!r}, obtained_at={self.obtained_at!r})"
        )

    __str__ = __repr__


@attrs.frozen
class SessionInfo:
    """A session created by ``POST /api/v1/sessions``."""

    session_id: str
    """The server's session id, for the WebSocket URL and reconnects."""
    streaming: bool
    """Whether streaming was requested (``streaming_enabled``)."""


def json_type(value: object) -> str:
    """The JSON type name of a decoded value, for error messages that must not show values."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string" if value else "empty string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def required(data: Mapping[str, object], key: str, where: str) -> object:
    """``data[key]``; a missing field raises :class:`~polyai_messaging.core.RemoteProtocolError`."""
    if key not in data:
        raise RemoteProtocolError(f"{where} is missing the field", path=key)
    return data[key]
