"""Minimal ASGI 3 types and response helpers (no web framework)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

__all__ = ["Receive", "Scope", "Send", "header", "json_body", "send_json"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (``name`` in lower case), decoded as Latin-1."""
    for key, value in scope.get("headers", ()):
        if bytes(key).lower() == name:
            return bytes(value).decode("latin-1")
    return None


def json_body(value: Any) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _headers(body: bytes, extra: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
        *extra,
    ]


async def send_json(
    send: Send,
    status: int,
    value: Any,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
    *,
    websocket: bool = False,
) -> None:
    """Send a complete JSON response; ``websocket=True`` uses the ASGI WebSocket denial
    response extension (an HTTP answer to an upgrade request)."""
    body = json_body(value)
    prefix = "websocket.http.response" if websocket else "http.response"
    await send(
        {
            "type": f"{prefix}.start",
            "status": status,
            "headers": _headers(body, extra_headers),
        }
    )
    await send({"type": f"{prefix}.body", "body": body, "more_body": False})
