"""Raw-JSON helpers for talking to the emulator over loopback (no client library)."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    wrap_client_stream,
)

from polyai_messaging.emulator import (
    DEMO_CONNECTOR_TOKEN,
    EmulatorConfig,
    RunningEmulator,
    run_emulator,
)

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

    def __init__(self, ws: WebSocketConnection, session_id: str, token: str) -> None:
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
        with trio.fail_after(timeout):
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
        with trio.fail_after(timeout):
            while True:
                seen.append(await self.frame())
                if seen[-1]["type"] == f"EVENT_TYPE_{event_type}":
                    return seen

    async def silent(self, seconds: float = 0.2) -> bool:
        """Whether no frame arrives within ``seconds``."""
        with trio.move_on_after(seconds):
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


@asynccontextmanager
async def open_ws(
    url: str, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[WebSocketConnection]:
    """Like ``trio_websocket.open_websocket_url``, but the TCP stream is always closed.

    trio-websocket 0.12's client never closes its socket when the server closes first (close
    frame or bare TCP end) or rejects the handshake, which is a ResourceWarning and so an error
    under ``filterwarnings = error``. Owning the stream and closing it ourselves avoids that.
    A single exception from the connection's tasks is raised as is, not in a group, so
    ``pytest.raises(ConnectionRejected)`` works.
    """
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    resource = f"{parts.path}?{parts.query}" if parts.query else parts.path
    stream: trio.abc.Stream
    if ssl_context is None:
        stream = await trio.open_tcp_stream(parts.hostname, parts.port)
    else:
        stream = await trio.open_ssl_over_tcp_stream(
            parts.hostname, parts.port, ssl_context=ssl_context, https_compatible=True
        )
    try:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(TIMEOUT):
                ws = await wrap_client_stream(nursery, stream, parts.netloc, resource)
            yield ws
            # A polite close on normal exit only; on errors and cancellation the stream is
            # simply closed below (the reader task may be gone, so no close reply would come).
            with trio.fail_after(TIMEOUT):
                await ws.aclose()
    except BaseExceptionGroup as group:
        raise _single(group) from None
    finally:
        await trio.aclose_forcefully(stream)


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one non-cancellation exception inside ``group``, else ``group`` itself."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        current = pending.pop()
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        elif not isinstance(current, trio.Cancelled):
            leaves.append(current)
    return leaves[0] if len(leaves) == 1 else group


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
    with trio.fail_after(TIMEOUT), pytest.raises(ConnectionClosed) as caught:  # noqa: PT012
        while True:
            message = await client.ws.get_message()
            assert frames_allowed, f"a frame before the close: {message!r}"
    reason = caught.value.reason
    assert reason is not None
    return int(reason.code)
