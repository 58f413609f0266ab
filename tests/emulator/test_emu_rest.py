"""POST /api/v1/access-token and POST /api/v1/sessions, every documented error."""

from __future__ import annotations

import httpx
import pytest

from polyai_messaging.emulator import DEMO_CONNECTOR_TOKEN, EmulatorConfig, parse_faults

from .helpers import Harness, create_session, mint_token, start

pytestmark = pytest.mark.anyio

CONNECTORS = {
    DEMO_CONNECTOR_TOKEN: "localhost",
    "company-token": "yourcompany.com",
    "app-token": "com.yourcompany.app",
    "ai-token": "ai.example.com",
    "no-host-token": None,
}


@pytest.fixture
def config() -> EmulatorConfig:
    return EmulatorConfig.fast(connectors=CONNECTORS)


@pytest.fixture
def http(harness: Harness) -> httpx.AsyncClient:
    return harness.http


def error_of(response: httpx.Response) -> str:
    body = response.json()
    assert body["error"] == body["message"]
    message: str = body["message"]
    return message


async def post_token(http: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await http.post("/api/v1/access-token", headers=headers, json={})


async def test_token_is_minted(http: httpx.AsyncClient) -> None:
    response = await post_token(http, {"X-Token": DEMO_CONNECTOR_TOKEN, "X-Host": "localhost"})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86400
    assert isinstance(body["access_token"], str)
    assert len(body["access_token"]) >= 32


async def test_token_accepts_empty_body(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/api/v1/access-token", headers={"X-Token": DEMO_CONNECTOR_TOKEN, "X-Host": "localhost"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Missing authentication headers"),
        ({"X-Token": "company-token"}, "Missing authentication headers"),
        ({"X-Host": "yourcompany.com"}, "Missing authentication headers"),
        ({"X-Token": "nope", "X-Host": "yourcompany.com"}, "Connector token does not exist"),
        ({"X-Token": "no-host-token", "X-Host": "a.com"}, "Connector missing host domain"),
        ({"X-Token": "company-token", "X-Host": "evil.com"}, "Failed to validate connector"),
        (
            {"X-Token": "company-token", "X-Host": "yourcompany.com.evil"},
            "Failed to validate connector",
        ),
        (
            {"X-Token": "app-token", "X-Host": "com.yourcompany.app.evil"},
            "Failed to validate connector",
        ),
    ],
)
async def test_token_errors(http: httpx.AsyncClient, headers: dict[str, str], message: str) -> None:
    response = await post_token(http, headers)
    assert response.status_code == 401
    assert error_of(response) == message


@pytest.mark.parametrize(
    ("connector", "host"),
    [
        ("company-token", "yourcompany.com"),
        ("company-token", "https://app.yourcompany.com"),
        ("company-token", "https://deep.app.yourcompany.com:8443/some/path"),
        ("app-token", "com.yourcompany.app"),
        ("ai-token", "https://chat.ai.example.com:8443/x"),
    ],
)
async def test_token_host_matching(http: httpx.AsyncClient, connector: str, host: str) -> None:
    response = await post_token(http, {"X-Token": connector, "X-Host": host})
    assert response.status_code == 200


async def test_token_internal_error_fault(harness: Harness) -> None:
    harness.state.faults = parse_faults("fail-token")
    headers = {"X-Token": DEMO_CONNECTOR_TOKEN, "X-Host": "localhost"}
    response = await post_token(harness.http, headers)
    assert response.status_code == 500
    assert error_of(response) == "Failed to create access token"
    assert (await post_token(harness.http, headers)).status_code == 200


async def test_session_created(harness: Harness) -> None:
    token = await mint_token(harness.http)
    response = await harness.http.post(
        "/api/v1/sessions",
        headers={"Authorization": f"Bearer {token}", "User-Agent": "tests"},
        json={"platform": "ios", "streaming_enabled": True},
    )
    assert response.status_code == 200
    session = harness.state.session(response.json()["session_id"])
    assert session.platform == "ios"
    assert session.streaming
    start = session.journal.events[0]
    assert start["sequence"] == 1
    assert start["type"] == "EVENT_TYPE_SESSION_START"
    assert start["payload"]["capabilities"] == {
        "streaming": True,
        "max_message_size_bytes": 131072,
        "max_reconnect_attempts": 5,
        "heartbeat_interval_seconds": 30,
    }


@pytest.mark.parametrize("body", [None, b"", b"{}", b'{"streaming_enabled": null}'])
async def test_session_body_is_optional(harness: Harness, body: bytes | None) -> None:
    token = await mint_token(harness.http)
    response = await harness.http.post(
        "/api/v1/sessions", headers={"Authorization": f"Bearer {token}"}, content=body
    )
    assert response.status_code == 200
    session = harness.state.session(response.json()["session_id"])
    assert not session.streaming
    assert session.journal.events[0]["payload"]["capabilities"]["streaming"] is False


@pytest.mark.parametrize(
    ("authorization", "status", "message"),
    [
        (None, 400, "Missing access token"),
        ("Basic abc", 401, "Missing authentication headers"),
        ("Bearer", 401, "Missing authentication headers"),
        ("Bearer not-a-token", 401, "Invalid access token"),
    ],
)
async def test_session_auth_errors(
    http: httpx.AsyncClient, authorization: str | None, status: int, message: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await http.post("/api/v1/sessions", headers=headers, json={})
    assert response.status_code == status
    assert error_of(response) == message


@pytest.mark.parametrize(
    "body", [b"{not json", b"[]", b'{"streaming_enabled": "yes"}', b'{"platform": 3}']
)
async def test_session_body_errors(harness: Harness, body: bytes) -> None:
    token = await mint_token(harness.http)
    response = await harness.http.post(
        "/api/v1/sessions", headers={"Authorization": f"Bearer {token}"}, content=body
    )
    assert response.status_code == 400
    assert error_of(response) == "Error parsing request"


async def test_expired_token_is_invalid(harness: Harness) -> None:
    token = await mint_token(harness.http)
    harness.state.tokens.expire(token)
    response = await harness.http.post(
        "/api/v1/sessions", headers={"Authorization": f"Bearer {token}"}, json={}
    )
    assert response.status_code == 401
    assert error_of(response) == "Invalid access token"


async def test_session_internal_error_fault(harness: Harness) -> None:
    token = await mint_token(harness.http)
    harness.state.set_faults("fail-session=1")
    headers = {"Authorization": f"Bearer {token}"}
    response = await harness.http.post("/api/v1/sessions", headers=headers, json={})
    assert response.status_code == 500
    assert error_of(response) == "Failed to create session"
    assert await create_session(harness.http, token)


async def test_unknown_path_and_method(http: httpx.AsyncClient) -> None:
    assert (await http.get("/nope")).status_code == 404
    response = await http.get("/api/v1/sessions")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_http_rate_limit() -> None:
    async with start(EmulatorConfig.fast(http_rate_limit_per_second=1.0)) as harness:
        http = harness.http
        headers = {"X-Token": DEMO_CONNECTOR_TOKEN, "X-Host": "localhost"}
        assert (await post_token(http, headers)).status_code == 200
        limited = await post_token(http, headers)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
