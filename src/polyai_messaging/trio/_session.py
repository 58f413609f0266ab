"""The session on trio: the shared runtime, a nursery, an alarm, one task per socket.

Every input goes through the runtime's single synchronous entry point, which steps the driver
and executes its effects without awaiting; trio switches tasks only at ``await``, so the driver
sees one ordered stream of inputs without a lock. The timer is an alarm of the run's shared
timers (``_timers``), moved whenever the driver moves its deadline.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import trio

from ..driver import Now, OpenSocket
from ..rest import SessionOpener, open_session_function
from ..rest._tasks import SessionTasks
from ..runtime import Clock, EngineOptions, SessionRuntime
from ._link import Link
from ._socket import run_link
from ._timers import alarm

__all__ = ["Session", "open_session"]


class Session(SessionRuntime):
    """A running session on trio; obtained from :func:`open_session`.

    See :class:`~polyai_messaging.runtime.SessionRuntime` for everything it offers.
    """

    def __init__(
        self, nursery: trio.Nursery, ssl_context: ssl.SSLContext | None, options: EngineOptions
    ) -> None:
        self._nursery = nursery
        self._ssl_context = ssl_context
        self._held: Link | None = None
        """The link whose frames the intent being executed writes itself (see ``Link.hold``)."""
        super().__init__(**options)
        self._alarm = alarm(self._fire)

    # --- the adapter's part ------------------------------------------------------------------

    def new_event(self) -> trio.Event:
        return trio.Event()

    async def checkpoint(self) -> None:
        await trio.lowlevel.checkpoint()

    async def cancel_point(self) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        # The intent's frames are written by its caller (``schedule_point``), on an idle link.
        link = self.links.get(self._state.generation)
        if isinstance(link, Link) and link.hold():
            self._held = link

    async def schedule_point(self) -> None:
        held, self._held = self._held, None
        if held is None:
            await trio.lowlevel.cancel_shielded_checkpoint()
        else:
            await held.write_held()

    def spawn(self, job: Callable[[], Awaitable[None]]) -> None:
        self._nursery.start_soon(job)

    def open_link(self, request: OpenSocket) -> None:
        link = self.links[request.generation] = Link(request.generation)
        self._nursery.start_soon(run_link, self, link, request, self._ssl_context)

    def rearm_timer(self, deadline: float | None) -> None:
        if deadline is None:
            self._alarm.set(None)
        else:
            self._alarm.set(trio.current_time() + (deadline - self.now().monotonic))

    # --- the timer ---------------------------------------------------------------------------

    def _fire(self) -> None:
        try:
            self.wake()
        except Exception as exc:
            # A bug: fail the session's nursery as a crashed task would, rather than the run.
            if not self._closed:
                self._nursery.start_soon(_raise, exc)

    async def _release(self) -> None:
        """Disarm the timer for good (the session is over)."""
        await self._alarm.release()


async def _raise(exc: Exception) -> None:
    raise exc


def _run(options: EngineOptions, ssl_context: ssl.SSLContext | None) -> SessionTasks[Any, Session]:
    """The loop's part of :func:`open_session`: the session's tasks in one nursery."""
    return SessionTasks(trio.open_nursery(), Session, _stop, options, ssl_context)


async def _stop(session: Session) -> None:
    """End the session's tasks: close it, cancel its nursery, disarm its timer for good."""
    session.close()
    session._nursery.cancel_scope.cancel()
    await session._release()


def _now() -> Now:
    return Now(trio.current_time(), time.time())


def _loop_clock() -> Clock:
    return _now  # one function for every session, not a closure each


open_session: Final = open_session_function(
    SessionOpener(_run, new_event=trio.Event, loop_clock=_loop_clock, library="trio"),
    Session,
    """Open a session on trio: ``async with open_session(base_url, token_provider) as session``.

The arguments are the same on every adapter. ``clock`` defaults to
``Now(trio.current_time(), time.time())``.""",
)
