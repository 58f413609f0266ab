"""The typed errors of the REST calls, and which one an error answer gets (:ref:`protocol-rest`).

:class:`RestError` is the root. A non-2xx answer becomes the subclass picked by
:func:`error_class_for`: a documented error string selects its own class, anything else falls
back to a class per status. A network failure becomes :class:`TransportError`. Building the
error from a failed request, secrets kept out, is ``_failed_requests``'s part.

:mod:`polyai_messaging.rest` makes the calls and re-exports every public name here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import ClassVar, Final

from ..core import MessagingError
from ..driver import API_PREFIX

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
]


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
