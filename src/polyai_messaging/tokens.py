"""Access tokens for the trio adapter: where they come from and the cache that shares them.

A session needs an access token to open each WebSocket and to create a replacement session.
:class:`TokenCache` keeps the current one and refreshes it single-flight, so that links and
REST calls asking at the same moment share one call to the :data:`TokenProvider`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import trio

from . import rest
from .errors import MessagingError
from .rest import AccessToken

__all__ = [
    "TokenCache",
    "TokenProvider",
    "TokenUnavailableError",
    "connector_token_provider",
]

TokenProvider = Callable[[], Awaitable[AccessToken]]
"""Returns a fresh access token (normally minted by your backend, which holds the connector
token). Called when there is no token yet, when the current one is (nearly) expired, and after a
handshake answered 401/403."""


class TokenUnavailableError(MessagingError):
    """The token provider failed; the original exception is the ``__cause__``."""


def connector_token_provider(
    base_url: str,
    connector_token: str,
    host: str,
    *,
    client: httpx.AsyncClient | None = None,
    retry: rest.RetryPolicy | None = None,
) -> TokenProvider:
    """A :data:`TokenProvider` that mints tokens itself with :func:`.rest.mint_access_token`.

    Only for trusted environments (a backend, a CLI, tests): it holds the connector token.
    """

    async def provide() -> AccessToken:
        return await rest.mint_access_token(
            base_url, connector_token, host, client=client, retry=retry
        )

    return provide


class TokenCache:
    """The current access token, refreshed single-flight: concurrent callers share one call."""

    def __init__(self, provider: TokenProvider, wall: Callable[[], float]) -> None:
        self._provider = provider
        self._wall = wall
        self._token: AccessToken | None = None
        self._refreshing: trio.Event | None = None
        self._failure: BaseException | None = None
        self.calls = 0
        """How many times the provider was called."""

    def invalidate(self, token: AccessToken | None = None) -> None:
        """Forget ``token`` (refused by the server; a newer token is kept), or with ``None``
        whatever token is current (a new session gets a fresh token, protocol §17)."""
        if token is None or self._token is token:
            self._token = None

    async def get(self) -> AccessToken:
        """The current token, or a fresh one if there is none or it is (nearly) expired.

        Raises :class:`TokenUnavailableError` if the provider fails (or, for callers that
        waited on someone else's refresh, failed).
        """
        while True:
            token = self._token
            if token is not None and not token.is_expired(self._wall()):
                await trio.lowlevel.checkpoint()
                return token
            pending = self._refreshing
            if pending is None:
                return await self._refresh()
            await pending.wait()
            if self._failure is not None and self._token is None:
                raise TokenUnavailableError("the token provider failed") from self._failure

    async def _refresh(self) -> AccessToken:
        done = self._refreshing = trio.Event()
        self._failure = None
        self.calls += 1
        try:
            token: object = await self._provider()
        except Exception as exc:
            self._failure = exc
            raise TokenUnavailableError("the token provider failed") from exc
        finally:
            # Wake the waiters whatever happened (even a cancellation): they retry or fail.
            self._refreshing = None
            done.set()
        # A provider is user code: check what it returned rather than fail later, elsewhere.
        if not isinstance(token, AccessToken):
            self._failure = TypeError(f"token provider returned {type(token).__name__}")
            raise TokenUnavailableError("the token provider failed") from self._failure
        self._token = token
        return token
