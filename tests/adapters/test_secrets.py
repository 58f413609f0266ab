"""Logging and secrets: the access token never reaches a log line, not even when a server
echoes it back; and a remote server is only spoken to over TLS."""

from __future__ import annotations

import logging

import anyio
import anyio.abc
import pytest

from polyai_messaging.core import LocalProtocolError
from polyai_messaging.driver import FinishKind, SessionConfig
from polyai_messaging.rest import AccessToken
from polyai_messaging.runtime import _engine
from polyai_messaging.testing import LocalEmulator

from .helpers import (
    TIMEOUT,
    Adapter,
    CountingProvider,
    read_request,
    replied,
    reply,
    tcp_server,
    wait_for,
)

pytestmark = pytest.mark.anyio


async def test_debug_logs_never_contain_the_access_token(
    adapter: Adapter, emulator: LocalEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    provider = CountingProvider(emulator.token_provider)
    with caplog.at_level(logging.DEBUG):
        async with adapter.session(emulator, provider) as session:
            await wait_for(session, replied(1))
            await session.send("hello")
            await wait_for(session, replied(2))
    secret = provider.tokens[0].secret
    messages = [record.getMessage() for record in caplog.records]
    assert any("#1] <- " in message for message in messages)
    assert any("#1] -> " in message for message in messages)
    assert not [message for message in messages if secret in message]
    assert any("access_token=***" in message for message in messages)


async def test_without_debug_logging_no_url_is_redacted(
    adapter: Adapter,
    emulator: LocalEmulator,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redacting a link's URL for its debug line costs as much as making the URL: a reconnect
    does not pay it for a line nobody logs."""
    redacting: list[str] = []

    def redact_url(url: str) -> str:
        redacting.append(url)
        return "redacted"

    monkeypatch.setattr(_engine, "redact_url", redact_url)
    with caplog.at_level(logging.INFO):
        async with adapter.session(emulator) as session:
            await wait_for(session, replied(1))
    assert redacting == []


async def test_a_refusal_that_echoes_the_request_never_logs_the_token(
    adapter: Adapter, caplog: pytest.LogCaptureFixture
) -> None:
    """A server whose 401 body quotes our request target and the token: the log hides it."""
    secret = "SECRET-tok_3n"

    async def refuse(stream: anyio.abc.SocketStream) -> None:
        request = await read_request(stream)
        target = request.split(b" ")[1]
        body = target + b'\n{"access_token": "' + secret.encode() + b'"}'
        await reply(stream, b"401 Unauthorized", b"", body)

    async def token() -> AccessToken:
        return AccessToken(secret, 3600)

    config = SessionConfig(max_new_sessions=0)
    with caplog.at_level(logging.DEBUG):
        async with (
            tcp_server(refuse) as url,
            adapter.open_session(url, token, session_id="s", config=config) as session,
        ):
            with anyio.fail_after(TIMEOUT):
                finished = await session.wait_finished()
    assert finished.kind is FinishKind.NEW_SESSION_REQUIRED
    messages = [record.getMessage() for record in caplog.records]
    assert any("handshake refused with HTTP 401" in message for message in messages)
    assert not [message for message in messages if secret in message]


async def test_an_insecure_remote_base_url_is_refused(adapter: Adapter) -> None:
    async def provider() -> AccessToken:
        raise AssertionError("not called")  # pragma: no cover

    with pytest.raises(LocalProtocolError):
        async with adapter.open_session("http://example.com", provider):
            pass  # pragma: no cover
