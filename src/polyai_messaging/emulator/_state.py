"""The emulator's in-memory state: connectors, tokens, sessions, faults and background tasks.

Tests reach it as ``RunningEmulator.state`` to inspect journals, expire sessions, inject events
and switch faults at runtime.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import anyio
import anyio.abc

from ._agent import run_agent
from ._auth import AccessToken, TokenRegistry
from ._config import EmulatorConfig
from ._fault_state import FaultState
from ._faults import Faults, parse_faults
from ._ratelimit import RateLimiter
from ._sessions import Session, SocketConnection

__all__ = ["EmulatorState"]

logger = logging.getLogger("polyai_messaging.emulator")  # the public name

TransportAborter = Callable[[tuple[str, int]], bool]


class EmulatorState:
    """Everything the emulator remembers. Create it, then run :meth:`run` in a task group."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.tokens = TokenRegistry()
        """Minted access tokens."""
        self.fault_state = FaultState(config.faults)
        """The active faults and their counters; most callers use :attr:`faults`."""
        self.transport_aborter: TransportAborter | None = None
        """Set by the server: shuts down the TCP connection of a client address, returning
        whether it found one. Without it, ``drop`` falls back to a close with code 4002."""
        self.http_limiter = _limiter(config.http_rate_limit_per_second)
        self.ws_limiter = _limiter(config.ws_rate_limit_per_second)
        self._sessions: dict[str, Session] = {}
        self._live: dict[str, Session] = {}
        self._agents: anyio.abc.TaskGroup | None = None

    # -- faults ---------------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The active faults. Assigning a new value (or a spec string via :meth:`set_faults`)
        takes effect at once and restarts every fault counter."""
        return self.fault_state.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self.fault_state.faults = faults

    def set_faults(self, faults: Faults | str) -> Faults:
        """Switch faults at runtime from a :class:`Faults` value or a CLI spec string."""
        value = parse_faults(faults) if isinstance(faults, str) else faults
        self.faults = value
        return value

    # -- background tasks -----------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Host the agents and the idle reaper until cancelled."""
        try:
            async with anyio.create_task_group() as tasks:
                self._agents = tasks
                tasks.start_soon(self._reap_idle_sessions)
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self._agents = None
            for session in self._sessions.values():
                session.close_agent_queue()

    async def _reap_idle_sessions(self) -> None:
        # Activity only moves deadlines later, and a new session's deadline is never earlier than
        # an existing one's, so sleeping until the earliest deadline seen never misses one.
        timeout = self.config.idle_timeout_seconds
        while True:
            now = anyio.current_time()
            wake_at = now + timeout
            for session in list(self._live.values()):
                deadline = session.last_activity + timeout
                if deadline <= now:
                    self.expire_session(session.id)
                else:
                    wake_at = min(wake_at, deadline)
            await anyio.sleep_until(wake_at)

    # -- access tokens --------------------------------------------------------------------------

    def mint_access_token(self, connector_token: str) -> str:
        """A fresh access token for a connector token (which is assumed valid)."""
        return self.tokens.mint(
            connector_token, lifetime=self.config.expires_in, now=anyio.current_time()
        )

    def resolve_access_token(self, access_token: str) -> AccessToken | None:
        """The record of a valid, unexpired access token, else ``None``."""
        return self.tokens.resolve(access_token, now=anyio.current_time())

    # -- sessions -------------------------------------------------------------------------------

    @property
    def sessions(self) -> Mapping[str, Session]:
        """Every session ever created, expired ones included, by id (read-only view)."""
        return MappingProxyType(self._sessions)

    def session(self, session_id: str) -> Session:
        """The session with this id (``KeyError`` if unknown)."""
        return self._sessions[session_id]

    def create_session(
        self, access_token: str, *, streaming: bool = False, platform: str = "web"
    ) -> Session:
        """Create a session bound to ``access_token`` (which must be valid) and start its agent.

        ``SESSION_START`` is journaled as sequence 1.
        """
        record = self.resolve_access_token(access_token)
        if record is None:
            raise ValueError("invalid or expired access token")
        if self._agents is None:
            raise RuntimeError("EmulatorState.run() is not running")
        session = Session(
            session_id=str(uuid.uuid4()),
            connector_token=record.connector_token,
            access_token=access_token,
            streaming=streaming,
            platform=platform,
            config=self.config,
            now=anyio.current_time(),
        )
        self._sessions[session.id] = session
        self._live[session.id] = session
        self._agents.start_soon(run_agent, session)
        return session

    def find_open_session(self, session_id: str) -> Session | None:
        """The session if it exists and has not expired."""
        session = self._sessions.get(session_id)
        return None if session is None or session.expired else session

    def expire_session(self, session_id: str) -> None:
        """Expire a session now, as the idle timeout would: ``SESSION_END``
        (``REASON_USER_ABANDONED``) unless it already ended, sockets closed with 1000, and later
        handshakes answered 404."""
        session = self._sessions[session_id]
        session.expire()
        self._live.pop(session_id, None)
        logger.info("session %s expired", session_id)

    def end_session(self, session_id: str, reason: str = "REASON_NATURAL_END") -> None:
        """End a session now with ``reason`` (journals ``SESSION_END``, closes sockets)."""
        self._sessions[session_id].end(reason)

    def publish(
        self,
        session_id: str,
        event_type: str,
        payload: dict[str, Any],
        *,
        metadata: dict[str, Any] | None = None,
        transient: bool = False,
    ) -> dict[str, Any] | None:
        """Inject an arbitrary server event into a session, journaled unless ``transient``.

        Returns the envelope sent, or ``None`` if the session has ended. Useful for client tests
        of events the scripted agent never produces (unknown types, odd payloads).
        """
        entry = self._sessions[session_id].publish(
            event_type, payload, metadata=metadata, transient=transient
        )
        return None if entry is None else entry.event

    def drop_sockets(self, session_id: str) -> int:
        """Abort every open socket of a session now (as the ``drop`` fault does); returns how
        many were open."""
        connections = list(self._sessions[session_id].sockets)
        for connection in connections:
            if connection.frozen:  # its sender has stopped, so abort directly
                self.abort_transport(connection)
            else:
                connection.drop()
        return len(connections)

    def open_socket_count(self, session_id: str) -> int:
        """How many sockets of the session are open (frozen ones included)."""
        return len(self._sessions[session_id].sockets)

    # -- sockets --------------------------------------------------------------------------------

    def abort_transport(self, connection: SocketConnection) -> bool:
        """Shut down the TCP connection under ``connection``; ``False`` if that is impossible."""
        if self.transport_aborter is None or connection.peer is None:
            return False
        return self.transport_aborter(connection.peer)

    def close_all_sockets(self, code: int = 1001, reason: str = "emulator shutting down") -> None:
        """Close every open socket (server shutdown). Frozen sockets are aborted instead, as
        nothing reads their outbox any more."""
        for session in self._sessions.values():
            for connection in list(session.sockets):
                if connection.frozen:
                    self.abort_transport(connection)
                else:
                    connection.close(code, reason)


def _limiter(rate: float | None) -> RateLimiter | None:
    return None if rate is None else RateLimiter(rate)
