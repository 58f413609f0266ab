"""Sessions and tokens for a running client: what an adapter's ``open_session`` needs of REST.

:func:`connector_token_provider` mints access tokens with a connector token (trusted places
only). :class:`SessionMaker` creates sessions with the caller's settings, the first one and any
replacement, with a current access token; :func:`http_client` owns the HTTP client they share.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Protocol

import attrs
import httpx

from ._calls import create_session, mint_access_token
from ._http import DEFAULT_TIMEOUT
from ._results import AccessToken
from ._retry import RetryPolicy

__all__ = ["SessionMaker", "connector_token_provider", "http_client"]


class _Tokens(Protocol):
    async def get(self) -> object: ...


def connector_token_provider(
    base_url: str,
    connector_token: str,
    host: str,
    *,
    client: httpx.AsyncClient | None = None,
    retry: RetryPolicy | None = None,
) -> Callable[[], Awaitable[AccessToken]]:
    """A token provider that mints tokens itself with :func:`mint_access_token`.

    Only for trusted environments (a backend, a CLI, tests): it holds the connector token.
    """

    async def provide() -> AccessToken:
        return await mint_access_token(base_url, connector_token, host, client=client, retry=retry)

    return provide


@attrs.frozen
class SessionMaker:
    """Creates sessions with the caller's settings: the first one and any replacement."""

    base_url: str
    tokens: _Tokens
    http: httpx.AsyncClient
    streaming: bool = False
    platform: str = "custom"
    user_agent: str | None = None
    retry: RetryPolicy | None = None
    """How each creation is retried (the default policy if ``None``)."""

    async def create(self) -> str:
        """A new session's id, created with a current access token."""
        token = await self.tokens.get()
        if not isinstance(token, AccessToken):
            raise TypeError(f"the token provider returned {type(token).__name__}")
        info = await create_session(
            self.base_url,
            token,
            streaming=self.streaming,
            platform=self.platform,
            user_agent=self.user_agent,
            client=self.http,
            retry=self.retry,
        )
        return info.session_id


@asynccontextmanager
async def http_client(
    client: httpx.AsyncClient | None, ssl_context: ssl.SSLContext | None
) -> AsyncIterator[httpx.AsyncClient]:
    """``client`` as it is, or a client of our own (closed on exit) that verifies TLS with
    ``ssl_context`` (the system's trust store by default) and follows no redirect."""
    if client is not None:
        yield client
        return
    verify: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
    async with httpx.AsyncClient(
        timeout=DEFAULT_TIMEOUT, follow_redirects=False, verify=verify
    ) as owned:
        yield owned
