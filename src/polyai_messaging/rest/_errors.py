"""The typed errors of the REST calls, and how a failed call becomes one (:ref:`protocol-rest`).

:class:`RestError` is the root. A non-2xx answer becomes the subclass picked by
:func:`error_class_for`: a documented error string selects its own class, anything else falls
back to a class per status. A network failure becomes :class:`TransportError`.

Building an error is also where secrets are kept out of it: the server's error text is read from
the body, then scrubbed of the token that was sent (raw or escaped), stripped of control
characters and truncated before it reaches a message, an attribute or an exception chain.

:mod:`polyai_messaging.rest` makes the calls and re-exports every public name here.
"""

from __future__ import annotations

import enum
import json
import ssl
from collections.abc import Mapping
from typing import ClassVar, Final
from urllib.parse import quote, quote_plus

import httpx

from ..core import MessagingError
from ..driver import API_PREFIX, redact_text

__all__ = [
    "AccessTokenCreationError",
    "AuthenticationError",
    "BadRequestError",
    "ClientError",
    "ConnectorMissingHostError",
    "ConnectorTokenNotFoundError",
    "ConnectorValidationError",
    "Endpoint",
    "InvalidAccessTokenError",
    "MissingAccessTokenError",
    "MissingAuthenticationHeadersError",
    "RateLimitedError",
    "RequestParseError",
    "RestError",
    "ServerError",
    "SessionCreationError",
    "SessionNotFoundError",
    "TransportError",
    "error_class_for",
    "error_from_response",
    "transport_error",
]

_MAX_ERROR_STRING: Final = 256
_REDACTED: Final = "***"


# Endpoint lives with the errors rather than with the calls: every error carries one, and the
# table of documented error strings is keyed by it.
class Endpoint(enum.Enum):
    """The REST endpoint a request or an error belongs to."""

    ACCESS_TOKEN = "access-token"  # noqa: S105 (a path, not a password)
    """``POST /api/v1/access-token``."""
    SESSIONS = "sessions"
    """``POST /api/v1/sessions``."""

    @property
    def path(self) -> str:
        """The endpoint's path, e.g. ``/api/v1/sessions``."""
        return f"{API_PREFIX}/{self.value}"


# --------------------------------------------------------------------------------------------
# Errors


class RestError(MessagingError):
    """A REST call failed.

    Attributes: ``endpoint`` (:class:`Endpoint` or ``None``), ``status`` (HTTP status, ``None``
    for transport failures), ``error_string`` (the server's error text, read from the JSON
    ``message``, else ``error``, else the raw body; secrets scrubbed, truncated), ``retry_after``
    (seconds from a ``Retry-After`` header, or ``None``) and ``correlation_id`` (the
    ``X-Polyai-Correlation-Id`` sent with the request).
    """

    documented_string: ClassVar[str | None] = None
    """The documented error string this class stands for, if it stands for one."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: Endpoint | None = None,
        status: int | None = None,
        error_string: str = "",
        retry_after: float | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status
        self.error_string = error_string
        self.retry_after = retry_after
        self.correlation_id = correlation_id


class TransportError(RestError):
    """The request did not get an HTTP response (connection refused, timeout, TLS failure...).

    ``tls`` is true when the TLS handshake failed (a certificate that does not verify, a server
    that does not speak TLS): a setting to fix, which retrying does not change.
    """

    tls: bool = False


class ClientError(RestError):
    """A 4xx answer: the request was refused."""


class BadRequestError(ClientError):
    """400: required headers missing or body malformed."""


class AuthenticationError(ClientError):
    """401 (or 403, which the API does not document and is read the same): a token or the host
    identifier was refused."""


class SessionNotFoundError(ClientError):
    """404: the session does not exist or has expired."""


class RateLimitedError(ClientError):
    """429: rate limited; ``retry_after`` holds the parsed ``Retry-After`` (seconds) if any."""


class ServerError(RestError):
    """5xx: the server failed; retried with exponential backoff."""


class MissingAuthenticationHeadersError(AuthenticationError):
    """401 ``Missing authentication headers``: ``X-Token``/``X-Host`` missing, or a malformed
    ``Authorization`` header."""

    documented_string = "Missing authentication headers"


class ConnectorTokenNotFoundError(AuthenticationError):
    """401 ``Connector token does not exist``: the connector token is unknown."""

    documented_string = "Connector token does not exist"


class ConnectorValidationError(AuthenticationError):
    """401 ``Failed to validate connector``: ``X-Host`` does not match the registered host."""

    documented_string = "Failed to validate connector"


class ConnectorMissingHostError(AuthenticationError):
    """401 ``Connector missing host domain``: the connector has no host domain configured."""

    documented_string = "Connector missing host domain"


class InvalidAccessTokenError(AuthenticationError):
    """401 ``Invalid access token``: the access token is malformed, expired or tampered with."""

    documented_string = "Invalid access token"


class MissingAccessTokenError(BadRequestError):
    """400 ``Missing access token``: no ``Authorization`` header."""

    documented_string = "Missing access token"


class RequestParseError(BadRequestError):
    """400 ``Error parsing request``: the Create Session body is not valid JSON."""

    documented_string = "Error parsing request"


class AccessTokenCreationError(ServerError):
    """500 ``Failed to create access token``: internal error while minting; retried."""

    documented_string = "Failed to create access token"


class SessionCreationError(ServerError):
    """500 ``Failed to create session`` (or the SDKs' ``Error creating session``); retried."""

    documented_string = "Failed to create session"


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold().rstrip(".")


_DOCUMENTED_ERRORS: Final[tuple[tuple[Endpoint, int, type[RestError]], ...]] = (
    (Endpoint.ACCESS_TOKEN, 401, MissingAuthenticationHeadersError),
    (Endpoint.ACCESS_TOKEN, 401, ConnectorTokenNotFoundError),
    (Endpoint.ACCESS_TOKEN, 401, ConnectorValidationError),
    (Endpoint.ACCESS_TOKEN, 401, ConnectorMissingHostError),
    (Endpoint.ACCESS_TOKEN, 500, AccessTokenCreationError),
    (Endpoint.SESSIONS, 400, MissingAccessTokenError),
    (Endpoint.SESSIONS, 400, RequestParseError),
    (Endpoint.SESSIONS, 401, MissingAuthenticationHeadersError),
    (Endpoint.SESSIONS, 401, InvalidAccessTokenError),
    (Endpoint.SESSIONS, 500, SessionCreationError),
)

_ERROR_TABLE: Final[Mapping[tuple[Endpoint, int, str], type[RestError]]] = {
    **{
        (endpoint, status, _normalise(cls.documented_string or "")): cls
        for endpoint, status, cls in _DOCUMENTED_ERRORS
    },
    # The vendor SDKs also recognise this wording (Appendix B).
    (Endpoint.SESSIONS, 500, _normalise("Error creating session")): SessionCreationError,
}


def _status_class(status: int) -> type[RestError]:
    if status == 400:
        return BadRequestError
    if status in {401, 403}:
        return AuthenticationError
    if status == 404:
        return SessionNotFoundError
    if status == 429:
        return RateLimitedError
    if 400 <= status < 500:
        return ClientError
    if 500 <= status < 600:
        return ServerError
    return RestError


def error_class_for(endpoint: Endpoint, status: int, error_string: str) -> type[RestError]:
    """The exception class for an error answer.

    A documented ``error_string`` for that endpoint and status selects its own class (compared
    ignoring case, surrounding whitespace and a trailing full stop; 403 counts as 401 and any 5xx
    as 500); anything else gets the class for the status.
    """
    key_status = 401 if status == 403 else 500 if 500 <= status < 600 else status
    found = _ERROR_TABLE.get((endpoint, key_status, _normalise(error_string)))
    return found if found is not None else _status_class(status)


# --------------------------------------------------------------------------------------------
# Building errors from failed requests


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
