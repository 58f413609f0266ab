"""The emulator's HTTP server: our own accept loop, hypercorn's protocol on each connection.

We drive hypercorn's per-connection ``TCPServer`` from our own accept loop instead of calling
``hypercorn.trio.serve`` or ``hypercorn.asyncio.serve``, for two reasons:

* the ``drop`` fault must abort a TCP connection without a WebSocket closing handshake, which
  ASGI cannot express; owning the accept loop lets us keep each connection's socket by client
  address and shut it down on request;
* binding the listening socket ourselves gives the real port at once (port 0 picks a free one)
  without parsing log lines or sleeping.

The accept loop and the connection tasks are anyio's; accepting a connection and handing it to
hypercorn is done by trio's or asyncio's own means (:mod:`._serve_trio`, :mod:`._serve_asyncio`),
picked when the emulator starts, and only that one is imported.
"""

from __future__ import annotations

import socket
import ssl

import anyio
import anyio.abc
import sniffio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config as HypercornConfig

from ._accept import Accepted, Acceptor, OpenAcceptor, RawSocket
from ._app import EmulatorApp
from ._config import EmulatorConfig
from ._state import EmulatorState

__all__ = ["HypercornServer"]

_SHUTDOWN_GRACE_SECONDS = 2.0


def _acceptor_opener() -> OpenAcceptor:
    """How to accept connections on the running event loop; only that loop's server is imported."""
    library = sniffio.current_async_library()
    if library == "trio":
        from ._serve_trio import open_trio_acceptor  # noqa: PLC0415 - see the docstring

        return open_trio_acceptor
    if library == "asyncio":
        from ._serve_asyncio import open_asyncio_acceptor  # noqa: PLC0415 - see the docstring

        return open_asyncio_acceptor
    raise RuntimeError(f"the emulator runs on trio or asyncio, not {library}")


class HypercornServer:
    """Accepts connections and runs hypercorn's HTTP/1.1 + WebSocket protocol on each."""

    def __init__(self, app: EmulatorApp, config: EmulatorConfig) -> None:
        self._app = ASGIWrapper(app)  # type: ignore[arg-type]  # hypercorn's own ASGI types
        self._config = HypercornConfig()
        # WebSocket URLs carry the access token in their query string: never log requests.
        self._config.accesslog = None
        # Oversized client frames must reach the app, which answers "Message too large" and
        # keeps the socket open, instead of hypercorn closing it with 1009.
        self._config.websocket_max_message_size = max(16 * 1024 * 1024, 4 * config.max_frame_bytes)
        self._open_acceptor = _acceptor_opener()
        self._acceptor: Acceptor | None = None
        self._sockets: dict[tuple[str, int], RawSocket] = {}
        self._accept_scope = anyio.CancelScope()
        self._handlers_scope: anyio.CancelScope | None = None
        self._done = anyio.Event()

    async def serve(
        self,
        sock: socket.socket,
        ssl_context: ssl.SSLContext | None,
        *,
        task_status: anyio.abc.TaskStatus[None],
    ) -> None:
        try:
            async with anyio.create_task_group() as handlers:
                self._handlers_scope = handlers.cancel_scope
                acceptor = await self._open_acceptor(sock, ssl_context, self._app, self._config)
                self._acceptor = acceptor
                try:
                    # The socket is already listening, so clients may connect from here on.
                    task_status.started()
                    with self._accept_scope:
                        while True:
                            handlers.start_soon(self._handle, await acceptor.accept())
                finally:
                    acceptor.close()
        finally:
            self._done.set()

    async def _handle(self, accepted: Accepted) -> None:
        try:
            peer = accepted.socket.getpeername()
        except OSError:  # the client is already gone; hypercorn closes the connection
            await accepted.serve()
            return
        key = (str(peer[0]), int(peer[1]))
        self._sockets[key] = accepted.socket
        try:
            await accepted.serve()
        finally:
            self._sockets.pop(key, None)

    def abort(self, peer: tuple[str, int]) -> bool:
        """Shut the client's TCP connection down in both directions, without a WebSocket close.

        Frames already handed to the operating system are still delivered, then the client sees
        the end of the stream. (On asyncio a frame is handed over as it is sent, unless the
        client has stopped reading long enough to fill the socket's buffers.)
        """
        sock = self._sockets.get(peer)
        if sock is None:
            return False
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            return False
        return True

    async def shutdown(self, state: EmulatorState) -> None:
        """Stop accepting, close sockets politely, then cancel whatever is left."""
        self._accept_scope.cancel()
        state.close_all_sockets()
        # Idle keep-alive HTTP connections close once the worker context is terminated.
        if self._acceptor is not None:
            await self._acceptor.terminate()
        with anyio.move_on_after(_SHUTDOWN_GRACE_SECONDS):
            await self._done.wait()
        if self._handlers_scope is not None:
            self._handlers_scope.cancel()
        await self._done.wait()
