"""``wss://``: the socket verifies the server with the caller's context (a trustme CA here),
and never opens to a server it cannot verify."""

from __future__ import annotations

import httpx
import pytest

from polyai_messaging.emulator import EmulatorConfig
from polyai_messaging.testing import open_emulator

from .helpers import Adapter, reconnecting, replied, wait_for

pytestmark = pytest.mark.anyio


async def test_wss_with_trustme_ca(adapter: Adapter) -> None:
    async with open_emulator(EmulatorConfig.fast(), tls=True) as emulator:
        assert emulator.base_url.startswith("https://")
        async with adapter.session(emulator) as session:  # trusting the emulator's CA
            await wait_for(session, replied(1))
            await session.send("secure hello")
            update = await wait_for(session, replied(2))
            assert "secure hello" in update.conversation.transcript[-1].text


async def test_wss_with_an_untrusted_certificate_never_opens(adapter: Adapter) -> None:
    async with open_emulator(EmulatorConfig.fast(), tls=True) as emulator:
        # The REST calls trust the CA; the socket uses the system's trust store, which does not.
        http = httpx.AsyncClient(verify=emulator.ssl_context)
        async with http, adapter.session(emulator, ssl_context=None, http_client=http) as session:
            update = await wait_for(session, reconnecting)
            assert update.state.opened_at is None
            assert update.status is not None
            assert update.status.reason == "connection failed"
