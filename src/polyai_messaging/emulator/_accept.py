"""What the server needs from an event loop: connections to serve, and their TCP sockets.

:mod:`._server` owns the accept loop and the connection tasks (anyio, on either loop); only
accepting a connection and running hypercorn's HTTP/1.1 + WebSocket protocol on it differ
between trio (:mod:`._serve_trio`) and asyncio (:mod:`._serve_asyncio`).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config

__all__ = ["LISTEN_BACKLOG", "Accepted", "Acceptor", "OpenAcceptor", "RawSocket"]

LISTEN_BACKLOG = 4096
"""Connections the kernel completes and queues before the accept loop takes them (it caps this
at ``net.core.somaxconn``). Deep enough for a thousand clients reconnecting at once: a
connection that finds the queue full has its SYN dropped and only tries again a second later."""


class RawSocket(Protocol):
    """The TCP socket under a connection (under TLS too)."""

    def getpeername(self) -> Any:
        """The client's address."""

    def shutdown(self, how: int, /) -> None:
        """Shut the connection down without closing the descriptor."""


@dataclass(frozen=True)
class Accepted:
    """A new connection."""

    socket: RawSocket
    """Its TCP socket, which the ``drop`` fault shuts down."""
    serve: Callable[[], Awaitable[None]]
    """Runs hypercorn on the connection until it ends, then closes it."""


class Acceptor(Protocol):
    """Accepts connections on a listening socket for one event loop."""

    async def accept(self) -> Accepted:
        """The next connection."""

    def close(self) -> None:
        """Stop listening; a connection accepted but not handed out yet is closed."""

    async def terminate(self) -> None:
        """Tell hypercorn the server is stopping: idle keep-alive connections then close."""


OpenAcceptor = Callable[
    [socket.socket, ssl.SSLContext | None, ASGIWrapper, Config], Awaitable[Acceptor]
]
"""Starts accepting on a listening socket (TLS with a server context) for an ASGI app."""
