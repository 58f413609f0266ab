"""What every adapter's ``open_session`` does before its loop takes over (the REST part).

:func:`opening` checks the base URL (``wss://`` only off loopback), sets up the token cache and
the HTTP client, creates the session unless one is given (by id, or as a saved
:class:`~polyai_messaging.driver.SessionState`), and makes the driver's first state.
:class:`SessionOpener` is a whole ``open_session``: that, then the adapter's loop;
:func:`open_session_function` makes it the adapter's documented ``open_session`` function.
"""

from __future__ import annotations

import inspect
import secrets
import ssl
import typing
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Generic, ParamSpec, Protocol, TypeVar

import attrs
import httpx
import sniffio

from ..driver import SessionConfig, SessionState, check_transport_security
from ..runtime import Clock, EngineOptions, Event, SessionRuntime, TokenCache, TokenProvider
from ._http import http_client, new_http_client
from ._maker import SessionMaker
from ._retry import RetryPolicy

__all__ = ["Opening", "SessionLoop", "SessionOpener", "open_session_function", "opening"]

_S_co = TypeVar("_S_co", bound=SessionRuntime, covariant=True)
_S = TypeVar("_S", bound=SessionRuntime)
_P = ParamSpec("_P")


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
    retry: RetryPolicy | None = None,
) -> AsyncIterator[Opening]:
    """Set up a session as described in the module docstring; the HTTP client lives as long
    as the block."""
    tokens = _token_cache(base_url, token_provider, session_id, state, clock, new_event)
    async with http_client(client, ssl_context) as http:
        maker = SessionMaker(base_url, tokens, http, streaming, platform, user_agent, retry)
        # Not kept in a variable of this frame, which lives as long as the session: the first
        # state is dropped once the session has moved on from it.
        yield Opening(await _first_state(maker, session_id, state, seed, config), tokens, maker)


def _token_cache(
    base_url: str,
    token_provider: TokenProvider,
    session_id: str | None,
    state: SessionState | None,
    clock: Clock,
    new_event: Callable[[], Event],
) -> TokenCache:
    """Check the arguments (``wss://`` only off loopback, one session named), and make the
    session's token cache."""
    check_transport_security(base_url)
    if session_id is not None and state is not None and state.session_id != session_id:
        raise ValueError("session_id and state name different sessions")
    return TokenCache(token_provider, _WallClock(clock), new_event)


class _WallClock:
    """The wall time of a :data:`Clock` (a token cache's clock): an object of one slot, where
    a closure over the clock was a function, a tuple and a cell in every session."""

    __slots__ = ("_clock",)

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def __call__(self) -> float:
        return self._clock().wall


async def _first_state(
    maker: SessionMaker,
    session_id: str | None,
    state: SessionState | None,
    seed: int | None,
    config: SessionConfig | None,
) -> SessionState:
    """The driver's first state: ``state`` (with ``config``, if given), or a new session's."""
    if state is None:
        return SessionState.new(
            session_id if session_id is not None else await maker.create(),
            seed=seed if seed is not None else secrets.randbits(63),
            config=config,
        )
    return state if config is None else attrs.evolve(state, config=config)


class SessionLoop(Protocol[_S_co]):
    """An adapter's part of ``open_session``: make the session from ``options`` and run it on
    the loop for the duration of the block (``ssl_context`` verifies ``wss://``). It clears
    ``options`` once the session is made, so that the first driver state is not kept alive
    by them as long as the session runs."""

    def __call__(
        self, options: EngineOptions, ssl_context: ssl.SSLContext | None
    ) -> AbstractAsyncContextManager[_S_co]: ...


class SessionOpener(Generic[_S_co]):
    """An adapter's ``open_session``: :func:`opening`, then the adapter's ``loop``.

    ``new_event`` makes the loop's events; ``loop_clock``, called in the running loop, returns
    the default clock (the loop's own monotonic time, and ``time.time()``). ``library`` names
    the loop (as :mod:`sniffio` does): opening a session on another loop is refused at once.
    """

    def __init__(
        self,
        loop: SessionLoop[_S_co],
        *,
        new_event: Callable[[], Event],
        loop_clock: Callable[[], Clock],
        library: str,
    ) -> None:
        self._loop = loop
        self._new_event = new_event
        self._loop_clock = loop_clock
        self._library = library

    def __call__(
        self,
        base_url: str,
        token_provider: TokenProvider,
        *,
        session_id: str | None = None,
        state: SessionState | None = None,
        streaming: bool = False,
        platform: str = "custom",
        user_agent: str | None = None,
        config: SessionConfig | None = None,
        seed: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock: Clock | None = None,
        http_client: httpx.AsyncClient | None = None,
        events_capacity: int = 1024,
        retry: RetryPolicy | None = None,
    ) -> AbstractAsyncContextManager[_S_co]:
        """Connect a session and run it until the block exits (or an outer cancel).

        ``base_url`` is the REST base URL (``https://``; ``http://`` only on loopback). A
        session is created first (with ``streaming``, ``platform``, ``user_agent``) unless
        ``session_id`` names one to resume, or ``state`` is a saved driver state
        (``load_state``) to resume from its cursor without replaying what it holds.
        ``ssl_context`` verifies ``wss://`` and, unless ``http_client`` is given, the REST
        calls. ``seed`` makes backoff jitter and generated ids repeatable. ``clock`` defaults to
        the loop's own clock for monotonic time and ``time.time()`` for wall time. ``retry``
        is how creating a session (the first and any replacement) is retried; its
        ``on_retry`` is where to show progress. Access tokens are retried as the token provider
        decides.

        A replacement session is created with a fresh token when the server no longer knows
        this one (at most ``config.max_new_sessions`` in a row). Leaving the block closes the
        socket (code 1000, bounded wait) and cancels every task; the session stays alive on the
        server. An exception raised in the block propagates as it is.
        """

        # The arguments in one object rather than in a closure's cells: this lives as long as
        # the session, in every session.
        return _OpenSession(
            self,
            _Arguments(
                base_url, token_provider, session_id, state, streaming, platform, user_agent,
                config, seed, ssl_context, clock, http_client, events_capacity, retry,
            ),
        )  # fmt: skip

    def _check_loop(self) -> None:
        try:
            running = sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError:
            running = None
        if running != self._library:
            on = f"on {running}" if running else "outside any event loop"
            hint = f": use polyai_messaging.{running}.open_session" if running in _ADAPTERS else ""
            raise RuntimeError(
                f"polyai_messaging.{self._library}.open_session runs on {self._library}, but"
                f" this code runs {on}{hint}"
            )


class _OpenSession(AbstractAsyncContextManager[_S]):
    """One ``open_session`` call: what :func:`opening` does, then the adapter's loop.

    An object of four slots for the life of the session, rather than a generator: as a
    ``@asynccontextmanager`` (and before that, three nested in one another) it kept its frame,
    its generator and its manager alive in every session, some 1 KiB.
    """

    __slots__ = ("_call", "_opener", "_owned", "_running")

    def __init__(self, opener: SessionOpener[_S], call: _Arguments) -> None:
        self._opener = opener
        self._call: _Arguments | None = call
        self._owned: httpx.AsyncClient | None = None
        """The HTTP client made for this session (none if the caller gave one)."""
        self._running: AbstractAsyncContextManager[_S] | None = None
        """The adapter's loop, once entered."""

    async def __aenter__(self) -> _S:
        call, opener = self._call, self._opener
        if call is None:
            raise RuntimeError("this open_session() call was already entered")
        self._call = None  # the session holds what it needs of the arguments
        opener._check_loop()
        clock = call.clock if call.clock is not None else opener._loop_clock()
        tokens = _token_cache(
            call.base_url, call.token_provider, call.session_id, call.state, clock,
            opener._new_event,
        )  # fmt: skip
        http = call.http_client
        if http is None:
            http = self._owned = await new_http_client(call.ssl_context).__aenter__()
        try:
            maker = SessionMaker(
                call.base_url, tokens, http, call.streaming, call.platform, call.user_agent,
                call.retry,
            )  # fmt: skip
            first = await _first_state(maker, call.session_id, call.state, call.seed, call.config)
            options = EngineOptions(
                state=first,
                base_url=call.base_url,
                tokens=tokens,
                create_session=maker.create,
                clock=clock,
                events_capacity=call.events_capacity,
            )
            # The loop clears ``options`` once the session is made: nothing here keeps the
            # first state alive once the session has moved on from it.
            del first
            running = opener._loop(options, call.ssl_context)
            session = await running.__aenter__()
        except BaseException as exc:
            await self._close_client(exc)
            raise
        self._running = running
        return session

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        running = self._running
        self._running = None
        assert running is not None
        try:
            suppressed = await running.__aexit__(kind, exc, traceback)
        except BaseException as raised:
            await self._close_client(raised)
            raise
        await self._close_client(None if suppressed else exc)
        return suppressed

    async def _close_client(self, exc: BaseException | None) -> None:
        """Close the HTTP client made for this session, if any, as ``exc`` propagates."""
        owned = self._owned
        self._owned = None
        if owned is None:
            return
        if exc is None:
            await owned.__aexit__(None, None, None)
        else:
            await owned.__aexit__(type(exc), exc, exc.__traceback__)


@attrs.frozen
class _Arguments:
    """The arguments of one ``open_session`` call."""

    base_url: str
    token_provider: TokenProvider
    session_id: str | None
    state: SessionState | None
    streaming: bool
    platform: str
    user_agent: str | None
    config: SessionConfig | None
    seed: int | None
    ssl_context: ssl.SSLContext | None
    clock: Clock | None
    http_client: httpx.AsyncClient | None
    events_capacity: int
    retry: RetryPolicy | None


_ADAPTERS = frozenset({"trio", "asyncio"})


def open_session_function(
    opener: Callable[_P, AbstractAsyncContextManager[_S]], session: type[_S], summary: str
) -> Callable[_P, AbstractAsyncContextManager[_S]]:
    """``opener`` (a :class:`SessionOpener`) as an adapter's ``open_session`` function,
    documented by ``summary``, then the opener's parameters, then what it returns: an async
    context manager yielding ``session``.

    ``help()`` and the reference then show ``open_session`` itself, with its signature, rather
    than the opener's class.
    """

    def open_session(*args: _P.args, **kwargs: _P.kwargs) -> AbstractAsyncContextManager[_S]:
        return opener(*args, **kwargs)

    hints = typing.get_type_hints(SessionOpener.__call__)
    hints["return"] = AbstractAsyncContextManager[session]  # type: ignore[valid-type]
    signature = inspect.signature(opener)
    parameters = [p.replace(annotation=hints[p.name]) for p in signature.parameters.values()]
    open_session.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=parameters, return_annotation=hints["return"]
    )
    open_session.__annotations__ = hints
    open_session.__module__ = session.__module__
    session_class = f"{session.__module__}.{session.__qualname__}"
    open_session.__doc__ = (
        f"{summary}\n\n{inspect.getdoc(SessionOpener.__call__)}\n\n"
        f":returns: an async context manager yielding the running session, a\n"
        f"    :class:`~{session_class}`, valid inside the ``async with`` block."
    )
    return open_session
