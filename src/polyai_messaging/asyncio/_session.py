"""The session on asyncio: the shared runtime, a task group, one timer, one task per socket.

Every input goes through the runtime's single synchronous entry point, which steps the driver
and executes its effects without awaiting; asyncio switches tasks only at ``await``, so the
driver sees one ordered stream of inputs without a lock. The timer is a loop callback
(``call_at``), moved whenever the driver moves its deadline.
"""

from __future__ import annotations

import asyncio
import contextvars
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

from ..driver import Now, OpenSocket
from ..rest import SessionOpener, open_session_function
from ..rest._tasks import SessionTasks
from ..runtime import Clock, EngineOptions, SessionRuntime
from ._link import Link, ProxyChoice, run_link

__all__ = ["Session", "open_session"]


class Session(SessionRuntime):
    """A running session on asyncio; obtained from :func:`open_session`.

    See :class:`~polyai_messaging.runtime.SessionRuntime` for everything it offers.
    """

    def __init__(
        self, tasks: asyncio.TaskGroup, ssl_context: ssl.SSLContext | None, options: EngineOptions
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks = tasks
        self._jobs: set[asyncio.Task[None]] | None = None
        """The tasks started by :meth:`spawn` (and for a bug in the timer's callback) until
        they end, to cancel them; made at the first. A link's tasks are found in ``links``."""
        self._ssl_context = ssl_context
        self._timer: asyncio.TimerHandle | None = None
        self._context = contextvars.copy_context()
        self._proxy = ProxyChoice()
        super().__init__(**options)

    # --- the adapter's part ------------------------------------------------------------------

    def new_event(self) -> asyncio.Event:
        return asyncio.Event()

    async def checkpoint(self) -> None:
        await asyncio.sleep(0)

    async def cancel_point(self) -> None:
        # Only a cancellation requested of the task is delivered here: otherwise an intent runs
        # without yielding (as ``websockets``' own ``send`` does), since a loop round before its
        # frame is written was one more on every message's round trip.
        task = asyncio.current_task()
        if task is None or task.cancelling():
            await asyncio.sleep(0)

    def spawn(self, job: Callable[[], Awaitable[None]]) -> None:
        async def run() -> None:
            await job()

        self._start_job(run())

    def open_link(self, request: OpenSocket) -> None:
        link = Link(request.generation, self._start)
        self.links[link.generation] = link
        link.task = self._start(run_link(self, link, request, self._ssl_context, self._proxy))
        # A bound method in the session's context, rather than a closure over the link and a
        # copy of the context: the callback lives as long as the link.
        link.task.add_done_callback(self._link_ended, context=self._context)

    def rearm_timer(self, deadline: float | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if deadline is not None and not self._closed:
            when = self._loop.time() + deadline - self.now().monotonic
            # One context for every firing, as on trio, rather than a copy made per timer.
            self._timer = self._loop.call_at(when, self._fire, context=self._context)

    # --- tasks and the timer -----------------------------------------------------------------

    def _start(self, job: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``job`` in the task group (a link's task or its writer: :meth:`stop` finds
        them through ``links``)."""
        return self._tasks.create_task(job)

    def _start_job(self, job: Coroutine[Any, Any, None]) -> None:
        """Run ``job`` in the task group, and remember it until it ends (to cancel it)."""
        jobs = self._jobs
        if jobs is None:
            jobs = self._jobs = set()
        task = self._tasks.create_task(job)
        jobs.add(task)
        task.add_done_callback(jobs.discard, context=self._context)

    def _link_ended(self, task: asyncio.Task[None]) -> None:
        """A link's task has ended: the link is gone (it writes nothing more)."""
        for generation, link in self.links.items():
            if isinstance(link, Link) and link.task is task:
                link.writable = False
                # A cancelled task keeps its CancelledError, whose traceback holds the link's
                # frames, which hold the link: a cycle keeping the link's connection alive until
                # a full collection of the garbage collector, were the link to keep its task.
                link.task = None
                del self.links[generation]
                return

    def _fire(self) -> None:
        self._timer = None
        try:
            self.wake()
        except Exception as exc:
            # A bug: fail the task group as a crashed task would, rather than only log it.
            self._start_job(_raise(exc))

    def stop(self) -> None:
        """Stop feeding the driver, disarm the timer and cancel every task (the task group
        then waits for them)."""
        self.close()
        self.rearm_timer(None)
        for link in self.links.values():
            assert isinstance(link, Link)
            link.cancel()
        for task in self._jobs or ():
            task.cancel()


async def _raise(exc: Exception) -> None:
    raise exc


def _run(options: EngineOptions, ssl_context: ssl.SSLContext | None) -> SessionTasks[Any, Session]:
    """The loop's part of :func:`open_session`: the session's tasks in one task group."""
    return SessionTasks(asyncio.TaskGroup(), Session, _stop, options, ssl_context)


async def _stop(session: Session) -> None:
    session.stop()


def _now() -> Now:
    return Now(asyncio.get_running_loop().time(), time.time())


def _loop_clock() -> Clock:
    return _now  # one function for every session, not a closure over its loop each


open_session: Final = open_session_function(
    SessionOpener(_run, new_event=asyncio.Event, loop_clock=_loop_clock, library="asyncio"),
    Session,
    """Open a session on asyncio: ``async with open_session(base_url, token_provider) as session``.

The arguments are the same on every adapter. ``clock`` defaults to
``Now(loop.time(), time.time())``.""",
)
