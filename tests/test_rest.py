"""Tests for ``polyai_messaging.rest`` against a fake server (``httpx.MockTransport``).

No real network: every request goes to a handler in this file, except one test that connects to a
closed loopback port. No real sleeping: retry delays go to a recording sleep function.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import random
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote, quote_plus

import attrs
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyai_messaging import rest
from polyai_messaging.core import LocalProtocolError, MessagingError, RemoteProtocolError
from polyai_messaging.driver import websocket_url
from polyai_messaging.rest import (
    PLATFORMS,
    AccessToken,
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
    RetryPolicy,
    ServerError,
    SessionCreationError,
    SessionInfo,
    SessionNotFoundError,
    TransportError,
    create_session,
    error_class_for,
    mint_access_token,
)
from polyai_messaging.runtime import parse_retry_after

BASE = "https://messaging.us-1.poly.ai"
TOKEN_URL = f"{BASE}/api/v1/access-token"
SESSIONS_URL = f"{BASE}/api/v1/sessions"
CONNECTOR = "conn_TOKEN-abc123"
HOST = "https://www.yourcompany.com"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
SESSION_ID = "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
NOW = 1_700_000_000.0
AT = Endpoint.ACCESS_TOKEN
SE = Endpoint.SESSIONS

Reply = httpx.Response | Exception


def ok_token(token: str = JWT, expires_in: int = 86400) -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}
    )


def tok(**fields: object) -> httpx.Response:
    """A 200 access-token answer: ``access_token`` defaults to JWT, other fields as given."""
    return httpx.Response(200, json={"access_token": JWT, **fields})


def ok_session(session_id: str = SESSION_ID) -> httpx.Response:
    return httpx.Response(200, json={"session_id": session_id})


def fail(status: int, text: str = "", headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": text, "message": text} if text else None
    return httpx.Response(status, json=body, headers=headers)


class FakeServer:
    """Replies from a script (one reply per request; the last one repeats) and records requests."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


class Sleeps:
    """A recording replacement for ``anyio.sleep``."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def policy(sleeps: Sleeps, **kwargs: Any) -> RetryPolicy:
    return RetryPolicy(sleep=sleeps, jitter=0.0, **kwargs)


def clock() -> float:
    return NOW


def a_token(secret: str = JWT) -> AccessToken:
    return AccessToken(secret, 86400, obtained_at=NOW)


async def mint(server: FakeServer, sleeps: Sleeps | None = None, **kwargs: Any) -> AccessToken:
    async with server.client() as client:
        return await mint_access_token(
            BASE,
            kwargs.pop("connector_token", CONNECTOR),
            kwargs.pop("host", HOST),
            client=client,
            retry=policy(sleeps or Sleeps(), **kwargs.pop("retry", {})),
            clock=clock,
            **kwargs,
        )


async def create(server: FakeServer, sleeps: Sleeps | None = None, **kwargs: Any) -> SessionInfo:
    async with server.client() as client:
        return await create_session(
            BASE,
            kwargs.pop("token", a_token()),
            client=client,
            retry=policy(sleeps or Sleeps(), **kwargs.pop("retry", {})),
            clock=clock,
            **kwargs,
        )


async def call(
    endpoint: Endpoint, server: FakeServer, sleeps: Sleeps | None = None, **kwargs: Any
) -> object:
    if endpoint is Endpoint.ACCESS_TOKEN:
        return await mint(server, sleeps, **kwargs)
    return await create(server, sleeps, **kwargs)


# --- access token: request and response ----------------------------------------------------------


async def test_mint_sends_documented_request() -> None:
    server = FakeServer(ok_token())
    token = await mint(server)
    [request] = server.requests
    assert request.method == "POST"
    assert str(request.url) == TOKEN_URL
    assert request.headers["X-Token"] == CONNECTOR
    assert request.headers["X-Host"] == HOST
    assert request.headers["Content-Type"] == "application/json"
    assert request.content == b"{}"
    assert "Authorization" not in request.headers
    uuid.UUID(request.headers["X-Polyai-Correlation-Id"])
    assert token == AccessToken(JWT, 86400, "Bearer", NOW)
    assert token.secret == JWT
    assert token.expires_at == NOW + 86400


async def test_mint_uses_the_clock_of_the_successful_attempt() -> None:
    times = iter([10.0, 20.0, 30.0])
    server = FakeServer(fail(500), ok_token())
    async with server.client() as client:
        token = await mint_access_token(
            BASE, CONNECTOR, HOST, client=client, retry=policy(Sleeps()), clock=lambda: next(times)
        )
    assert token.obtained_at == 20.0


async def test_mint_tolerates_missing_token_type_and_extra_fields() -> None:
    server = FakeServer(
        httpx.Response(200, json={"access_token": JWT, "expires_in": 60, "scope": "x"})
    )
    token = await mint(server)
    assert token.token_type == "Bearer"
    assert token.expires_in == 60


async def test_mint_accepts_loopback_http() -> None:
    server = FakeServer(ok_token())
    async with server.client() as client:
        await mint_access_token("http://127.0.0.1:8080/", CONNECTOR, HOST, client=client)
    assert str(server.requests[0].url) == "http://127.0.0.1:8080/api/v1/access-token"


@pytest.mark.parametrize("base", ["http://messaging.us-1.poly.ai", "ws://127.0.0.1", "ftp://x"])
async def test_insecure_base_url_refused_before_sending(base: str) -> None:
    server = FakeServer(ok_token())
    async with server.client() as client:
        with pytest.raises(LocalProtocolError) as info:
            await mint_access_token(base, CONNECTOR, HOST, client=client)
        assert CONNECTOR not in str(info.value)
        with pytest.raises(LocalProtocolError):
            await create_session(base, a_token(), client=client)
    assert server.requests == []


@pytest.mark.parametrize(
    "bad", ["", "has space", "new\nline", "tab\t", "caf\u00e9", "x\r\nX-Evil: 1", "\x00"]
)
async def test_unsendable_connector_token_or_host_refused(bad: str) -> None:
    server = FakeServer(ok_token())
    with pytest.raises(LocalProtocolError, match="connector token") as info:
        await mint(server, connector_token=bad)
    assert bad not in str(info.value) or bad == ""
    with pytest.raises(LocalProtocolError, match="host identifier"):
        await mint(server, host=bad)
    assert server.requests == []


# --- create session: request and response --------------------------------------------------------


async def test_create_session_sends_documented_request() -> None:
    server = FakeServer(ok_session())
    info = await create(server, streaming=True, platform="web", user_agent="Mozilla/5.0 (X11)")
    [request] = server.requests
    assert request.method == "POST"
    assert str(request.url) == SESSIONS_URL
    assert request.headers["Authorization"] == f"Bearer {JWT}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "Mozilla/5.0 (X11)"
    assert json.loads(request.content) == {"streaming_enabled": True, "platform": "web"}
    assert "X-Token" not in request.headers
    assert "X-Host" not in request.headers
    uuid.UUID(request.headers["X-Polyai-Correlation-Id"])
    assert info == SessionInfo(session_id=SESSION_ID, streaming=True)


async def test_create_session_defaults() -> None:
    server = FakeServer(ok_session())
    info = await create(server)
    [request] = server.requests
    assert json.loads(request.content) == {"streaming_enabled": False, "platform": "custom"}
    assert not request.headers["User-Agent"].startswith("Mozilla")
    assert info.streaming is False


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
async def test_create_session_documented_platforms(platform: str) -> None:
    server = FakeServer(ok_session())
    await create(server, platform=platform)
    assert json.loads(server.requests[0].content)["platform"] == platform


def test_platforms_are_the_documented_set() -> None:
    assert {"web", "ios", "android", "ios-web", "android-web", "custom"} == PLATFORMS


@pytest.mark.parametrize("platform", ["", "Web", "windows", "ios_web", " web"])
async def test_create_session_rejects_unknown_platform(platform: str) -> None:
    server = FakeServer(ok_session())
    with pytest.raises(ValueError, match="platform"):
        await create(server, platform=platform)
    assert server.requests == []


async def test_create_session_rejects_bad_arguments() -> None:
    server = FakeServer(ok_session())
    with pytest.raises(ValueError, match="user_agent"):
        await create(server, user_agent="evil\r\nX-Injected: 1")
    with pytest.raises(ValueError, match="user_agent"):
        await create(server, user_agent="")
    with pytest.raises(TypeError):
        await create(server, streaming="yes")
    with pytest.raises(TypeError):
        await create(server, token=JWT)
    assert server.requests == []


async def test_connector_token_only_sent_to_access_token_endpoint() -> None:
    server = FakeServer(ok_token(), ok_session())
    async with server.client() as client:
        token = await mint_access_token(BASE, CONNECTOR, HOST, client=client)
        info = await create_session(BASE, token, streaming=True, client=client)
    ws = websocket_url(BASE, info.session_id, token.secret)
    assert CONNECTOR not in ws
    token_request, session_request = server.requests
    assert token_request.url.path == "/api/v1/access-token"
    assert session_request.url.path == "/api/v1/sessions"

    def carries(request: httpx.Request, secret: str) -> list[str]:
        places = [f"header {k}" for k, v in request.headers.items() if secret in v]
        if secret in str(request.url):
            places.append("url")
        if secret.encode() in request.content:
            places.append("body")
        return places

    assert carries(token_request, CONNECTOR) == ["header x-token"]
    assert carries(session_request, CONNECTOR) == []
    assert carries(token_request, JWT) == []
    assert carries(session_request, JWT) == ["header authorization"]


# --- documented error strings --------------------------------------------------------------------

DOCUMENTED = [
    (AT, 401, "Missing authentication headers", MissingAuthenticationHeadersError),
    (AT, 401, "Connector token does not exist", ConnectorTokenNotFoundError),
    (AT, 401, "Failed to validate connector", ConnectorValidationError),
    (AT, 401, "Connector missing host domain", ConnectorMissingHostError),
    (AT, 500, "Failed to create access token", AccessTokenCreationError),
    (SE, 400, "Missing access token", MissingAccessTokenError),
    (SE, 401, "Missing authentication headers", MissingAuthenticationHeadersError),
    (SE, 401, "Invalid access token", InvalidAccessTokenError),
    (SE, 400, "Error parsing request", RequestParseError),
    (SE, 500, "Failed to create session", SessionCreationError),
    (SE, 500, "Error creating session", SessionCreationError),
]  # fmt: skip


@pytest.mark.parametrize(("endpoint", "status", "text", "cls"), DOCUMENTED)
async def test_documented_error_strings(
    endpoint: Endpoint, status: int, text: str, cls: type[RestError]
) -> None:
    sleeps = Sleeps()
    server = FakeServer(fail(status, text))
    with pytest.raises(cls) as info:
        await call(endpoint, server, sleeps)
    error = info.value
    assert type(error) is cls
    assert error.status == status
    assert error.error_string == text
    assert error.endpoint is endpoint
    assert text in str(error)
    assert str(status) in str(error)
    assert error.correlation_id == server.requests[0].headers["X-Polyai-Correlation-Id"]
    assert error_class_for(endpoint, status, text) is cls
    if cls.documented_string is not None and text != "Error creating session":
        assert cls.documented_string == text
    # 5xx is retried (3 attempts); 4xx is not.
    assert len(server.requests) == (3 if status >= 500 else 1)


def test_documented_classes_have_the_right_bases() -> None:
    for _, status, _, cls in DOCUMENTED:
        base = {400: BadRequestError, 401: AuthenticationError, 500: ServerError}[status]
        assert issubclass(cls, base)
    for cls in (BadRequestError, AuthenticationError, SessionNotFoundError, RateLimitedError):
        assert issubclass(cls, ClientError)
    for cls in (ClientError, ServerError, TransportError):
        assert issubclass(cls, RestError)
    assert issubclass(RestError, MessagingError)


@pytest.mark.parametrize(
    ("endpoint", "status", "text", "cls"),
    [
        (AT, 401, "  connector TOKEN does not exist.  ", ConnectorTokenNotFoundError),
        (SE, 403, "Invalid access token", InvalidAccessTokenError),
        (AT, 403, "Failed to validate connector", ConnectorValidationError),
        (SE, 503, "Failed to create session", SessionCreationError),
        (AT, 502, "Failed to create access token", AccessTokenCreationError),
    ],
)  # fmt: skip
def test_error_class_for_normalises(
    endpoint: Endpoint, status: int, text: str, cls: type[RestError]
) -> None:
    assert error_class_for(endpoint, status, text) is cls


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, SessionNotFoundError),
        (405, ClientError),
        (418, ClientError),
        (429, RateLimitedError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (302, RestError),
        (304, RestError),
        (600, RestError),
    ],
)
@pytest.mark.parametrize("endpoint", list(Endpoint))
@pytest.mark.parametrize("text", ["Something new went wrong", ""])
async def test_unknown_strings_fall_back_to_status_class(
    endpoint: Endpoint, status: int, cls: type[RestError], text: str
) -> None:
    server = FakeServer(fail(status, text))
    with pytest.raises(RestError) as info:
        await call(endpoint, server, retry={"max_attempts": 1})
    assert type(info.value) is cls
    assert info.value.status == status
    assert info.value.error_string == text
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("endpoint", "status", "text", "cls"),
    [
        # A documented string with the wrong endpoint or status is not trusted.
        (Endpoint.ACCESS_TOKEN, 401, "Invalid access token", AuthenticationError),
        (Endpoint.SESSIONS, 401, "Connector token does not exist", AuthenticationError),
        (Endpoint.SESSIONS, 400, "Failed to create session", BadRequestError),
        (Endpoint.SESSIONS, 404, "Missing access token", SessionNotFoundError),
        (Endpoint.ACCESS_TOKEN, 500, "Failed to create session", ServerError),
    ],
)
def test_documented_string_in_wrong_place_falls_back(
    endpoint: Endpoint, status: int, text: str, cls: type[RestError]
) -> None:
    assert error_class_for(endpoint, status, text) is cls


# --- error body shapes (either documented form) --------------------------------------------------

TEXT = "Invalid access token"


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(401, json={"error": TEXT, "message": TEXT}),
        httpx.Response(401, json={"message": TEXT}),
        httpx.Response(401, json={"error": TEXT}),
        httpx.Response(401, json={"message": TEXT, "error": "something else"}),
        httpx.Response(401, json={"message": "", "error": TEXT}),
        httpx.Response(401, json={"message": None, "error": TEXT}),
        httpx.Response(401, json={"message": 42, "error": TEXT}),
        httpx.Response(401, json={"error": {"message": TEXT, "code": 7}}),
        httpx.Response(401, json=TEXT),
        httpx.Response(401, text=TEXT),
        httpx.Response(401, text=f"  {TEXT}\n"),
        httpx.Response(401, text=TEXT, headers={"Content-Type": "application/json"}),
        httpx.Response(401, content=TEXT.encode(), headers={"Content-Type": "text/plain"}),
    ],
)
async def test_error_body_shapes(response: httpx.Response) -> None:
    server = FakeServer(response)
    with pytest.raises(InvalidAccessTokenError) as info:
        await create(server)
    assert info.value.error_string == TEXT


async def test_error_body_without_any_string_uses_raw_body() -> None:
    body = b'{"code":17}'  # raw bytes: how httpx would serialise json= varies by version
    server = FakeServer(
        httpx.Response(401, content=body, headers={"content-type": "application/json"})
    )
    with pytest.raises(AuthenticationError) as info:
        await create(server)
    assert type(info.value) is AuthenticationError
    assert info.value.error_string == '{"code":17}'


async def test_empty_error_body_uses_reason_phrase_in_message() -> None:
    server = FakeServer(httpx.Response(404))
    with pytest.raises(SessionNotFoundError) as info:
        await create(server)
    assert info.value.error_string == ""
    assert "Not Found" in str(info.value)


async def test_error_string_is_truncated_and_cleaned() -> None:
    server = FakeServer(httpx.Response(400, text="bad\x00thing\x1b[31m " + "x" * 5000))
    with pytest.raises(BadRequestError) as info:
        await create(server)
    text = info.value.error_string
    assert len(text) <= 256
    assert text.endswith("…")
    assert text.isprintable()
    assert len(str(info.value)) < 400


async def test_redirect_is_not_followed() -> None:
    server = FakeServer(
        httpx.Response(307, headers={"Location": "https://evil.example/steal"}), ok_token()
    )
    with pytest.raises(RestError) as info:
        await mint(server)
    assert type(info.value) is RestError
    assert info.value.status == 307
    assert "redirect" in str(info.value)
    assert len(server.requests) == 1


# --- retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", list(Endpoint))
async def test_500_retried_then_succeeds(endpoint: Endpoint) -> None:
    success = ok_token() if endpoint is Endpoint.ACCESS_TOKEN else ok_session()
    sleeps = Sleeps()
    server = FakeServer(fail(500, "boom"), fail(503), success)
    await call(endpoint, server, sleeps)
    assert len(server.requests) == 3
    assert sleeps.delays == [1.0, 2.0]
    ids = {r.headers["X-Polyai-Correlation-Id"] for r in server.requests}
    assert len(ids) == 1


async def test_500_exhausted_raises_server_error() -> None:
    sleeps = Sleeps()
    server = FakeServer(fail(500, "boom"))
    with pytest.raises(ServerError) as info:
        await create(server, sleeps)
    assert type(info.value) is ServerError
    assert info.value.error_string == "boom"
    assert len(server.requests) == 3
    assert sleeps.delays == [1.0, 2.0]


async def test_backoff_is_capped_and_counts_attempts() -> None:
    sleeps = Sleeps()
    server = FakeServer(fail(500))
    with pytest.raises(ServerError):
        await create(server, sleeps, retry={"max_attempts": 8, "max_delay": 10.0})
    assert len(server.requests) == 8
    assert sleeps.delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


async def test_backoff_jitter_comes_from_injected_random() -> None:
    def run() -> list[float]:
        p = RetryPolicy(rng=random.Random(1234), jitter=0.2)
        return [p.backoff_delay(n) for n in range(1, 8)]

    first, second = run(), run()
    assert first == second
    for n, delay in enumerate(first, start=1):
        nominal = min(30.0, 2.0 ** (n - 1))
        assert 0.8 * nominal <= delay <= nominal
    assert len(set(first)) == len(first)  # capped delays still differ


async def test_5xx_retry_after_is_honoured() -> None:
    sleeps = Sleeps()
    server = FakeServer(fail(503, headers={"Retry-After": "3"}), ok_session())
    await create(server, sleeps)
    assert sleeps.delays == [3.0]


@pytest.mark.parametrize(
    ("headers", "delay"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "0"}, 0.0),
        ({"Retry-After": "2.5"}, 2.5),
        ({}, 5.0),
        ({"Retry-After": "soon"}, 5.0),
        ({"Retry-After": "-3"}, 5.0),
        ({"Retry-After": "120"}, 30.0),
    ],
)
@pytest.mark.parametrize("endpoint", list(Endpoint))
async def test_429_waits_for_retry_after(
    endpoint: Endpoint, headers: dict[str, str], delay: float
) -> None:
    success = ok_token() if endpoint is Endpoint.ACCESS_TOKEN else ok_session()
    sleeps = Sleeps()
    server = FakeServer(fail(429, "Too Many Requests", headers), success)
    await call(endpoint, server, sleeps)
    assert sleeps.delays == [delay]
    assert len(server.requests) == 2


async def test_429_http_date_uses_server_date_header() -> None:
    server_now = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
    headers = {
        "Date": format_datetime(server_now, usegmt=True),
        "Retry-After": format_datetime(server_now + timedelta(seconds=12), usegmt=True),
    }
    sleeps = Sleeps()
    server = FakeServer(fail(429, headers=headers), ok_session())
    await create(server, sleeps)  # our clock says 2023; the server's Date wins
    assert sleeps.delays == [12.0]


async def test_429_http_date_without_date_header_uses_clock() -> None:
    retry_at = datetime.fromtimestamp(NOW + 9, tz=UTC)
    headers = {"Retry-After": format_datetime(retry_at, usegmt=True)}
    sleeps = Sleeps()
    server = FakeServer(fail(429, headers=headers), ok_session())
    await create(server, sleeps)
    assert sleeps.delays == [9.0]


async def test_429_exhausted_raises_rate_limited() -> None:
    sleeps = Sleeps()
    server = FakeServer(fail(429, "slow down", {"Retry-After": "4"}))
    with pytest.raises(RateLimitedError) as info:
        await mint(server, sleeps)
    assert info.value.retry_after == 4.0
    assert info.value.status == 429
    assert sleeps.delays == [4.0, 4.0]
    assert len(server.requests) == 3


@pytest.mark.parametrize(
    ("status", "text", "cls"),
    [
        (401, "Invalid access token", InvalidAccessTokenError),
        (401, "", AuthenticationError),
        (403, "", AuthenticationError),
        (400, "Error parsing request", RequestParseError),
        (404, "session not found", SessionNotFoundError),
        (409, "conflict", ClientError),
    ],
)
async def test_4xx_not_retried(status: int, text: str, cls: type[RestError]) -> None:
    sleeps = Sleeps()
    server = FakeServer(fail(status, text), ok_session())
    with pytest.raises(cls):
        await create(server, sleeps)
    assert len(server.requests) == 1
    assert sleeps.delays == []


async def test_no_retry_policy_makes_one_attempt() -> None:
    server = FakeServer(fail(500), ok_session())
    async with server.client() as client:
        with pytest.raises(ServerError):
            await create_session(BASE, a_token(), client=client, retry=RetryPolicy.no_retry())
    assert len(server.requests) == 1


async def test_default_sleep_works_under_trio() -> None:
    server = FakeServer(fail(500), fail(429, headers={"Retry-After": "0"}), ok_session())
    async with server.client() as client:
        retry = RetryPolicy(base_delay=0.0, jitter=0.0)
        info = await create_session(BASE, a_token(), client=client, retry=retry)
    assert info.session_id == SESSION_ID
    assert len(server.requests) == 3


def test_works_under_asyncio() -> None:
    async def main() -> tuple[AccessToken, SessionInfo]:
        server = FakeServer(fail(500), ok_token(), ok_session())
        async with server.client() as client:
            retry = RetryPolicy(base_delay=0.0, jitter=0.0)
            token = await mint_access_token(BASE, CONNECTOR, HOST, client=client, retry=retry)
            return token, await create_session(BASE, token, client=client, retry=retry)

    token, info = asyncio.run(main())
    assert token.secret == JWT
    assert info.session_id == SESSION_ID


# --- transport failures --------------------------------------------------------------------------


async def test_transport_error_retried_then_succeeds() -> None:
    sleeps = Sleeps()
    server = FakeServer(httpx.ConnectError("connection refused"), ok_token())
    token = await mint(server, sleeps)
    assert token.secret == JWT
    assert sleeps.delays == [1.0]


async def test_transport_error_exhausted() -> None:
    sleeps = Sleeps()
    server = FakeServer(httpx.ReadTimeout("timed out"))
    with pytest.raises(TransportError) as info:
        await create(server, sleeps)
    assert info.value.status is None
    assert "ReadTimeout" in str(info.value)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert len(server.requests) == 3


async def test_transport_error_retry_can_be_disabled() -> None:
    server = FakeServer(httpx.ConnectError("refused"), ok_token())
    with pytest.raises(TransportError):
        await mint(server, retry={"retry_transport_errors": False})
    assert len(server.requests) == 1


def closed_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_owned_client_reports_connection_refused() -> None:
    base = f"http://127.0.0.1:{closed_loopback_port()}"
    sleeps = Sleeps()
    with pytest.raises(TransportError) as info:
        await mint_access_token(base, CONNECTOR, HOST, retry=policy(sleeps))
    assert CONNECTOR not in str(info.value)
    assert sleeps.delays == [1.0, 2.0]


# --- malformed success bodies --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (httpx.Response(200, text="not json"), "not valid JSON"),
        (httpx.Response(200), "not valid JSON"),
        (httpx.Response(200, content=b"\xff\xfe\x00"), "not valid JSON"),
        (httpx.Response(200, json=[JWT]), "JSON object, got array"),
        (httpx.Response(200, json=JWT), "JSON object, got string"),
        (httpx.Response(200, json={}), "access_token: .*missing"),
        (httpx.Response(200, json={"expires_in": 60}), "access_token: .*missing"),
        (tok(access_token=JWT), "expires_in: .*missing"),
        (tok(access_token=7, expires_in=60), "access_token: .*number"),
        (tok(access_token="", expires_in=60), "access_token: .*empty"),
        (tok(access_token="a b", expires_in=60), "access_token"),
        (tok(access_token=None, expires_in=60), "access_token: .*null"),
        (tok(expires_in="60"), "expires_in: .*string"),
        (tok(expires_in=True), "expires_in: .*boolean"),
        (tok(expires_in=1.5), "expires_in: .*number"),
        (tok(expires_in=0), "expires_in: .*positive"),
        (tok(expires_in=-5), "expires_in"),
        (tok(expires_in=5, token_type=1), "token_type"),
        (tok(expires_in=5, token_type="MAC"), "token_type"),
    ],
)  # fmt: skip
async def test_malformed_token_body(response: httpx.Response, match: str) -> None:
    server = FakeServer(response, ok_token())
    with pytest.raises(RemoteProtocolError, match=match) as info:
        await mint(server)
    assert JWT not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (httpx.Response(200, text="<html>"), "not valid JSON"),
        (httpx.Response(200, content=b"null"), "JSON object, got null"),
        (httpx.Response(200, json={"id": SESSION_ID}), "session_id: .*missing"),
        (httpx.Response(200, json={"session_id": 5}), "session_id: .*number"),
        (httpx.Response(200, json={"session_id": ""}), "session_id: .*empty"),
        (httpx.Response(200, json={"session_id": [SESSION_ID]}), "session_id: .*array"),
    ],
)
async def test_malformed_session_body(response: httpx.Response, match: str) -> None:
    server = FakeServer(response, ok_session())
    with pytest.raises(RemoteProtocolError, match=match):
        await create(server)
    assert len(server.requests) == 1


async def test_created_status_accepted() -> None:
    server = FakeServer(httpx.Response(201, json={"session_id": SESSION_ID}))
    assert (await create(server)).session_id == SESSION_ID


# --- AccessToken ---------------------------------------------------------------------------------


def test_access_token_repr_and_str_hide_secret() -> None:
    token = AccessToken(JWT, 86400, obtained_at=NOW)
    for text in (repr(token), str(token), f"{token}", f"{token!r}", repr([token])):
        assert JWT not in text
        assert "<redacted>" in text
        assert "expires_in=86400" in text
    assert repr(token).startswith("AccessToken(<redacted>, expires_in=86400")
    assert token.secret == JWT


def test_access_token_is_frozen_and_compares_by_value() -> None:
    token = AccessToken(JWT, 60, obtained_at=1.0)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        token.expires_in = 5  # type: ignore[misc]
    assert token == AccessToken(secret=JWT, expires_in=60, obtained_at=1.0)
    assert token != AccessToken("other", 60, obtained_at=1.0)
    assert hash(token) == hash(AccessToken(JWT, 60, obtained_at=1.0))


def test_access_token_expiry() -> None:
    token = AccessToken(JWT, 86400, obtained_at=1000.0)
    assert token.expires_at == 87400.0
    assert not token.is_expired(1000.0)
    assert not token.is_expired(87400.0 - 300.1)
    assert token.is_expired(87400.0 - 300.0)
    assert token.is_expired(87400.0 + 1)
    assert not token.is_expired(87400.0 - 10, margin=0)
    assert token.is_expired(87400.0, margin=0)


def test_short_lived_token_margin_is_capped_at_half_lifetime() -> None:
    token = AccessToken(JWT, 60, obtained_at=0.0)
    assert not token.is_expired(29.9)
    assert token.is_expired(30.0)


def test_access_token_default_obtained_at_is_wall_clock() -> None:
    import time

    before = time.time()
    token = AccessToken(JWT, 60)
    assert before <= token.obtained_at <= time.time()


@pytest.mark.parametrize("secret", ["", "a b", "line\n", "caf\u00e9", 5, None])
def test_access_token_validates_secret_without_echoing(secret: object) -> None:
    with pytest.raises(ValueError, match="access token") as info:
        AccessToken(secret, 60)  # type: ignore[arg-type]
    if isinstance(secret, str) and secret:
        assert secret not in str(info.value)


@pytest.mark.parametrize("expires_in", [-1, True, 1.5, "60"])
def test_access_token_validates_expires_in(expires_in: object) -> None:
    with pytest.raises(ValueError, match="expires_in"):
        AccessToken(JWT, expires_in)  # type: ignore[arg-type]


def test_access_token_from_json() -> None:
    data = {"access_token": JWT, "expires_in": 10, "token_type": "bearer"}
    token = AccessToken.from_json(data, obtained_at=5.0)
    assert token == AccessToken(JWT, 10, "bearer", 5.0)
    with pytest.raises(RemoteProtocolError) as info:
        AccessToken.from_json({"access_token": JWT, "expires_in": "x"}, obtained_at=0)
    assert info.value.path == "expires_in"


# --- Retry-After parsing and RetryPolicy ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("1.25", 1.25),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("Wednesday, 21-Oct-15 07:28:10 GMT", 10.0),  # obsolete RFC 850 form
        ("Wed, 21 Oct 2015 07:28:10", 10.0),  # no zone: taken as UTC
        ("", None),
        ("-1", None),
        ("1e3", None),
        ("inf", None),
        ("nan", None),
        ("later", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after(value, now=now) == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_attempts": True},
        {"base_delay": -1.0},
        {"max_delay": float("nan")},
        {"jitter": 1.5},
        {"jitter": -0.1},
        {"rate_limit_default_delay": -1.0},
    ],
)
def test_retry_policy_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        RetryPolicy(**kwargs)


def test_retry_policy_decisions() -> None:
    p = RetryPolicy(jitter=0.0)
    server_error = ServerError("x", status=500)
    assert p.delay_for(server_error, 1) == 1.0
    assert p.delay_for(server_error, 2) == 2.0
    assert p.delay_for(server_error, 3) is None
    assert p.delay_for(RateLimitedError("x", status=429, retry_after=1000.0), 1) == 30.0
    assert p.delay_for(RateLimitedError("x", status=429), 1) == 5.0
    assert p.delay_for(AuthenticationError("x", status=401), 1) is None
    assert p.delay_for(BadRequestError("x", status=400), 1) is None
    assert p.delay_for(RestError("x", status=302), 1) is None
    assert p.delay_for(TransportError("x"), 1) == 1.0
    tls_failure = TransportError("x")
    tls_failure.tls = True
    assert p.delay_for(tls_failure, 1) is None  # a certificate does not verify on a retry
    assert p.backoff_delay(10_000) == 30.0
    assert RetryPolicy.no_retry().delay_for(server_error, 1) is None


# --- secrets never leak --------------------------------------------------------------------------

VISIBLE = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40)
CONN_MARK = "QXCONNMARK"
ACC_MARK = "QXACCMARK"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def texts_of(error: BaseException) -> Iterator[str]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield repr(current.args)
        yield repr(vars(current)) if not isinstance(current, httpx.HTTPError) else ""
        current = current.__cause__ or current.__context__


def echo_bodies(secret: str) -> list[httpx.Response]:
    return [
        httpx.Response(401, json={"message": f"Invalid token {secret}"}),
        httpx.Response(401, json={"error": secret}),
        httpx.Response(400, text=f"bad {secret!r} {secret.encode()!r} / {quote(secret)}"),
        httpx.Response(400, text=f"bad {quote(secret, safe='')} / {quote_plus(secret)}"),
        httpx.Response(500, text=json.dumps({"detail": secret})),
        httpx.Response(429, json={"message": secret}, headers={"Retry-After": "1"}),
        httpx.Response(404, text=secret),
        httpx.Response(200, text=f"not json {secret}"),
        httpx.Response(200, json={"access_token": 5, "expires_in": secret, "session_id": 3}),
        httpx.Response(200, json={"access_token": secret, "expires_in": 1, "token_type": secret}),
        httpx.Response(200, json={"access_token": f"{secret} x", "expires_in": 1}),
        httpx.Response(200, json=[secret]),
    ]  # fmt: skip


SCENARIOS = st.one_of(
    st.integers(min_value=0, max_value=len(echo_bodies("x")) - 1),
    st.sampled_from(["connect", "timeout"]),
)


def scripted(scenario: int | str, secret: str) -> Reply:
    if scenario == "connect":
        return httpx.ConnectError(f"could not send X-Token: {secret}")
    if scenario == "timeout":
        return httpx.ReadTimeout(f"timed out waiting; Authorization: Bearer {secret}")
    assert isinstance(scenario, int)
    return echo_bodies(secret)[scenario]


@settings(max_examples=150, deadline=None)
@given(
    connector_tail=VISIBLE,
    access_tail=VISIBLE,
    token_scenario=SCENARIOS,
    session_scenario=SCENARIOS,
)
async def test_no_secret_in_errors_reprs_or_logs(
    connector_tail: str, access_tail: str, token_scenario: int | str, session_scenario: int | str
) -> None:
    connector = CONN_MARK + connector_tail
    access = ACC_MARK + access_tail
    collect = Collect()
    logger = logging.getLogger("polyai_messaging")
    old_level = logger.level
    logger.addHandler(collect)
    logger.setLevel(logging.DEBUG)
    outputs: list[str] = []
    try:
        # Minting: every reply may echo the connector token back.
        server = FakeServer(scripted(token_scenario, connector))
        try:
            token = await mint(server, connector_token=connector)
            outputs += [repr(token), str(token)]
        except MessagingError as error:
            outputs += texts_of(error)
        # Creating a session: every reply may echo the access token back.
        server = FakeServer(scripted(session_scenario, access))
        access_token = AccessToken(access, 86400, obtained_at=NOW)
        outputs += [repr(access_token), str(access_token)]
        try:
            info = await create(server, token=access_token)
            outputs.append(repr(info))
        except MessagingError as error:
            outputs += texts_of(error)
    finally:
        logger.removeHandler(collect)
        logger.setLevel(old_level)
    outputs += collect.lines
    for text in outputs:
        assert CONN_MARK not in text
        assert ACC_MARK not in text


async def test_server_echoing_secret_is_scrubbed_from_error_string() -> None:
    server = FakeServer(httpx.Response(401, json={"message": f"Invalid access token {JWT}"}))
    with pytest.raises(AuthenticationError) as info:
        await create(server)
    assert info.value.error_string == "Invalid access token ***"
    assert JWT not in str(info.value)


async def test_transport_error_with_secret_drops_the_cause() -> None:
    server = FakeServer(httpx.ConnectError(f"oops {CONNECTOR}"))
    with pytest.raises(TransportError) as info:
        await mint(server, retry={"max_attempts": 1})
    assert CONNECTOR not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


async def test_logs_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="polyai_messaging")
    server = FakeServer(fail(500, "boom"), ok_token(), fail(429), ok_session())
    await mint(server)
    await create(server)
    assert caplog.records
    assert any("retrying" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert CONNECTOR not in record.getMessage()
        assert JWT not in record.getMessage()


async def test_log_lines_go_through_the_one_redaction_rule(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server's error text that quotes a credential (one the client never had, so no
    known-secret scrubbing can catch it) is hidden in the log lines, as every line of the
    library is, under the public logger name ``polyai_messaging.rest``."""
    caplog.set_level(logging.DEBUG, logger="polyai_messaging")
    leaked = "upstream said access_token=sk-live-0123456789 is invalid"
    server = FakeServer(fail(500, leaked), ok_token())
    await mint(server)
    lines = [r.getMessage() for r in caplog.records if r.name == "polyai_messaging.rest"]
    assert any("retrying" in line for line in lines), lines
    assert not any("sk-live-0123456789" in line for line in lines), lines


# --- module hygiene ------------------------------------------------------------------------------


def test_all_is_explicit_and_complete() -> None:
    for name in rest.__all__:
        assert hasattr(rest, name)
    public = {
        name
        for name, value in vars(rest).items()
        if not name.startswith("_")
        and getattr(value, "__module__", None) == rest.__name__
        and (inspect.isfunction(value) or inspect.isclass(value))
    }
    assert public <= set(rest.__all__)


def test_every_error_class_has_a_docstring() -> None:
    for name in rest.__all__:
        value = getattr(rest, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), name
