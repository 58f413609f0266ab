"""What every adapter's ``open_session`` does before its loop takes over (the REST part).

Check the base URL (``wss://`` only off loopback), set up the token cache and the HTTP client,
create the session unless one is given (by id, or as a saved :class:`~polyai_messaging.driver.
SessionState`), and make the driver's first state.
"""

from __future__ import annotations

import secrets
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import attrs
import httpx

from ..driver import SessionConfig, SessionState, check_transport_security
from ..runtime import Clock, Event, TokenCache, TokenProvider
from ._maker import SessionMaker, http_client

__all__ = ["Opening", "opening"]


@attrs.frozen
class Opening:
    """Ready to run: the first driver state, the token cache and the session maker."""

    state: SessionState
    tokens: TokenCache
    maker: SessionMaker


@asynccontextmanager
async def opening(
    base_url: str,
    token_provider: TokenProvider,
    *,
    session_id: str | None,
    state: SessionState | None,
    streaming: bool,
    platform: str,
    user_agent: str | None,
    config: SessionConfig | None,
    seed: int | None,
    ssl_context: ssl.SSLContext | None,
    client: httpx.AsyncClient | None,
    clock: Clock,
    new_event: Callable[[], Event],
) -> AsyncIterator[Opening]:
    """Set up a session as described in the module docstring; the HTTP client lives as long
    as the block."""
    check_transport_security(base_url)
    if session_id is not None and state is not None and state.session_id != session_id:
        raise ValueError("session_id and state name different sessions")
    tokens = TokenCache(token_provider, lambda: clock().wall, new_event)
    async with http_client(client, ssl_context) as http:
        maker = SessionMaker(base_url, tokens, http, streaming, platform, user_agent)
        if state is None:
            state = SessionState.new(
                session_id if session_id is not None else await maker.create(),
                seed=seed if seed is not None else secrets.randbits(63),
                config=config,
            )
        elif config is not None:
            state = attrs.evolve(state, config=config)
        yield Opening(state, tokens, maker)
