"""One REST call on the wire: a JSON ``POST``, repeated as its :class:`RetryPolicy` says.

Every attempt of a call carries the call's one ``X-Polyai-Correlation-Id``; a 2xx answer must
be a JSON object; anything else becomes a :class:`RestError` (built by ``_failed_requests``,
which keeps the request's secrets out of it). Redirects are never followed, so a token header
cannot be forwarded to another host. :func:`http_client` is the client a call runs on when the
caller passes none.
"""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Final

import attrs
import httpx

from ..core import RemoteProtocolError
from ..driver import redact_url
from ..runtime import RedactingLogger, parse_http_date, parse_retry_after
from ._errors import Endpoint, RestError
from ._failed_requests import error_from_response, transport_error
from ._results import json_type
from ._retry import RetryPolicy

__all__ = ["DEFAULT_TIMEOUT", "Clock", "http_client", "logger", "new_http_client", "post"]

logger = RedactingLogger(logging.getLogger("polyai_messaging.rest"))
"""Every line through the one redaction rule, under the package's public name."""

Clock = Callable[[], float]
"""Returns wall-clock time in seconds since the epoch, like :func:`time.time`."""

DEFAULT_TIMEOUT: Final = httpx.Timeout(10.0)
"""Timeout of the client opened when the caller does not pass one."""

_CORRELATION_HEADER: Final = "X-Polyai-Correlation-Id"
_INVALID: Final = object()


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


@contextlib.asynccontextmanager
async def http_client(
    client: httpx.AsyncClient | None, ssl_context: ssl.SSLContext | None
) -> AsyncIterator[httpx.AsyncClient]:
    """``client`` as it is, or a client of our own (closed on exit) that verifies TLS with
    ``ssl_context`` (the system's trust store by default) and follows no redirect."""
    if client is not None:
        yield client
        return
    async with new_http_client(ssl_context) as owned:
        yield owned


def new_http_client(ssl_context: ssl.SSLContext | None) -> httpx.AsyncClient:
    """A client of our own (to close when done) that verifies TLS with ``ssl_context`` (the
    system's trust store by default) and follows no redirect."""
    verify: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
    return httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, follow_redirects=False, verify=verify)


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

    @classmethod
    def build(
        cls,
        endpoint: Endpoint,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        secrets: tuple[str, ...],
    ) -> _Request:
        """The request, with the JSON ``Accept`` and a fresh correlation id added."""
        correlation_id = str(uuid.uuid4())
        return cls(
            endpoint=endpoint,
            url=url,
            headers={**headers, "Accept": "application/json", _CORRELATION_HEADER: correlation_id},
            body=body,
            secrets=secrets,
            correlation_id=correlation_id,
            log_url=redact_url(url),
        )


@attrs.frozen
class _Failure:
    """A failed attempt: the error to retry on or raise, and the cause to chain (or ``None``)."""

    error: RestError
    cause: BaseException | None


async def post(
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
    request = _Request.build(endpoint, url, headers, body, secrets)
    async with http_client(client, None) as http:
        attempt = 0
        while True:
            attempt += 1
            sent_at = clock()
            logger.debug(
                "POST %s (attempt %d/%d, correlation id %s)",
                request.log_url,
                attempt,
                policy.max_attempts,
                request.correlation_id,
            )
            outcome = await _send_once(http, request, clock)
            if not isinstance(outcome, _Failure):
                return outcome, sent_at
            delay = policy.delay_for(outcome.error, attempt)
            if delay is None:
                # Raised here, outside any ``except`` block, so the only link to the httpx
                # exception is ``cause``, which ``transport_error`` drops if it shows a secret.
                raise outcome.error from outcome.cause
            await _wait_to_retry(policy, outcome.error, attempt + 1, delay)


async def _wait_to_retry(policy: RetryPolicy, error: RestError, attempt: int, delay: float) -> None:
    """Say that attempt number ``attempt`` comes after ``delay`` seconds, then wait them."""
    logger.info(
        "%s; retrying in %.2f s (attempt %d/%d)", error, delay, attempt, policy.max_attempts
    )
    if policy.on_retry is not None:
        policy.on_retry(error, attempt, delay)
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
    logger.debug("POST %s -> HTTP %d", request.log_url, response.status_code)
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
        raise RemoteProtocolError(f"{where} must be a JSON object, got {json_type(data)}")
    return data
