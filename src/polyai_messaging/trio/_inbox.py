"""What lets a link's own task run trio-websocket's reader, rather than a task of its own.

trio-websocket reads a connection in a task it starts (``WebSocketConnection._reader_task``),
which puts each message in a memory channel for ``get_message`` to take; the connection's
opening handshake is an event that ``wrap_client_stream`` waits for. An :class:`Inbox` stands
in for the channel (both ends) and for the event, so that the reader, awaited in the link's
task, hands each message straight to the session and reports the handshake and the close.
That is one task per open socket rather than two, and one hop less per message.

All of these are private attributes: :func:`attach` takes them over only where the release
still uses them as this module expects (:data:`HOOKS`), and the link otherwise reads through
the public API, as it did.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Final

import trio
from trio_websocket import WebSocketConnection


def uses_hooks(connection: type[WebSocketConnection]) -> bool:
    """Whether ``connection``'s reader and handlers use the attributes an inbox stands in for
    (the names their code refers to)."""

    def names(function: str) -> frozenset[str]:
        code = getattr(getattr(connection, function, None), "__code__", None)
        return frozenset(code.co_names) if code is not None else frozenset()

    return (
        {"_send_channel", "_wsproto", "_stream", "_initial_request"} <= names("_reader_task")
        and {"_send_channel", "_recv_channel", "send", "aclose"} <= names("_handle_message_event")
        and {"_open_handshake", "set"} <= names("_handle_accept_connection_event")
        and {"_send_channel", "aclose"} <= names("_close_web_socket")
        and {"_recv_channel", "aclose"} <= names("_aclose")
    )


HOOKS: Final = uses_hooks(WebSocketConnection)
"""Whether this release of trio-websocket can be read in the link's task."""


class Inbox:
    """Stands in for a connection's message channel, both ends, and its opening-handshake event.

    The handshake done (``set``), it calls :meth:`opened`; a message (``send``),
    :meth:`received`; the channel closing (the connection closed, locally or by the peer, or
    a message too big), :meth:`ended`, where reading must stop as ``get_message`` raised
    ``ConnectionClosed`` then. Messages after that are dropped, as they were once the channel
    had closed.
    """

    __slots__ = ("closed", "is_open")

    def __init__(self) -> None:
        self.is_open = False
        self.closed = False

    def opened(self) -> None:
        """The opening handshake is done."""

    def received(self, message: str | bytes) -> None:
        """A message arrived."""

    def ended(self) -> None:
        """The connection has closed: stop reading."""

    # --- the opening handshake's event ----------------------------------------------------

    def set(self) -> None:
        if not self.is_open:
            self.is_open = True
            self.opened()

    # --- the message channel ----------------------------------------------------------------

    async def send(self, message: str | bytes) -> None:
        if not self.closed:
            self.received(message)

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self.ended()

    async def __aenter__(self) -> Inbox:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def attach(ws: WebSocketConnection, inbox: Inbox) -> bool:
    """Put ``inbox`` in place of ``ws``'s message channel and handshake event; ``False``
    (nothing changed) if this release does not hold them where :data:`HOOKS` expects."""
    state: Any = ws
    if not (
        HOOKS
        and isinstance(getattr(ws, "_send_channel", None), trio.MemorySendChannel)
        and isinstance(getattr(ws, "_recv_channel", None), trio.MemoryReceiveChannel)
        and isinstance(getattr(ws, "_open_handshake", None), trio.Event)
    ):
        return False
    state._send_channel = state._recv_channel = state._open_handshake = inbox
    return True
