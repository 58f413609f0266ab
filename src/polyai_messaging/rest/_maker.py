"""Sessions and tokens for a running client: what an adapter's ``open_session`` needs of REST.

:func:`connector_token_provider` mints access tokens with a connector token (trusted places
only). :class:`SessionMaker` creates sessions with the caller's settings, the first one and any
replacement, with a current access token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import attrs
import httpx

from ._calls import create_session, mint_access_token
from ._results import AccessToken
from ._retry import RetryPolicy

__all__ = ["SessionMaker", "connector_token_provider"]


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
