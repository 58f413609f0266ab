"""The two REST calls of the Messaging API: mint an access token, create a session (httpx).

Runs under trio and asyncio alike. Every non-2xx answer raises a :class:`RestError` subclass
chosen from the documented error strings; a network failure raises :class:`TransportError`.
:func:`connector_token_provider` mints tokens with a connector token, for trusted environments
(a backend, a CLI, tests).
"""

from ._calls import PLATFORMS, create_session, mint_access_token
from ._errors import (
    AccessTokenCreationError,
    AuthenticationError,
    BadRequestError,
    ClientError,
    ConnectorMissingHostError,
    ConnectorTokenNotFoundError,
    ConnectorValidationError,
    Endpoint,
    InvalidAccessTokenError,
    MissingAccessTokenError,
    MissingAuthenticationHeadersError,
    RateLimitedError,
    RequestParseError,
    RestError,
    ServerError,
    SessionCreationError,
    SessionNotFoundError,
    TransportError,
    error_class_for,
)
from ._http import DEFAULT_TIMEOUT, http_client
from ._maker import SessionMaker, connector_token_provider
from ._opening import Opening, SessionLoop, SessionOpener, open_session_function, opening
from ._results import DEFAULT_REFRESH_MARGIN, AccessToken, SessionInfo
from ._retry import RetryPolicy

__all__ = [
    "DEFAULT_REFRESH_MARGIN",
    "DEFAULT_TIMEOUT",
    "PLATFORMS",
    "AccessToken",
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
    "Opening",
    "RateLimitedError",
    "RequestParseError",
    "RestError",
    "RetryPolicy",
    "ServerError",
    "SessionCreationError",
    "SessionInfo",
    "SessionLoop",
    "SessionMaker",
    "SessionNotFoundError",
    "SessionOpener",
    "TransportError",
    "connector_token_provider",
    "create_session",
    "error_class_for",
    "http_client",
    "mint_access_token",
    "open_session_function",
    "opening",
]
