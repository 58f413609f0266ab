"""Accepting connections on trio and serving them with hypercorn's trio ``TCPServer``."""

from __future__ import annotations

import errno
import socket
import ssl
from typing import Any

import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config
from hypercorn.events import Closed, Event
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext

from ._accept import Accepted

__all__ = ["TrioAcceptor", "open_trio_acceptor"]

# Out of descriptors or memory: trio.serve_listeners waits a little and accepts again.
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_RESOURCE_RETRY_SECONDS = 0.1


class _TCPServer(TCPServer):
    """hypercorn's trio ``TCPServer``, tolerant of a race in it.

    hypercorn (0.18) ends a connection whose peer went away by sending EOF outside its send
    lock; a frame being sent at that moment then finds the stream busy. The connection is
    closing either way, so this is handled as a broken stream is: the protocol is told it closed.
    """

    async def protocol_send(self, event: Event) -> None:
        try:
            await super().protocol_send(event)
        except trio.BusyResourceError:
            await self.protocol.handle(Closed())


class TrioAcceptor:
    """Accepts connections on a listening socket (TLS when ``ssl_context`` is given)."""

    def __init__(
        self,
        sock: socket.socket,
        ssl_context: ssl.SSLContext | None,
        app: ASGIWrapper,
        config: Config,
    ) -> None:
        self._socket = trio.socket.from_stdlib_socket(sock)
        listener: trio.abc.Listener[Any] = trio.SocketListener(self._socket)
        if ssl_context is not None:
            listener = trio.SSLListener(listener, ssl_context, https_compatible=True)
        self._listener = listener
        self._app = app
        self._config = config
        self._context = WorkerContext(None)

    async def accept(self) -> Accepted:
        """The next connection; its TLS handshake happens when it is served."""
        while True:
            try:
                stream = await self._listener.accept()
            except OSError as error:
                if error.errno not in _RESOURCE_ERRORS:
                    raise
                await trio.sleep(_RESOURCE_RETRY_SECONDS)
            else:
                break
        transport = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
        server = _TCPServer(self._app, self._config, self._context, {}, stream)

        async def serve() -> None:
            try:
                await server.run()
            finally:
                # hypercorn leaves the stream open when the TLS handshake fails or is cancelled.
                await trio.aclose_forcefully(stream)

        return Accepted(transport.socket, serve)

    def close(self) -> None:
        """Stop listening (nothing is ever accepted ahead of :meth:`accept`)."""
        self._socket.close()

    async def terminate(self) -> None:
        """Tell hypercorn the server is stopping."""
        await self._context.terminated.set()


async def open_trio_acceptor(
    sock: socket.socket, ssl_context: ssl.SSLContext | None, app: ASGIWrapper, config: Config
) -> TrioAcceptor:
    """A :class:`TrioAcceptor` on ``sock`` (an :data:`~._accept.OpenAcceptor`)."""
    return TrioAcceptor(sock, ssl_context, app, config)
