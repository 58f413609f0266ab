"""Raw-JSON helpers for talking to the emulator over loopback (no client library), on trio
and asyncio alike."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager as AsyncContextManager
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import anyio
import httpx
import pytest

from polyai_messaging.emulator import (
    DEMO_CONNECTOR_TOKEN,
    EmulatorConfig,
    RunningEmulator,
    run_emulator,
)

from .wsclient import ConnectionClosed, ConnectionRejected, WebSocket, open_websocket

TIMEOUT = 5.0
"""Upper bound for anything the emulator should do promptly."""

Event = dict[str, Any]


async def mint_token(
    http: httpx.AsyncClient, connector: str = DEMO_CONNECTOR_TOKEN, host: str = "localhost"
) -> str:
    response = await http.post(
        "/api/v1/access-token", headers={"X-Token": connector, "X-Host": host}, json={}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def create_session(http: httpx.AsyncClient, token: str, *, streaming: bool = False) -> str:
    response = await http.post(
        "/api/v1/sessions",
        headers={"Authorization": f"Bearer {token}"},
        json={"streaming_enabled": streaming},
    )
    assert response.status_code == 200, response.text
    session_id: str = response.json()["session_id"]
    return session_id


class Client:
    """One WebSocket with JSON helpers."""

    def __init__(self, ws: WebSocket, session_id: str, token: str) -> None:
        self.ws = ws
        self.session_id = session_id
        self.token = token

    async def send(
        self,
        event_type: str,
        payload: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        frame: dict[str, Any] = {"type": f"EVENT_TYPE_{event_type}", "payload": payload or {}}
        if metadata is not None:
            frame["metadata"] = metadata
        await self.ws.send_message(json.dumps(frame))

    async def say(self, text: str, metadata: dict[str, Any] | None = None) -> None:
        await self.send("USER_MESSAGE", {"text": text}, metadata)

    async def frame(self, timeout: float = TIMEOUT) -> Event:
        with anyio.fail_after(timeout):
            message = await self.ws.get_message()
        assert isinstance(message, str)
        event: Event = json.loads(message)
        return event

    async def batch(self) -> list[Event]:
        """The inner events of the next frame, which must be a batch."""
        frame = await self.frame()
        assert frame["type"] == "EVENT_TYPE_EVENT_BATCH", frame
        events: list[Event] = frame["payload"]["events"]
        return events

    async def until(self, event_type: str, timeout: float = TIMEOUT) -> list[Event]:
        """Frames up to and including the first of ``EVENT_TYPE_<event_type>``."""
        seen: list[Event] = []
        with anyio.fail_after(timeout):
            while True:
                seen.append(await self.frame())
                if seen[-1]["type"] == f"EVENT_TYPE_{event_type}":
                    return seen

    async def silent(self, seconds: float = 0.2) -> bool:
        """Whether no frame arrives within ``seconds``."""
        with anyio.move_on_after(seconds):
            await self.ws.get_message()
            return False
        return True

    async def join(self) -> list[Event]:
        """Send the join request and read through the greeting."""
        await self.send("REQUEST_POLY_AGENT_JOIN")
        frames = await self.until("POLY_AGENT_THINKING")
        greeting = await self.frame()
        while (
            greeting["type"] == "EVENT_TYPE_POLY_AGENT_MESSAGE_CHUNK"
            and not greeting["payload"]["is_complete"]
        ):
            frames.append(greeting)
            greeting = await self.frame()
        return [*frames, greeting]


def types(events: list[Event]) -> list[str]:
    return [event["type"].removeprefix("EVENT_TYPE_") for event in events]


class Harness:
    """An emulator plus an HTTP client and shortcuts for sessions and sockets."""

    def __init__(self, emulator: RunningEmulator, http: httpx.AsyncClient) -> None:
        self.emulator = emulator
        self.http = http
        self.state = emulator.state

    async def new_session(self, *, streaming: bool = False) -> tuple[str, str]:
        token = await mint_token(self.http)
        return token, await create_session(self.http, token, streaming=streaming)

    @asynccontextmanager
    async def connect(
        self, session_id: str, token: str, cursor: int | str | None = None
    ) -> AsyncIterator[Client]:
        query = {"session_id": session_id, "access_token": token}
        if cursor is not None:
            query["cursor"] = str(cursor)
        url = f"{self.emulator.ws_url}?{urlencode(query)}"
        ssl_context = self.emulator.client_ssl_context() if self.emulator.tls else None
        async with open_ws(url, ssl_context) as ws:
            yield Client(ws, session_id, token)

    @asynccontextmanager
    async def session_socket(self, *, streaming: bool = False) -> AsyncIterator[Client]:
        """A new session's socket, with its first replay batch already read."""
        token, session_id = await self.new_session(streaming=streaming)
        async with self.connect(session_id, token) as client:
            await client.batch()
            yield client


def open_ws(url: str, ssl_context: ssl.SSLContext | None = None) -> AsyncContextManager[WebSocket]:
    """A WebSocket to ``url``, closed politely on normal exit (within :data:`TIMEOUT`)."""
    return open_websocket(url, ssl_context, timeout=TIMEOUT)


async def rejection(url: str) -> ConnectionRejected:
    """The ``ConnectionRejected`` a handshake to ``url`` ends with."""
    with pytest.raises(ConnectionRejected) as caught:
        async with open_ws(url):
            pass
    return caught.value


@asynccontextmanager
async def start(config: EmulatorConfig, *, tls: bool = False) -> AsyncIterator[Harness]:
    """An emulator with ``config`` and an HTTP client for it."""
    async with run_emulator(config, tls=tls) as emulator:
        verify: ssl.SSLContext | bool = emulator.client_ssl_context() if tls else True
        async with httpx.AsyncClient(base_url=emulator.base_url, verify=verify) as http:
            yield Harness(emulator, http)


async def close_code(client: Client, *, frames_allowed: bool = True) -> int:
    """Read until the server closes the socket; the close code. With ``frames_allowed=False``,
    the close must come before any further frame."""
    with anyio.fail_after(TIMEOUT), pytest.raises(ConnectionClosed) as caught:  # noqa: PT012
        while True:
            message = await client.ws.get_message()
            assert frames_allowed, f"a frame before the close: {message!r}"
    return caught.value.code
