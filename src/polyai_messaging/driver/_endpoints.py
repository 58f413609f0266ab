"""Where the Messaging API lives: clusters, base URLs, REST and WebSocket URLs.

Everything here is pure: no sockets, no clocks, no environment. The functions only build and check
strings.

Transport security (:ref:`protocol-security`): the access token travels in the WebSocket query
string and the connector token in a REST header, so only TLS (``https://`` / ``wss://``) is
allowed. Plain ``http://`` / ``ws://`` is accepted only for a loopback host (``127.0.0.0/8``,
``::1``, ``localhost``), which is what a local emulator uses. Violations raise
:class:`~polyai_messaging.core.LocalProtocolError`.

No function here puts a token, or a URL carrying one, into an exception message. Use
:func:`redact_url` before logging a WebSocket URL.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from typing import NamedTuple
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from ..core import LocalProtocolError

__all__ = [
    "API_PREFIX",
    "DEFAULT_BASE_URL",
    "WEBSOCKET_PATH",
    "Cluster",
    "access_token_url",
    "base_url_for",
    "check_transport_security",
    "is_loopback_host",
    "redact_text",
    "redact_url",
    "sessions_url",
    "websocket_url",
]

DEFAULT_BASE_URL = "https://messaging.poly.ai"
"""The region-agnostic default host, listed by the latest revision of the vendor's documentation
(an earlier one said there was none; :ref:`protocol-endpoints`)."""

API_PREFIX = "/api/v1"
"""Path prefix of the REST endpoints, relative to the base URL."""

WEBSOCKET_PATH = "/ws"
"""Path of the WebSocket endpoint, relative to the base URL."""

_SECURE_SCHEMES = {"https": "wss", "wss": "wss"}
_PLAIN_SCHEMES = {"http": "ws", "ws": "ws"}
_REST_SCHEMES = {"https": "https", "http": "http"}

# Query parameter names whose values are secrets (matched case-insensitively, anywhere in the name).
_SENSITIVE_PARAM = re.compile(r"token|secret|pass|pwd|sig|auth|jwt|key|cred", re.IGNORECASE)
_REDACTED = "***"


class Cluster(enum.Enum):
    """A regional Messaging API deployment (:ref:`protocol-endpoints`)."""

    US_1 = "us-1"
    """US mainland: ``https://messaging.us-1.poly.ai``."""
    UK_1 = "uk-1"
    """UK: ``https://messaging.uk-1.poly.ai``."""
    EUW_1 = "euw-1"
    """EU West: ``https://messaging.euw-1.poly.ai``."""


def base_url_for(cluster: Cluster | str) -> str:
    """Return ``https://messaging.<cluster>.poly.ai`` for a :class:`Cluster` or its name.

    Raises :class:`ValueError` for an unknown cluster name.
    """
    return f"https://messaging.{Cluster(cluster).value}.poly.ai"


class _Base(NamedTuple):
    scheme: str
    netloc: str
    host: str
    path: str


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a hostname or IP literal, brackets optional) is a loopback address.

    Only ``localhost``, ``127.0.0.0/8`` and ``::1`` (also as an IPv4-mapped address) count; names
    that merely resolve to loopback do not.
    """
    candidate = host.strip("[]").lower()
    if candidate in {"localhost", "localhost."}:
        return True
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _split_base(base_url: str, allowed: dict[str, str], what: str) -> _Base:
    """Parse and check a base URL; map its scheme through ``allowed``; enforce TLS rules."""
    if not isinstance(base_url, str):
        raise TypeError(f"{what} base URL must be a str, not {type(base_url).__name__}")
    try:
        parts = urlsplit(base_url.strip())
        host = parts.hostname or ""
        _ = parts.port  # validates the port
    except ValueError:
        raise LocalProtocolError(f"{what} base URL is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in allowed:
        expected = ", ".join(f"{s}://" for s in allowed)
        raise LocalProtocolError(f"{what} base URL must use one of {expected}")
    if not host:
        raise LocalProtocolError(f"{what} base URL has no host")
    if parts.username is not None or parts.password is not None:
        raise LocalProtocolError(f"{what} base URL must not contain credentials")
    if parts.query or parts.fragment:
        raise LocalProtocolError(f"{what} base URL must not have a query string or fragment")
    if scheme in _PLAIN_SCHEMES and not is_loopback_host(host):
        raise LocalProtocolError(
            f"refusing plain {scheme}:// to non-loopback host {host!r}: "
            "tokens must only travel over TLS (use https:// or wss://)"
        )
    netloc = parts.netloc.rpartition("@")[2]
    return _Base(allowed[scheme], netloc, host, parts.path.rstrip("/"))


def check_transport_security(base_url: str) -> None:
    """Refuse a base URL that would send tokens without TLS.

    ``https://`` and ``wss://`` are accepted; ``http://`` and ``ws://`` only for a loopback host.
    Any other scheme, a missing host, embedded credentials, a query string or a fragment raise
    :class:`~polyai_messaging.core.LocalProtocolError`.
    """
    _split_base(base_url, {**_SECURE_SCHEMES, **_PLAIN_SCHEMES}, "the")


def _rest_url(base_url: str, endpoint: str) -> str:
    base = _split_base(base_url, _REST_SCHEMES, "REST")
    return urlunsplit((base.scheme, base.netloc, f"{base.path}{API_PREFIX}/{endpoint}", "", ""))


def access_token_url(base_url: str) -> str:
    """URL of ``POST /api/v1/access-token`` under ``base_url`` (an ``https://`` URL).

    Trailing slashes of the base URL are ignored; a path prefix is kept. Plain ``http://`` is
    accepted only for loopback hosts (see :func:`check_transport_security`).
    """
    return _rest_url(base_url, "access-token")


def sessions_url(base_url: str) -> str:
    """URL of ``POST /api/v1/sessions`` under ``base_url``; see :func:`access_token_url`."""
    return _rest_url(base_url, "sessions")


def _quote(value: str) -> str:
    return quote(value, safe="")


def websocket_url(base_url: str, session_id: str, access_token: str, cursor: int = 0) -> str:
    """The WebSocket URL ``wss://<host>/ws?session_id=..&access_token=..[&cursor=n]``.

    ``base_url`` is the REST base URL (``https://`` becomes ``wss://``, loopback ``http://``
    becomes ``ws://``) or an explicit ``wss://``/``ws://`` URL (which may already end in ``/ws``);
    its path prefix is kept and trailing slashes are ignored. ``session_id`` and ``access_token``
    are percent-encoded. ``cursor`` is sent as a plain integer and omitted when 0.

    The result carries the access token: pass it through :func:`redact_url` before logging.
    """
    base = _split_base(base_url, {**_SECURE_SCHEMES, **_PLAIN_SCHEMES}, "WebSocket")
    if not isinstance(session_id, str) or not session_id:
        raise LocalProtocolError("session_id must be a non-empty string")
    if not isinstance(access_token, str) or not access_token:
        raise LocalProtocolError("access_token must be a non-empty string")
    if isinstance(cursor, bool) or not isinstance(cursor, int):
        raise TypeError(f"cursor must be an int, not {type(cursor).__name__}")
    if cursor < 0:
        raise LocalProtocolError(f"cursor must be a non-negative integer, got {cursor}")
    query = f"session_id={_quote(session_id)}&access_token={_quote(access_token)}"
    if cursor:
        query += f"&cursor={cursor}"
    path = base.path
    if not (_explicit_ws(base_url) and path.endswith(WEBSOCKET_PATH)):
        path += WEBSOCKET_PATH
    return urlunsplit((base.scheme, base.netloc, path, query, ""))


def _explicit_ws(url: str) -> bool:
    return url.strip().lower().startswith(("ws://", "wss://"))


def _redact_pairs(text: str) -> str:
    """Redact the values of sensitive ``name=value`` pairs in a query string or fragment."""
    pieces = []
    for piece in text.split("&"):
        name, sep, value = piece.partition("=")
        if sep and value and _SENSITIVE_PARAM.search(unquote_plus(name)):
            pieces.append(f"{name}={_REDACTED}")
        else:
            pieces.append(piece)
    return "&".join(pieces)


# A ``name=value`` pair anywhere in free text (a log line quoting a request target).
_PAIR_IN_TEXT = re.compile(r"([A-Za-z0-9_.%-]+)=([^&\s'\"#]+)")


def redact_text(text: str) -> str:
    """Return ``text`` with the values of sensitive ``name=value`` pairs replaced by ``***``.

    For free text such as a log line that quotes a request target; the same names count as
    sensitive as in :func:`redact_url`.
    """

    def hide(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"{name}={_REDACTED}" if _SENSITIVE_PARAM.search(unquote_plus(name)) else match[0]

    return _PAIR_IN_TEXT.sub(hide, text)


def redact_url(url: str) -> str:
    """Return ``url`` with secrets replaced by ``***``, for logging.

    The values of ``access_token`` and of every other token-like query or fragment parameter
    (names containing ``token``, ``secret``, ``key``, ``auth``, ``sig``, ...) are replaced, as is
    any ``user:password@`` part. Everything else is kept byte for byte. A string that cannot be
    parsed as a URL is replaced entirely.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL, redacted>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{_REDACTED}@{netloc.rpartition('@')[2]}"
    return urlunsplit(
        (
            parts.scheme,
            netloc,
            parts.path,
            _redact_pairs(parts.query) if parts.query else "",
            _redact_pairs(parts.fragment) if parts.fragment else "",
        )
    )
