"""Access tokens for a running session: where they come from and the cache that shares them.

A session needs an access token to open each WebSocket and to create a replacement session.
:class:`TokenCache` keeps the current one and refreshes it single-flight, so that links and REST
calls asking at the same moment share one call to the :data:`TokenProvider`. It waits on events
the adapter makes, so one cache serves every event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from ..core import MessagingError
from ._loop import Event

__all__ = ["Token", "TokenCache", "TokenProvider", "TokenUnavailableError"]


@runtime_checkable
class Token(Protocol):
    """What the runtime needs of an access token (:class:`polyai_messaging.rest.AccessToken`)."""

    @property
    def secret(self) -> str: ...

    def is_expired(self, now: float) -> bool: ...


TokenProvider = Callable[[], Awaitable[Token]]
"""Returns a fresh access token (normally minted by your backend, which holds the connector
token; :func:`polyai_messaging.rest.connector_token_provider` mints one itself). Called when
there is no token yet, when the current one is (nearly) expired, and after a handshake answered
401 or 403."""


class TokenUnavailableError(MessagingError):
    """The token provider failed; the original exception is the ``__cause__``.

    The message names the cause: its text if it is one of this library's errors (whose texts
    never hold a secret), else only its type, since a provider is user code.
    """

    @classmethod
    def caused_by(cls, cause: BaseException) -> TokenUnavailableError:
        """The error for a provider that failed with ``cause`` (chain it with ``from``)."""
        said = str(cause) if isinstance(cause, MessagingError) else type(cause).__name__
        return cls(f"the token provider failed: {said or type(cause).__name__}")


class TokenCache:
    """The current access token, refreshed single-flight: concurrent callers share one call.

    ``wall`` reads the wall clock (tokens expire in wall time); ``new_event`` makes an event of
    the running loop, for callers that wait on someone else's refresh.
    """

    __slots__ = ("_failure", "_new_event", "_provider", "_refreshing", "_token", "_wall", "calls")

    def __init__(
        self, provider: TokenProvider, wall: Callable[[], float], new_event: Callable[[], Event]
    ) -> None:
        self._provider = provider
        self._wall = wall
        self._new_event = new_event
        self._token: Token | None = None
        self._refreshing: Event | None = None
        self._failure: BaseException | None = None
        self.calls = 0
        """How many times the provider was called."""

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secret of the current token, if any (to keep it out of log lines)."""
        return () if self._token is None else (self._token.secret,)

    def invalidate(self, token: Token | None = None) -> None:
        """Forget ``token`` (refused by the server; a newer token is kept), or with ``None``
        whatever token is current (a new session gets a fresh token)."""
        if token is None or self._token is token:
            self._token = None

    async def get(self) -> Token:
        """The current token, or a fresh one if there is none or it is (nearly) expired.

        Raises :class:`TokenUnavailableError` if the provider fails (or, for callers that
        waited on someone else's refresh, failed).
        """
        while True:
            token = self._token
            if token is not None and not token.is_expired(self._wall()):
                return token
            pending = self._refreshing
            if pending is None:
                return await self._refresh()
            await pending.wait()
            if self._failure is not None and self._token is None:
                raise TokenUnavailableError.caused_by(self._failure) from self._failure

    async def _refresh(self) -> Token:
        done = self._refreshing = self._new_event()
        self._failure = None
        self.calls += 1
        try:
            token: object = await self._provider()
        except Exception as exc:
            self._failure = exc
            raise TokenUnavailableError.caused_by(exc) from exc
        finally:
            # Wake the waiters whatever happened (even a cancellation): they retry or fail.
            self._refreshing = None
            done.set()
        # A provider is user code: check what it returned rather than fail later, elsewhere.
        if not isinstance(token, Token):
            self._failure = TypeError(f"token provider returned {type(token).__name__}")
            raise TokenUnavailableError.caused_by(self._failure) from self._failure
        self._token = token
        return token
