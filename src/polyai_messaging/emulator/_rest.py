"""The two REST endpoints, as ASGI HTTP handlers.

Error bodies are ``{"error": s, "message": s}`` with the documented strings (the API documents
the strings, not the body; :ref:`protocol-emulator`).
"""

from __future__ import annotations

import json
import math
from typing import Any

import anyio

from ._asgi import Receive, Scope, Send, header, send_json
from ._auth import host_matches
from ._state import EmulatorState

__all__ = ["serve_http"]

ACCESS_TOKEN_PATH = "/api/v1/access-token"  # noqa: S105 - a URL path, not a secret
SESSIONS_PATH = "/api/v1/sessions"
_MAX_BODY_BYTES = 1024 * 1024


class _HttpError(Exception):
    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


async def serve_http(state: EmulatorState, scope: Scope, receive: Receive, send: Send) -> None:
    """Route one HTTP request."""
    try:
        result = await _route(state, scope, receive)
    except _HttpError as error:
        body = {"error": error.message, "message": error.message}
        await send_json(send, error.status, body, error.headers)
    else:
        await send_json(send, 200, result)


async def _route(state: EmulatorState, scope: Scope, receive: Receive) -> dict[str, Any]:
    path = scope["path"]
    if path not in (ACCESS_TOKEN_PATH, SESSIONS_PATH):
        raise _HttpError(404, "not found")
    if scope["method"] != "POST":
        raise _HttpError(405, "method not allowed", [(b"allow", b"POST")])
    body = await _read_body(receive)
    if path == ACCESS_TOKEN_PATH:
        return _access_token(state, scope)
    return _create_session(state, scope, body)


async def _read_body(receive: Receive) -> bytes | None:
    """The request body, or ``None`` if it is larger than we care to read."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _HttpError(400, "client disconnected")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size <= _MAX_BODY_BYTES:
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks) if size <= _MAX_BODY_BYTES else None


def _rate_limit(state: EmulatorState, key: str) -> None:
    if state.http_limiter is None:
        return
    wait = state.http_limiter.acquire(key, anyio.current_time())
    if wait > 0:
        retry_after = str(max(1, math.ceil(wait))).encode()
        raise _HttpError(429, "Too Many Requests", [(b"retry-after", retry_after)])


def _access_token(state: EmulatorState, scope: Scope) -> dict[str, Any]:
    connector_token = header(scope, b"x-token")
    presented_host = header(scope, b"x-host")
    if not connector_token or not presented_host:
        raise _HttpError(401, "Missing authentication headers")
    # The body may be empty or "{}"; it carries nothing, so it is not parsed.
    if connector_token not in state.config.connectors:
        raise _HttpError(401, "Connector token does not exist")
    registered = state.config.connectors[connector_token]
    if not registered:
        raise _HttpError(401, "Connector missing host domain")
    if not host_matches(registered, presented_host):
        raise _HttpError(401, "Failed to validate connector")
    _rate_limit(state, "token:" + connector_token)
    if state.fault_state.take_token_failure():
        raise _HttpError(500, "Failed to create access token")
    return {
        "access_token": state.mint_access_token(connector_token),
        "expires_in": state.config.expires_in,
        "token_type": "Bearer",
    }


def _create_session(state: EmulatorState, scope: Scope, body: bytes | None) -> dict[str, Any]:
    authorization = header(scope, b"authorization")
    if authorization is None:
        raise _HttpError(400, "Missing access token")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _HttpError(401, "Missing authentication headers")
    if state.resolve_access_token(token) is None:
        raise _HttpError(401, "Invalid access token")
    options = _parse_session_body(body)
    _rate_limit(state, "session:" + token)
    if state.fault_state.take_session_failure():
        raise _HttpError(500, "Failed to create session")
    session = state.create_session(token, **options)
    return {"session_id": session.id}


def _parse_session_body(body: bytes | None) -> dict[str, Any]:
    """``streaming_enabled`` (default false) and ``platform`` (default web, not validated:
    the API does not say whether it is) from an optional JSON object body."""
    if body is None:
        raise _HttpError(400, "Error parsing request")
    if not body.strip():
        return {"streaming": False, "platform": "web"}
    try:
        data = json.loads(body)
    except ValueError:
        raise _HttpError(400, "Error parsing request") from None
    if not isinstance(data, dict):
        raise _HttpError(400, "Error parsing request")
    # An explicit null reads as "not given".
    streaming = data.get("streaming_enabled")
    streaming = False if streaming is None else streaming
    platform = data.get("platform")
    platform = "web" if platform is None else platform
    if not isinstance(streaming, bool) or not isinstance(platform, str):
        raise _HttpError(400, "Error parsing request")
    return {"streaming": streaming, "platform": platform}
