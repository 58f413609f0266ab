"""Accepting connections on asyncio (``asyncio.start_server``) and serving them with hypercorn's
asyncio ``TCPServer``."""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import ssl

import anyio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config

from ._accept import LISTEN_BACKLOG, Accepted

__all__ = ["AsyncioAcceptor", "open_asyncio_acceptor"]

_Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class AsyncioAcceptor:
    """Accepts connections on a listening socket (TLS when ``ssl_context`` is given).

    asyncio accepts by itself and calls back outside any task; the connections wait in a queue
    until the server's accept loop takes them, so that they are served in its task group.
    """

    def __init__(self, app: ASGIWrapper, config: Config) -> None:
        self._app = app
        self._config = config
        self._context = WorkerContext(None)
        self._arrivals, self._queue = anyio.create_memory_object_stream[_Streams](math.inf)
        self._server: asyncio.Server | None = None

    async def listen(self, sock: socket.socket, ssl_context: ssl.SSLContext | None) -> None:
        """Start accepting on ``sock``."""
        # asyncio listens on ``sock`` again, with a backlog of 100 unless told.
        self._server = await asyncio.start_server(
            self._arrive, sock=sock, ssl=ssl_context, backlog=LISTEN_BACKLOG
        )

    def _arrive(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self._arrivals.send_nowait((reader, writer))
        except anyio.ClosedResourceError:  # the server is stopping
            writer.transport.abort()

    async def accept(self) -> Accepted:
        """The next connection (with TLS, its handshake is done)."""
        reader, writer = await self._queue.receive()
        loop = asyncio.get_running_loop()
        server = TCPServer(self._app, loop, self._config, self._context, {}, reader, writer)

        async def serve() -> None:
            try:
                await server.run()
            finally:
                # Closed already unless hypercorn was cancelled before it could close it.
                writer.transport.abort()

        return Accepted(writer.get_extra_info("socket"), serve)

    def close(self) -> None:
        """Stop listening and abort the connections still queued."""
        if self._server is not None:
            self._server.close()
        self._arrivals.close()
        with contextlib.suppress(anyio.EndOfStream):
            while True:
                _, writer = self._queue.receive_nowait()
                writer.transport.abort()
        self._queue.close()

    async def terminate(self) -> None:
        """Tell hypercorn the server is stopping."""
        await self._context.terminated.set()


async def open_asyncio_acceptor(
    sock: socket.socket, ssl_context: ssl.SSLContext | None, app: ASGIWrapper, config: Config
) -> AsyncioAcceptor:
    """An :class:`AsyncioAcceptor` listening on ``sock`` (an :data:`~._accept.OpenAcceptor`)."""
    acceptor = AsyncioAcceptor(app, config)
    try:
        await acceptor.listen(sock, ssl_context)
    except BaseException:
        acceptor.close()
        raise
    return acceptor
