"""Serving the emulator with hypercorn on trio, on loopback only.

We drive hypercorn's per-connection ``TCPServer`` from our own accept loop instead of calling
``hypercorn.trio.serve``, for two reasons:

* the ``drop`` fault must abort a TCP connection without a WebSocket closing handshake, which
  ASGI cannot express; owning the accept loop lets us keep each connection's socket by client
  address and shut it down on request;
* binding the listening socket ourselves gives the real port at once (port 0 picks a free one)
  without parsing log lines or sleeping.
"""

from __future__ import annotations

import ipaddress
import socket as stdlib_socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode

import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext

from ._app import WS_PATH, EmulatorApp
from ._config import EmulatorConfig
from ._state import EmulatorState

if TYPE_CHECKING:
    import trustme

__all__ = ["DEFAULT_PORT", "RunningEmulator", "run_emulator", "serve_forever"]

DEFAULT_PORT = 8765
"""The port :func:`serve_forever` uses unless told otherwise."""

_SHUTDOWN_GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class RunningEmulator:
    """A started emulator: where it listens and its live state."""

    host: str
    """The bound address (always a loopback address)."""
    port: int
    """The bound port (the real one, also when 0 was asked for)."""
    state: EmulatorState
    """The in-memory state: journals, sessions, tokens, faults (``state.faults = ...``)."""
    ca: trustme.CA | None = None
    """With TLS, the throw-away certificate authority that signed the server certificate."""

    @property
    def tls(self) -> bool:
        """Whether the emulator serves HTTPS and WSS."""
        return self.ca is not None

    @property
    def config(self) -> EmulatorConfig:
        """The configuration the emulator runs with."""
        return self.state.config

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with TLS), the REST base URL."""
        return f"{'https' if self.tls else 'http'}://{self._netloc}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT/ws`` (``wss://`` with TLS), without query parameters."""
        return f"{'wss' if self.tls else 'ws'}://{self._netloc}{WS_PATH}"

    def ws_connect_url(self, session_id: str, access_token: str, cursor: int | None = None) -> str:
        """:attr:`ws_url` with the §5.1 query parameters filled in."""
        query: dict[str, str | int] = {"session_id": session_id, "access_token": access_token}
        if cursor is not None:
            query["cursor"] = cursor
        return f"{self.ws_url}?{urlencode(query)}"

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client ``SSLContext`` that trusts :attr:`ca` (TLS emulators only)."""
        if self.ca is None:
            raise RuntimeError("this emulator was started without tls=True")
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    @property
    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@asynccontextmanager
async def run_emulator(
    config: EmulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: bool = False,
) -> AsyncIterator[RunningEmulator]:
    """Serve the emulator for the duration of the ``async with`` block.

    ``port=0`` picks a free port; read it back from :attr:`RunningEmulator.port`. ``tls=True``
    serves HTTPS/WSS with a certificate from a fresh ``trustme`` CA (a test dependency). Only
    loopback addresses are accepted, since the emulator's credentials are public. On exit,
    sockets are closed with 1001, in-flight HTTP exchanges get a short grace period, and every
    task is gone before the block returns.
    """
    config = config if config is not None else EmulatorConfig()
    host = _loopback_address(host)
    ca, server_context = _tls_contexts() if tls else (None, None)
    state = EmulatorState(config)
    server = _Server(EmulatorApp(state), config)
    state.transport_aborter = server.abort
    listener, bound_port = await _listen(host, port, server_context)
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(state.run)
            await nursery.start(server.serve, listener)
            try:
                yield RunningEmulator(host=host, port=bound_port, state=state, ca=ca)
            except BaseException as error:
                body_error = error
                raise
            finally:
                with trio.CancelScope(shield=True):
                    await server.shutdown(state)
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The nursery wraps whatever the ``async with`` body raised in a group; hand the
        # caller its own exception back, so ``pytest.raises`` and ``except`` work as expected.
        if body_error is not None and list(group.exceptions) == [body_error]:
            raise body_error from None
        raise


async def serve_forever(
    config: EmulatorConfig | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    tls: bool = False,
    *,
    task_status: trio.TaskStatus[RunningEmulator] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled (the CLI's entry point).

    Use ``await nursery.start(serve_forever, ...)`` to get the :class:`RunningEmulator` once it
    is listening, e.g. to print its URLs or save ``ca.cert_pem`` for TLS clients.
    """
    async with run_emulator(config, host=host, port=port, tls=tls) as emulator:
        task_status.started(emulator)
        await trio.sleep_forever()


def _loopback_address(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"host must be a loopback IP address or 'localhost', got {host!r}"
        ) from None
    if not address.is_loopback:
        raise ValueError(f"the emulator serves on loopback only, got {host!r}")
    return str(address)


def _tls_contexts() -> tuple[trustme.CA, ssl.SSLContext]:
    try:
        import trustme  # noqa: PLC0415 - optional: only TLS emulators need it
    except ImportError:  # pragma: no cover - trustme is installed with the test extra
        raise RuntimeError("tls=True needs the 'trustme' package (pip install trustme)") from None
    ca = trustme.CA()
    certificate = ca.issue_cert("127.0.0.1", "localhost", "::1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    # No HTTP/2: WebSockets here use the HTTP/1.1 upgrade.
    context.set_alpn_protocols(["http/1.1"])
    return ca, context


async def _listen(
    host: str, port: int, server_context: ssl.SSLContext | None
) -> tuple[trio.abc.Listener[Any], int]:
    family = stdlib_socket.AF_INET6 if ":" in host else stdlib_socket.AF_INET
    sock = trio.socket.socket(family, stdlib_socket.SOCK_STREAM)
    try:
        sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_REUSEADDR, 1)
        await sock.bind((host, port))
        sock.listen(128)
        bound_port = int(sock.getsockname()[1])
    except BaseException:
        sock.close()
        raise
    listener: trio.abc.Listener[Any] = trio.SocketListener(sock)
    if server_context is not None:
        listener = trio.SSLListener(listener, server_context, https_compatible=True)
    return listener, bound_port


def _raw_socket(stream: trio.abc.Stream) -> trio.socket.SocketType:
    transport = stream.transport_stream if isinstance(stream, trio.SSLStream) else stream
    return cast(trio.SocketStream, transport).socket


class _Server:
    """Accepts connections and runs hypercorn's HTTP/1.1 + WebSocket protocol on each."""

    def __init__(self, app: EmulatorApp, config: EmulatorConfig) -> None:
        self._app = ASGIWrapper(app)  # type: ignore[arg-type]  # hypercorn's own ASGI types
        self._config = HypercornConfig()
        # WebSocket URLs carry the access token in their query string: never log requests.
        self._config.accesslog = None
        # Oversized client frames must reach the app, which answers "Message too large" and
        # keeps the socket open, instead of hypercorn closing it with 1009.
        self._config.websocket_max_message_size = max(16 * 1024 * 1024, 4 * config.max_frame_bytes)
        self._context = WorkerContext(None)
        self._sockets: dict[tuple[str, int], trio.socket.SocketType] = {}
        self._accept_scope = trio.CancelScope()
        self._handlers_scope: trio.CancelScope | None = None
        self._done = trio.Event()

    async def serve(
        self, listener: trio.abc.Listener[Any], *, task_status: trio.TaskStatus[None]
    ) -> None:
        try:
            async with trio.open_nursery() as handlers:
                self._handlers_scope = handlers.cancel_scope
                # The socket is already listening, so clients may connect from here on.
                task_status.started()
                with self._accept_scope:
                    await trio.serve_listeners(self._handle, [listener], handler_nursery=handlers)
        finally:
            self._done.set()

    async def _handle(self, stream: trio.abc.Stream) -> None:
        raw = _raw_socket(stream)
        try:
            peer = raw.getpeername()
        except OSError:
            return  # the client is already gone
        key = (str(peer[0]), int(peer[1]))
        self._sockets[key] = raw
        try:
            tcp_server = TCPServer(self._app, self._config, self._context, {}, stream)  # type: ignore[arg-type]
            await tcp_server.run()
        finally:
            self._sockets.pop(key, None)

    def abort(self, peer: tuple[str, int]) -> bool:
        """Shut the client's TCP connection down in both directions, without a WebSocket close.

        Data already written is still delivered, then the client sees the end of the stream.
        """
        sock = self._sockets.get(peer)
        if sock is None:
            return False
        try:
            sock.shutdown(stdlib_socket.SHUT_RDWR)
        except OSError:
            return False
        return True

    async def shutdown(self, state: EmulatorState) -> None:
        """Stop accepting, close sockets politely, then cancel whatever is left."""
        self._accept_scope.cancel()
        state.close_all_sockets()
        # Idle keep-alive HTTP connections close once the worker context is terminated.
        await self._context.terminated.set()
        with trio.move_on_after(_SHUTDOWN_GRACE_SECONDS):
            await self._done.wait()
        if self._handlers_scope is not None:
            self._handlers_scope.cancel()
        await self._done.wait()
