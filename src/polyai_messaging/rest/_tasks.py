"""A session run in a task group (a trio nursery, an asyncio ``TaskGroup``) for a block.

:class:`SessionTasks` is an adapter's part of ``open_session`` (a
:class:`~._opening.SessionLoop`), the same on every loop: the adapter gives it the group to
open, its session class and how to stop the session's tasks.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

from ..runtime import EngineOptions, SessionRuntime, raise_unwrapped

__all__ = ["SessionTasks"]

_G = TypeVar("_G")
_S = TypeVar("_S", bound=SessionRuntime)


class SessionTasks(AbstractAsyncContextManager[_S], Generic[_G, _S]):
    """``make(group, ssl_context, options)``, started, its tasks in ``group`` for the block.

    On a normal exit the session shuts down (closes its link politely); however the block is
    left, ``stop(session)`` then ends its tasks and the group waits for them. A lone exception
    comes out as it is, not in a group (:func:`raise_unwrapped`); ``options`` are cleared once
    the session is made, so that they do not keep its first driver state alive.

    An object of a few slots for the life of the session, where an ``@asynccontextmanager``
    kept a frame, a generator and a manager alive in every session.
    """

    __slots__ = ("_group", "_make", "_options", "_session", "_ssl_context", "_stop")

    def __init__(
        self,
        group: AbstractAsyncContextManager[_G],
        make: Callable[[_G, ssl.SSLContext | None, EngineOptions], _S],
        stop: Callable[[_S], Awaitable[None]],
        options: EngineOptions,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self._group = group
        self._make: Callable[[_G, ssl.SSLContext | None, EngineOptions], _S] | None = make
        self._stop = stop
        self._options = options
        self._ssl_context = ssl_context
        self._session: _S | None = None

    async def __aenter__(self) -> _S:
        make, options = self._make, self._options
        if make is None:
            raise RuntimeError("this session was already started")
        self._make = None
        group = await self._group.__aenter__()
        session = None
        try:
            session = make(group, self._ssl_context, options)
            self._ssl_context = None
            cast("dict[str, Any]", options).clear()
            session.start()
        except BaseException as exc:
            await self._end(session, exc)
            raise
        self._session = session
        return session

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        session, self._session = self._session, None
        return await self._end(session, exc)

    async def _end(self, session: _S | None, exc: BaseException | None) -> bool:
        """Shut down (if nothing is raised) and stop ``session``, then leave the group, as
        ``exc`` (or what shutting down or stopping raised) propagates; whether it is
        suppressed."""
        propagating = exc
        try:
            try:
                if session is not None and exc is None:
                    await session.shutdown()
            finally:
                if session is not None:
                    await self._stop(session)
        except BaseException as raised:
            propagating = raised
        try:
            if propagating is None:
                suppressed = await self._group.__aexit__(None, None, None)
            else:
                suppressed = await self._group.__aexit__(
                    type(propagating), propagating, propagating.__traceback__
                )
        except BaseExceptionGroup as group:
            raise_unwrapped(group)
        if propagating is not exc and propagating is not None and not suppressed:
            raise propagating
        return bool(suppressed)
