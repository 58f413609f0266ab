"""What the runtime needs from an event loop: the few primitives each adapter supplies.

The runtime decides; an adapter runs its decisions on one event loop. These protocols are the
whole of what the runtime asks of a loop and its sockets, so that the same runtime serves trio
and asyncio (and any loop an application adapts it to).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, NoReturn, Protocol

import attrs

from ..driver import OpenSocket

__all__ = [
    "MAX_INBOUND_MESSAGE",
    "Adapter",
    "Event",
    "LinkHandle",
    "QueuedClose",
    "raise_unwrapped",
]

MAX_INBOUND_MESSAGE: Final = 4 * 1024 * 1024
"""Largest inbound WebSocket message an adapter accepts (bytes): well above the protocol's 128 KiB,
so that a server overshooting it is still read, while one runaway message cannot exhaust memory."""


class Event(Protocol):
    """A one-shot event of the running loop (``trio.Event``, ``asyncio.Event``)."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    async def wait(self) -> object: ...


class Adapter(Protocol):
    """The loop, the sockets and the timer of one session, as the runtime drives them.

    None of these may block or await: the runtime calls them while it executes the effects of
    one driver step, and nothing else may run in between.
    """

    def new_event(self) -> Event:
        """A fresh :class:`Event` of the running loop."""

    def spawn(self, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` as a task of the session (cancelled when the session closes)."""

    def open_link(self, request: OpenSocket) -> None:
        """Start the link of ``request.generation``: connect, then report to the runtime."""

    def send_frame(self, generation: int, text: str) -> bool:
        """Queue a text frame on that link; ``False`` if the link has ended. (The runtime's
        own routes it to the :class:`LinkHandle` in ``Engine.links``; likewise the next two.)"""

    def close_link(self, generation: int, code: int, reason: str) -> None:
        """Close that link politely, after the frames already queued."""

    def abort_link(self, generation: int) -> None:
        """Drop that link at once, without a closing handshake."""

    def rearm_timer(self, deadline: float | None) -> None:
        """Wake the runtime (``SessionRuntime.wake``) at ``deadline``, the driver's clock."""


class LinkHandle(Protocol):
    """One running socket generation, as the runtime drives it (see ``Engine.links``)."""

    def send(self, text: str) -> bool:
        """Queue a text frame for the link's writer; ``False`` if the writer is gone."""

    def close(self, code: int, reason: str) -> None:
        """Close politely after the frames already queued (at once if the writer is gone)."""

    def abort(self) -> None:
        """Drop the connection now, without a closing handshake."""

    async def aclose(self, code: int, reason: str, timeout: float) -> None:
        """:meth:`close`, then wait (at most ``timeout`` seconds) until the link has ended."""


@attrs.frozen
class QueuedClose:
    """Queued after a link's last frame: its writer closes the socket with this code and reason,
    and writes nothing more."""

    code: int
    reason: str


def raise_unwrapped(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Raise the lone exception of ``group`` as it is, or the group itself if it holds several.

    A session's tasks end only by cancellation, so a lone exception from the task group or
    nursery that runs them is the caller's own (raised in the ``async with`` block) or one
    task's crash: either way the caller wants it, not a group around it, on every loop.
    """
    if len(group.exceptions) != 1:
        raise group
    exc = group.exceptions[0]
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context  # not the group it was unwrapped from
        del exc, context
