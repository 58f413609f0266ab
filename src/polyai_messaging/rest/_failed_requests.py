"""How a failed request becomes a :class:`RestError`, with the request's secrets kept out of it.

The server's error text is read from the body, then scrubbed of the token that was sent (raw or
escaped), stripped of control characters and truncated before it reaches a message, an attribute
or an exception chain. An httpx failure is chained as the cause only if it shows no secret.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from typing import Final
from urllib.parse import quote, quote_plus

import httpx

from ..driver import redact_text
from ._errors import Endpoint, RestError, TransportError, error_class_for

__all__ = ["error_from_response", "transport_error"]

_MAX_ERROR_STRING: Final = 256
_REDACTED: Final = "***"


def _secret_forms(secrets: tuple[str, ...]) -> list[str]:
    """Every spelling in which a server or httpx might echo a secret back, longest first.

    Longest first so that replacing one form never leaves part of a longer form behind.
    """
    forms = set()
    for secret in secrets:
        if secret:
            forms.update({secret, quote(secret), quote(secret, safe="")})
            forms.update({quote_plus(secret), quote_plus(secret, safe="")})
            forms.add(json.dumps(secret)[1:-1])
            forms.update({repr(secret)[1:-1], repr(secret.encode())[2:-1]})
    return sorted(forms, key=len, reverse=True)


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    """Replace every occurrence of a secret (raw, URL-, JSON- or repr-escaped) with ``***``."""
    for form in _secret_forms(secrets):
        text = text.replace(form, _REDACTED)
    return text


def _sanitise(text: str, secrets: tuple[str, ...]) -> str:
    """Scrub secrets (the ones we sent, and any ``access_token=...``-like pair, by the library's
    one redaction rule), replace control characters, trim and truncate a server-supplied text."""
    text = redact_text(_scrub(text, secrets))
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    if len(text) > _MAX_ERROR_STRING:
        text = text[: _MAX_ERROR_STRING - 1] + "…"
    return text


def _error_text(response: httpx.Response) -> str:
    """The error text of a failed response: JSON ``message``, else ``error``, else the body (the
    API documents the strings, not the body's shape)."""
    try:
        data: object = json.loads(response.content)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, Mapping):
        for key in ("message", "error"):
            value = data.get(key)
            if isinstance(value, Mapping):
                value = value.get("message")
            if isinstance(value, str) and value.strip():
                return value.strip()
    elif isinstance(data, str) and data.strip():
        return data.strip()
    return response.text.strip()


def error_from_response(
    endpoint: Endpoint,
    response: httpx.Response,
    *,
    secrets: tuple[str, ...],
    correlation_id: str,
    retry_after: float | None,
) -> RestError:
    """The :class:`RestError` for a non-2xx ``response`` to a request on ``endpoint``.

    The class comes from :func:`error_class_for` applied to the raw error text (so a documented
    string is still recognised); the message and ``error_string`` carry that text only after
    ``secrets`` are scrubbed from it. ``retry_after`` is the already parsed ``Retry-After``.
    """
    status = response.status_code
    raw = _error_text(response)
    cls = error_class_for(endpoint, status, raw)
    error_string = _sanitise(raw, secrets)
    detail = error_string or response.reason_phrase or "no error message"
    if 300 <= status < 400:
        detail += " (redirects are not followed)"
    return cls(
        f"POST {endpoint.path} failed with HTTP {status}: {detail}",
        endpoint=endpoint,
        status=status,
        error_string=error_string,
        retry_after=retry_after,
        correlation_id=correlation_id,
    )


def transport_error(
    endpoint: Endpoint, exc: httpx.TransportError, secrets: tuple[str, ...], correlation_id: str
) -> tuple[TransportError, BaseException | None]:
    """Wrap an httpx failure as a :class:`TransportError`, paired with the cause to chain.

    The original exception is returned as the cause only if neither its text nor its ``repr``
    shows a secret; otherwise the cause is ``None`` and must be raised ``from None``.
    """
    text = f"{exc!s} {exc!r}"
    leaks = any(form in text for form in _secret_forms(secrets))
    detail = _sanitise(str(exc), secrets) or "no details"
    error = TransportError(
        f"POST {endpoint.path} failed: {type(exc).__name__}: {detail}",
        endpoint=endpoint,
        correlation_id=correlation_id,
    )
    error.tls = _caused_by_tls(exc)
    return error, None if leaks else exc


def _caused_by_tls(exc: BaseException) -> bool:
    """Whether an :class:`ssl.SSLError` is in ``exc``'s chain (httpx wraps the one raised)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
