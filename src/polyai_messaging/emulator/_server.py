"""Running the emulator: :func:`run_emulator` for a block, :func:`serve_forever` for the CLI.

Loopback addresses only (the emulator's credentials are public); ``tls=True`` serves with a
certificate from a fresh ``trustme`` CA. The server itself is ``_hypercorn_server``.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlencode

import anyio
import anyio.abc

from ._accept import LISTEN_BACKLOG
from ._app import WS_PATH, EmulatorApp
from ._config import EmulatorConfig
from ._hypercorn_server import HypercornServer
from ._state import EmulatorState

if TYPE_CHECKING:
    import trustme

__all__ = ["DEFAULT_PORT", "RunningEmulator", "run_emulator", "serve_forever"]

DEFAULT_PORT = 8765
"""The port :func:`serve_forever` uses unless told otherwise."""

_MAX_PORT = 65535


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
        """:attr:`ws_url` with the session's query parameters filled in
        (:ref:`protocol-websocket`)."""
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
    """Serve the emulator for the duration of the ``async with`` block, on the running event loop
    (trio or asyncio).

    ``port=0`` picks a free port; read it back from :attr:`RunningEmulator.port`. ``tls=True``
    serves HTTPS/WSS with a certificate from a fresh ``trustme`` CA (a test dependency). Only
    loopback addresses are accepted, since the emulator's credentials are public. On exit,
    sockets are closed with 1001, in-flight HTTP exchanges get a short grace period, and every
    task is gone before the block returns.
    """
    config = config if config is not None else EmulatorConfig()
    host = _loopback_address(host)
    if not 0 <= port <= _MAX_PORT:
        raise ValueError(f"port must be between 0 and {_MAX_PORT}, got {port}")
    ca, server_context = _tls_contexts() if tls else (None, None)
    state = EmulatorState(config)
    server = HypercornServer(EmulatorApp(state), config)
    state.transport_aborter = server.abort
    body_error: BaseException | None = None
    # The accept loop closes the listening socket when it stops; this closes it if it never ran.
    with _listen(host, port) as sock:
        bound_port = int(sock.getsockname()[1])
        try:
            async with anyio.create_task_group() as tasks:
                await tasks.start(state.run)
                await tasks.start(server.serve, sock, server_context)
                try:
                    yield RunningEmulator(host=host, port=bound_port, state=state, ca=ca)
                except BaseException as error:
                    body_error = error
                    raise
                finally:
                    with anyio.CancelScope(shield=True):
                        await server.shutdown(state)
                    tasks.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The task group wraps whatever the ``async with`` body raised in a group; hand the
            # caller its own exception back, so ``pytest.raises`` and ``except`` work as expected.
            if body_error is not None and list(group.exceptions) == [body_error]:
                _raise_as_it_was(body_error)
            raise


def _raise_as_it_was(error: BaseException) -> NoReturn:
    """Raise ``error`` again as it was raised: its own cause kept (``from None`` would erase it),
    its context not the group it is raised from."""
    context = error.__context__
    try:
        raise error
    finally:
        error.__context__ = context


async def serve_forever(
    config: EmulatorConfig | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    tls: bool = False,
    *,
    task_status: anyio.abc.TaskStatus[RunningEmulator] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled (the CLI's entry point), on trio or asyncio.

    Use ``await task_group.start(serve_forever, ...)`` (or a trio nursery's ``start``) to get
    the :class:`RunningEmulator` once it is listening, e.g. to print its URLs or save
    ``ca.cert_pem`` for TLS clients.
    """
    async with run_emulator(config, host=host, port=port, tls=tls) as emulator:
        task_status.started(emulator)
        await anyio.sleep_forever()


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


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
