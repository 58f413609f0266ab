"""A local emulator for your own tests, started on whichever event loop runs them.

::

    async with open_emulator() as emulator:
        async with open_session(emulator.base_url, emulator.token_provider) as session:
            emulator.set_faults("drop-after=3:1")      # the next socket is cut after 3 frames
            ...
            journal = emulator.journal(session.session_id)  # what the server recorded

The emulator (hypercorn) and the REST client (httpx) are imported when an emulator starts, not
when this module is imported.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from ..emulator import EmulatorConfig, EmulatorState, Faults, Journal, RunningEmulator
    from ..runtime import TokenProvider

__all__ = ["LocalEmulator", "open_emulator"]


@attrs.frozen
class LocalEmulator:
    """An emulator started by :func:`open_emulator`, valid inside its ``async with`` block."""

    running: RunningEmulator
    """The running server: its host, port, URLs and configuration."""
    token_provider: TokenProvider
    """Mints access tokens for the emulator's demo connector; pass it to ``open_session``."""

    @property
    def base_url(self) -> str:
        """The REST base URL (``http://127.0.0.1:PORT``; ``https://`` with TLS)."""
        return self.running.base_url

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """With TLS, a client context that trusts the emulator (pass it to ``open_session``)."""
        return self.running.client_ssl_context() if self.running.tls else None

    @property
    def state(self) -> EmulatorState:
        """Everything the emulator holds: sessions, journals, tokens, faults."""
        return self.running.state

    def set_faults(self, faults: str | Faults) -> Faults:
        """Switch faults on from now on, e.g. ``"drop-after=3:1"`` (``""`` switches them off);
        the spellings are listed in :data:`polyai_messaging.emulator.FAULT_HELP`."""
        return self.state.set_faults(faults)

    def journal(self, session_id: str) -> Journal:
        """The events the emulator recorded for a session, which replays are cut from."""
        return self.state.session(session_id).journal


@asynccontextmanager
async def open_emulator(
    config: EmulatorConfig | None = None, *, tls: bool = False
) -> AsyncIterator[LocalEmulator]:
    """Start an emulator on a free loopback port for the ``async with`` block, on the running
    event loop (trio or asyncio).

    ``config`` defaults to ``EmulatorConfig.fast()`` (no scripted delays). ``tls=True`` serves
    HTTPS and WSS with a throw-away certificate authority that :attr:`LocalEmulator.ssl_context`
    trusts. Needs the ``emulator`` extra (``pip install 'polyai-messaging[emulator]'``).
    """
    from ..emulator import (  # noqa: PLC0415 - the emulator extra, only when one is started
        DEMO_CONNECTOR_TOKEN,
        DEMO_HOST,
        EmulatorConfig,
        run_emulator,
    )
    from ..rest import connector_token_provider, http_client  # noqa: PLC0415 - see above

    config = config if config is not None else EmulatorConfig.fast()
    async with run_emulator(config, tls=tls) as running:
        trusted = running.client_ssl_context() if tls else None
        async with http_client(None, trusted) as http:
            provider = connector_token_provider(
                running.base_url, DEMO_CONNECTOR_TOKEN, DEMO_HOST, client=http
            )
            yield LocalEmulator(running, provider)
