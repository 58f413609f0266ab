"""The session on trio: the shared runtime, a nursery, one timer, one task per socket.

Every input goes through the runtime's single synchronous entry point, which steps the driver
and executes its effects without awaiting; trio switches tasks only at ``await``, so the driver
sees one ordered stream of inputs without a lock.
"""

from __future__ import annotations

import math
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final, NoReturn

import httpx
import trio

from ..driver import Now, OpenSocket, SessionConfig, SessionState
from ..rest import Opening, opening
from ..runtime import Clock, SessionRuntime, TokenProvider
from ._link import Link, run_link

__all__ = ["Session", "open_session"]

_MIN_REWAKE: Final = 0.05


class Session(SessionRuntime):
    """A running session on trio; obtained from :func:`open_session`.

    See :class:`~polyai_messaging.runtime.SessionRuntime` for everything it offers.
    """

    def __init__(
        self,
        nursery: trio.Nursery,
        ready: Opening,
        *,
        base_url: str,
        ssl_context: ssl.SSLContext | None,
        clock: Clock,
        events_capacity: int,
    ) -> None:
        self._nursery = nursery
        self._ssl_context = ssl_context
        self._links: dict[int, Link] = {}
        self._timer_scope: trio.CancelScope | None = None
        super().__init__(
            state=ready.state,
            base_url=base_url,
            tokens=ready.tokens,
            create_session=ready.maker.create,
            clock=clock,
            events_capacity=events_capacity,
        )

    # --- the adapter's part ------------------------------------------------------------------

    def new_event(self) -> trio.Event:
        return trio.Event()

    async def checkpoint(self) -> None:
        await trio.lowlevel.checkpoint()

    def spawn(self, job: Callable[[], Awaitable[None]]) -> None:
        self._nursery.start_soon(job)

    def open_link(self, request: OpenSocket) -> None:
        link = self._links[request.generation] = Link(request.generation)
        self._nursery.start_soon(self._run_link, link, request)

    def send_frame(self, generation: int, text: str) -> bool:
        link = self._links.get(generation)
        return link is not None and link.send(text)

    def close_link(self, generation: int, code: int, reason: str) -> None:
        link = self._links.get(generation)
        if link is not None:
            link.close(code, reason)

    def abort_link(self, generation: int) -> None:
        link = self._links.get(generation)
        if link is not None:
            link.abort()

    def rearm_timer(self, deadline: float | None) -> None:
        if self._timer_scope is not None:
            self._timer_scope.deadline = self._trio_time(deadline)

    # --- tasks -------------------------------------------------------------------------------

    async def _run_link(self, link: Link, request: OpenSocket) -> None:
        try:
            await run_link(self, link, request, self._ssl_context)
        finally:
            self._links.pop(link.generation, None)

    def _trio_time(self, deadline: float | None, floor: float = -math.inf) -> float:
        """A driver deadline (in the clock's monotonic time) in trio time."""
        if deadline is None:
            return math.inf
        return max(trio.current_time() + (deadline - self.now().monotonic), floor)

    async def run_timer(self) -> None:
        """The one timer: sleep until the driver's deadline (moved by ``WakeAt``), then wake it."""
        fired_for: float | None = None
        while True:
            deadline = self.deadline()
            floor = -math.inf
            if deadline is not None and deadline == fired_for:
                # The driver did not move its deadline on the last wake-up (the wall clock lags
                # the monotonic one, say): do not spin.
                floor = trio.current_time() + _MIN_REWAKE
            with trio.CancelScope(deadline=self._trio_time(deadline, floor)) as scope:
                self._timer_scope = scope
                await trio.sleep_forever()
            self._timer_scope = None
            fired_for = deadline
            self.wake()

    async def shutdown(self) -> None:
        """Stop feeding the driver, then close the open socket politely (bounded wait)."""
        current = self._links.get(self.state.generation)
        self.close()
        if current is not None:
            await current.aclose(1000, "client closing")


def _default_clock() -> Now:
    return Now(trio.current_time(), time.time())


@asynccontextmanager
async def open_session(
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
) -> AsyncIterator[Session]:
    """Connect a session and run it until the block exits (or an outer cancel).

    ``base_url`` is the REST base URL (``https://``; ``http://`` only on loopback). A session is
    created first (with ``streaming``, ``platform``, ``user_agent``) unless ``session_id`` names
    one to resume, or ``state`` is a saved driver state (``load_state``) to resume from its
    cursor without replaying what it holds. ``ssl_context`` verifies ``wss://`` and, unless
    ``http_client`` is given, the REST calls. ``seed`` makes backoff jitter and generated ids
    repeatable. ``clock`` defaults to ``Now(trio.current_time(), time.time())``.

    A replacement session is created with a fresh token when the server no longer knows this
    one (at most ``config.max_new_sessions`` in a row). Leaving the block closes the socket
    (code 1000, bounded wait) and cancels every task; the session stays alive on the server.
    """
    read_clock = clock if clock is not None else _default_clock
    async with opening(
        base_url,
        token_provider,
        session_id=session_id,
        state=state,
        streaming=streaming,
        platform=platform,
        user_agent=user_agent,
        config=config,
        seed=seed,
        ssl_context=ssl_context,
        client=http_client,
        clock=read_clock,
        new_event=trio.Event,
    ) as ready:
        try:
            async with trio.open_nursery() as nursery:
                session = Session(
                    nursery,
                    ready,
                    base_url=base_url,
                    ssl_context=ssl_context,
                    clock=read_clock,
                    events_capacity=events_capacity,
                )
                nursery.start_soon(session.run_timer)
                session.start()
                try:
                    yield session
                    await session.shutdown()
                finally:
                    session.close()
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The background tasks only end by cancellation: a lone exception is the caller's
            # own (or a cancellation); give it back unwrapped.
            if len(group.exceptions) == 1:
                _reraise(group.exceptions[0])
            raise


def _reraise(exc: BaseException) -> NoReturn:
    """Raise ``exc`` again without chaining the group it was unwrapped from."""
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context
