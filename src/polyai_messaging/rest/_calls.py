"""The two REST calls of the Messaging API: mint an access token, create a session.

Built on :class:`httpx.AsyncClient`, so it runs under trio and asyncio alike. Pass your own
``client`` to reuse connections (and to plug in a transport for tests); otherwise a short-lived
client is opened per call. Redirects are never followed, so a token header cannot be forwarded to
another host.

Secrets: the connector token is sent only as ``X-Token`` to ``POST /api/v1/access-token``; the
access token only as ``Authorization: Bearer`` to ``POST /api/v1/sessions``. Neither is logged,
and neither appears in an exception message or ``repr``, even if a server echoes it back.

Errors: a non-2xx answer raises a :class:`RestError` subclass chosen from the documented error
strings, falling back to a class per status (:ref:`protocol-rest`). A 2xx answer whose body is not
the documented JSON raises :class:`~polyai_messaging.core.RemoteProtocolError`. A network
failure raises :class:`TransportError`. Retries follow :class:`RetryPolicy`. The error classes
(and :class:`Endpoint`) are defined in :mod:`polyai_messaging.rest` and re-exported here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Final

import anyio
import attrs
import httpx

from ..core import LocalProtocolError, RemoteProtocolError
from ..driver import Backoff, access_token_url, redact_url, sessions_url
from ..runtime import RedactingLogger, parse_http_date, parse_retry_after
from ._errors import (
    Endpoint,
    RateLimitedError,
    RestError,
    ServerError,
    TransportError,
    error_from_response,
    transport_error,
)

__all__ = [
    "DEFAULT_REFRESH_MARGIN",
    "DEFAULT_TIMEOUT",
    "PLATFORMS",
    "AccessToken",
    "RetryPolicy",
    "SessionInfo",
    "create_session",
    "mint_access_token",
]

_logger = RedactingLogger(logging.getLogger("polyai_messaging.rest"))
"""Every line through the one redaction rule, under the package's public name."""

Clock = Callable[[], float]
"""Returns wall-clock time in seconds since the epoch, like :func:`time.time`."""

Sleep = Callable[[float], Awaitable[object]]
"""Waits the given number of seconds, like :func:`anyio.sleep`."""

DEFAULT_REFRESH_MARGIN: Final = 300.0
"""Seconds before expiry at which a token counts as expired (the vendor SDKs use 5 minutes)."""

DEFAULT_TIMEOUT: Final = httpx.Timeout(10.0)
"""Timeout of the client opened when the caller does not pass one."""

PLATFORMS: Final = frozenset({"web", "ios", "android", "ios-web", "android-web", "custom"})
"""The documented values of the ``platform`` field of Create Session (:ref:`protocol-rest`)."""

_CORRELATION_HEADER: Final = "X-Polyai-Correlation-Id"
_VISIBLE_ASCII: Final = re.compile(r"[\x21-\x7e]+")
_HEADER_TEXT: Final = re.compile(r"[\x20-\x7e]+")
_INVALID: Final = object()


# --------------------------------------------------------------------------------------------
# Values


def _check_secret(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    # Never echo the value: it is the secret.
    if not isinstance(value, str) or not _VISIBLE_ASCII.fullmatch(value):
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
            raise RemoteProtocolError(f"{where} must be a JSON object, got {_json_type(data)}")
        secret = _required(data, "access_token", where)
        if not isinstance(secret, str) or not _VISIBLE_ASCII.fullmatch(secret):
            raise RemoteProtocolError(
                f"must be a non-empty string of visible ASCII characters, got {_json_type(secret)}",
                path="access_token",
            )
        expires_in = _required(data, "expires_in", where)
        if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in <= 0:
            raise RemoteProtocolError(
                f"must be a positive integer, got {_json_type(expires_in)}", path="expires_in"
            )
        token_type = data.get("token_type", "Bearer")
        if not isinstance(token_type, str):
            raise RemoteProtocolError(
                f"must be a string, got {_json_type(token_type)}", path="token_type"
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


def _check_attempts(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_attempts must be an integer >= 1, got {value!r}")


# attrs' comparisons are false for NaN, so these refuse it too.
_NON_NEGATIVE: Final = attrs.validators.ge(0.0)
_FRACTION: Final = attrs.validators.and_(attrs.validators.ge(0.0), attrs.validators.le(1.0))


@attrs.frozen
class RetryPolicy:
    """When and how long to wait before repeating a failed REST call.

    5xx answers (and, by default, transport failures) are retried with exponential backoff:
    :class:`~polyai_messaging.driver.Backoff` from ``base_delay`` to ``max_delay`` after failed
    attempt ``n``, its jitter drawn from ``rng``. A 5xx ``Retry-After`` is honoured instead,
    within the cap.
    429 waits for ``Retry-After`` (``rate_limit_default_delay`` if absent, capped at
    ``rate_limit_max_delay``). Other 4xx answers, and TLS handshake failures (a certificate that
    does not verify), are never retried. ``max_attempts`` counts the first try.
    """

    max_attempts: int = attrs.field(default=3, validator=_check_attempts)
    base_delay: float = attrs.field(default=1.0, validator=_NON_NEGATIVE)
    max_delay: float = attrs.field(default=30.0, validator=_NON_NEGATIVE)
    jitter: float = attrs.field(default=0.2, validator=_FRACTION)
    rate_limit_default_delay: float = attrs.field(default=5.0, validator=_NON_NEGATIVE)
    rate_limit_max_delay: float = attrs.field(default=30.0, validator=_NON_NEGATIVE)
    retry_transport_errors: bool = True
    rng: random.Random = attrs.field(factory=random.Random, eq=False, repr=False)
    """Source of jitter; inject a seeded one for reproducible delays."""
    sleep: Sleep = attrs.field(default=anyio.sleep, eq=False, repr=False)
    """Async sleep; the default works under trio and asyncio. Inject one to record delays."""
    on_retry: Callable[[RestError, int, float], None] | None = attrs.field(
        default=None, eq=False, repr=False
    )
    """Called before each wait with the error, the number of the attempt to come (2 for the
    first retry) and the delay in seconds: where a program shows progress (``connecting…
    retry 2 of 3 in 1.8 s``) instead of staying silent through the retries."""

    @classmethod
    def no_retry(cls) -> RetryPolicy:
        """A policy that makes exactly one attempt."""
        return cls(max_attempts=1)

    def backoff_delay(self, attempt: int) -> float:
        """Jittered delay after failed attempt number ``attempt`` (1-based); never above the cap."""
        backoff = Backoff(base=self.base_delay, cap=self.max_delay, jitter=self.jitter)
        return backoff.delay(max(attempt, 1), self.rng.random())

    def rate_limit_delay(self, retry_after: float | None) -> float:
        """Delay after a 429 carrying ``retry_after`` seconds (``None`` if absent or invalid)."""
        delay = self.rate_limit_default_delay if retry_after is None else retry_after
        return min(self.rate_limit_max_delay, max(0.0, delay))

    def delay_for(self, error: RestError, attempt: int) -> float | None:
        """Seconds to wait before retrying after ``error`` on attempt ``attempt``, or ``None``
        to give up and raise it."""
        if attempt >= self.max_attempts:
            return None
        if isinstance(error, RateLimitedError):
            return self.rate_limit_delay(error.retry_after)
        if isinstance(error, ServerError):
            if error.retry_after is not None:
                return min(self.max_delay, max(0.0, error.retry_after))
            return self.backoff_delay(attempt)
        if isinstance(error, TransportError) and self.retry_transport_errors and not error.tls:
            return self.backoff_delay(attempt)
        return None


# --------------------------------------------------------------------------------------------
# Helpers


def _json_type(value: object) -> str:
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


def _required(data: Mapping[str, object], key: str, where: str) -> object:
    if key not in data:
        raise RemoteProtocolError(f"{where} is missing the field", path=key)
    return data[key]


def _server_now(response: httpx.Response, clock: Clock) -> float:
    """The server's idea of now (its ``Date`` header), else ours; avoids clock skew."""
    date = response.headers.get("Date")
    parsed = parse_http_date(date) if date is not None else None
    return parsed if parsed is not None else clock()


def _retry_after(response: httpx.Response, clock: Clock) -> float | None:
    """The parsed ``Retry-After`` of an error answer, or ``None`` if it sent none."""
    header = response.headers.get("Retry-After")
    if header is None:
        return None
    return parse_retry_after(header, now=_server_now(response, clock))


def _check_header_value(value: object, what: str) -> str:
    # Never echo the value: it may be a secret.
    if not isinstance(value, str) or not _VISIBLE_ASCII.fullmatch(value):
        raise LocalProtocolError(f"{what} must be a non-empty string of visible ASCII characters")
    return value


@contextlib.asynccontextmanager
async def _client_scope(client: httpx.AsyncClient | None) -> AsyncIterator[httpx.AsyncClient]:
    if client is not None:
        yield client
        return
    async with httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, follow_redirects=False) as owned:
        yield owned


# No attrs ``repr``: the headers, the body and the secrets hold tokens, and a traceback that shows
# locals must not print them.
@attrs.frozen(repr=False)
class _Request:
    """One REST request: what every attempt sends, and what its errors must not show."""

    endpoint: Endpoint
    url: str
    headers: Mapping[str, str]
    body: bytes
    secrets: tuple[str, ...]
    """The tokens this request carries, scrubbed from any error it produces."""
    correlation_id: str
    log_url: str
    """``url`` with any token redacted, for log lines."""


@attrs.frozen
class _Failure:
    """A failed attempt: the error to retry on or raise, and the cause to chain (or ``None``)."""

    error: RestError
    cause: BaseException | None


async def _post(
    endpoint: Endpoint,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    client: httpx.AsyncClient | None,
    retry: RetryPolicy | None,
    clock: Clock,
    secrets: tuple[str, ...],
) -> tuple[Mapping[str, object], float]:
    """POST with retries; return the decoded JSON object and the clock time of the good attempt."""
    policy = retry if retry is not None else RetryPolicy()
    correlation_id = str(uuid.uuid4())
    request = _Request(
        endpoint=endpoint,
        url=url,
        headers={**headers, "Accept": "application/json", _CORRELATION_HEADER: correlation_id},
        body=body,
        secrets=secrets,
        correlation_id=correlation_id,
        log_url=redact_url(url),
    )
    async with _client_scope(client) as http:
        attempt = 0
        while True:
            attempt += 1
            sent_at = clock()
            _logger.debug(
                "POST %s (attempt %d/%d, correlation id %s)",
                request.log_url,
                attempt,
                policy.max_attempts,
                correlation_id,
            )
            outcome = await _send_once(http, request, clock)
            if not isinstance(outcome, _Failure):
                return outcome, sent_at
            delay = policy.delay_for(outcome.error, attempt)
            if delay is None:
                # Raised here, outside any ``except`` block, so the only link to the httpx
                # exception is ``cause``, which ``transport_error`` drops if it shows a secret.
                raise outcome.error from outcome.cause
            _logger.info(
                "%s; retrying in %.2f s (attempt %d/%d)",
                outcome.error,
                delay,
                attempt + 1,
                policy.max_attempts,
            )
            if policy.on_retry is not None:
                policy.on_retry(outcome.error, attempt + 1, delay)
            await policy.sleep(delay)


async def _send_once(
    http: httpx.AsyncClient, request: _Request, clock: Clock
) -> Mapping[str, object] | _Failure:
    """Send ``request`` once: the decoded JSON object of a 2xx answer, else the failure."""
    try:
        response = await http.post(
            request.url, content=request.body, headers=request.headers, follow_redirects=False
        )
    except httpx.TransportError as exc:
        error, cause = transport_error(
            request.endpoint, exc, request.secrets, request.correlation_id
        )
        return _Failure(error, cause)
    _logger.debug("POST %s -> HTTP %d", request.log_url, response.status_code)
    if response.is_success:
        return _json_object(response, request.endpoint)
    return _Failure(
        error_from_response(
            request.endpoint,
            response,
            secrets=request.secrets,
            correlation_id=request.correlation_id,
            retry_after=_retry_after(response, clock),
        ),
        None,
    )


def _json_object(response: httpx.Response, endpoint: Endpoint) -> Mapping[str, object]:
    where = f"{endpoint.value} response"
    try:
        data: object = json.loads(response.content)
    except (ValueError, RecursionError):
        data = _INVALID
    if data is _INVALID:
        # Raised outside the ``except`` block: the decoder error holds the body, which may hold a
        # token, and must not even be reachable as ``__context__``.
        raise RemoteProtocolError(f"{where} (HTTP {response.status_code}) is not valid JSON")
    if not isinstance(data, dict):
        raise RemoteProtocolError(f"{where} must be a JSON object, got {_json_type(data)}")
    return data


# --------------------------------------------------------------------------------------------
# The calls


async def mint_access_token(
    base_url: str,
    connector_token: str,
    host: str,
    *,
    client: httpx.AsyncClient | None = None,
    retry: RetryPolicy | None = None,
    clock: Clock = time.time,
) -> AccessToken:
    """Exchange a connector token for an access token: ``POST /api/v1/access-token``.

    Sends ``X-Token: <connector_token>``, ``X-Host: <host>``, ``Content-Type: application/json``
    and the body ``{}``. This is the only request that ever carries the connector token, which
    belongs on a trusted backend (:ref:`protocol-security`). ``obtained_at`` of the result is
    ``clock()`` at the start of the successful attempt.

    Raises :class:`RestError` subclasses for error answers and network failures,
    :class:`~polyai_messaging.core.RemoteProtocolError` for a malformed success body and
    :class:`~polyai_messaging.core.LocalProtocolError` for an insecure ``base_url`` or a
    token/host that cannot be sent as a header.
    """
    url = access_token_url(base_url)
    connector_token = _check_header_value(connector_token, "connector token")
    host = _check_header_value(host, "host identifier")
    headers = {"X-Token": connector_token, "X-Host": host, "Content-Type": "application/json"}
    data, obtained_at = await _post(
        Endpoint.ACCESS_TOKEN,
        url,
        headers,
        b"{}",
        client=client,
        retry=retry,
        clock=clock,
        secrets=(connector_token,),
    )
    token = AccessToken.from_json(data, obtained_at=obtained_at)
    _logger.debug("obtained %r", token)
    return token


async def create_session(
    base_url: str,
    token: AccessToken,
    *,
    streaming: bool = False,
    platform: str = "custom",
    user_agent: str | None = None,
    client: httpx.AsyncClient | None = None,
    retry: RetryPolicy | None = None,
    clock: Clock = time.time,
) -> SessionInfo:
    """Create a session: ``POST /api/v1/sessions`` (:ref:`protocol-rest`).

    Sends ``Authorization: Bearer <token>``, ``Content-Type: application/json``, the body
    ``{"streaming_enabled": streaming, "platform": platform}`` and, if given, ``User-Agent``.
    ``platform`` must be one of :data:`PLATFORMS` (:class:`ValueError` otherwise). ``clock`` is
    only used to interpret an HTTP-date ``Retry-After`` when the server sends no ``Date``.

    Raises like :func:`mint_access_token`.
    """
    url = sessions_url(base_url)
    if not isinstance(token, AccessToken):
        raise TypeError(f"token must be an AccessToken, not {type(token).__name__}")
    if not isinstance(streaming, bool):
        raise TypeError(f"streaming must be a bool, not {type(streaming).__name__}")
    if platform not in PLATFORMS:
        raise ValueError(f"platform must be one of {sorted(PLATFORMS)}, got {platform!r}")
    headers = {"Authorization": f"Bearer {token.secret}", "Content-Type": "application/json"}
    if user_agent is not None:
        if not isinstance(user_agent, str) or not _HEADER_TEXT.fullmatch(user_agent.strip()):
            raise ValueError("user_agent must be non-empty printable ASCII")
        headers["User-Agent"] = user_agent.strip()
    body = json.dumps({"streaming_enabled": streaming, "platform": platform}, separators=(",", ":"))
    data, _ = await _post(
        Endpoint.SESSIONS,
        url,
        headers,
        body.encode(),
        client=client,
        retry=retry,
        clock=clock,
        secrets=(token.secret,),
    )
    session_id = _required(data, "session_id", "sessions response")
    if not isinstance(session_id, str) or not session_id:
        raise RemoteProtocolError(
            f"must be a non-empty string, got {_json_type(session_id)}", path="session_id"
        )
    _logger.debug("created session %s (streaming=%s)", session_id, streaming)
    return SessionInfo(session_id=session_id, streaming=streaming)
