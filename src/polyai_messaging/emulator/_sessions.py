"""Sessions and their open sockets: journaling, fan-out and ending.

All methods here are synchronous. The event loop (trio or asyncio) runs one task at a time, so a
method that does not ``await`` is atomic: an event is journaled and queued to every socket in one
step, and a new socket takes its replay snapshot and joins the fan-out in one step, so it can
neither miss an event nor receive one twice.
"""

from __future__ import annotations

import contextlib
import enum
import math
from dataclasses import dataclass
from typing import Any

import anyio

from ._config import EmulatorConfig
from ._journal import Journal, JournalEntry, make_entry
from ._wire import EventType

__all__ = [
    "AgentJob",
    "AgentPhase",
    "CloseSocket",
    "DropSocket",
    "SendFrame",
    "Session",
    "SocketConnection",
]


class AgentPhase(enum.Enum):
    """Who answers the user's messages."""

    NOT_JOINED = "not_joined"
    """No agent yet (or the conversation was lost): messages get ``Conversation not found``."""
    POLY_AGENT = "poly_agent"
    """The scripted PolyAI agent answers."""
    LIVE_AGENT = "live_agent"
    """The scripted live agent answers."""
    NO_AGENT = "no_agent"
    """The AI left after a client-managed, failed or timed-out handoff (:ref:`protocol-phases`)."""


@dataclass(frozen=True)
class AgentJob:
    """A client event the agent must react to, queued in arrival order."""

    type: EventType
    text: str = ""
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class SendFrame:
    """Outbox item: send this text frame."""

    text: str


@dataclass(frozen=True)
class CloseSocket:
    """Outbox item: after ``grace`` seconds, close with ``code``."""

    code: int
    reason: str
    grace: float


@dataclass(frozen=True)
class DropSocket:
    """Outbox item: abort the connection without a closing handshake."""


Outgoing = SendFrame | CloseSocket | DropSocket


class SocketConnection:
    """One open WebSocket of a session, as seen by the fan-out."""

    def __init__(self, session: Session, peer: tuple[str, int] | None) -> None:
        self.session = session
        self.peer = peer
        """The client's (host, port), used to find the TCP connection for ``drop``."""
        self._outbox_send, self.outbox = anyio.create_memory_object_stream[Outgoing](math.inf)
        self.frames_sent = 0
        """Frames written since the socket opened or the faults were last assigned."""
        self.fault_generation = -1
        self.frozen = False
        """Set by the ``freeze-after`` fault: nothing is sent or processed any more."""
        self.closing = False

    def deliver(self, text: str) -> None:
        """Queue a frame, unless the socket is frozen or closing."""
        if not (self.frozen or self.closing):
            self._put(SendFrame(text))

    def close(self, code: int, reason: str = "", grace: float = 0.0) -> None:
        """Queue a close after the frames already queued."""
        if not self.closing:
            self.closing = True
            self._put(CloseSocket(code, reason, grace))

    def drop(self) -> None:
        """Queue an abrupt drop after the frames already queued."""
        if not self.closing:
            self.closing = True
            self._put(DropSocket())

    def detach(self) -> None:
        """Leave the session's fan-out; called once the socket is gone."""
        self.session.sockets.discard(self)
        self._outbox_send.close()
        self.outbox.close()

    def _put(self, item: Outgoing) -> None:
        # The socket may already be gone; then there is nobody to tell.
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._outbox_send.send_nowait(item)


class Session:
    """One conversation: its journal, sockets, agent phase and lifetime."""

    def __init__(
        self,
        *,
        session_id: str,
        connector_token: str,
        access_token: str,
        streaming: bool,
        platform: str,
        config: EmulatorConfig,
        now: float,
    ) -> None:
        self.id = session_id
        self.streaming = streaming
        self.platform = platform
        self.config = config
        self._connector_token = connector_token
        self._access_token = access_token
        self.journal = Journal()
        self.sockets: set[SocketConnection] = set()
        self.created_at = now
        self.last_activity = now
        """``anyio.current_time()`` of the last client frame or handshake."""
        self.phase = AgentPhase.NOT_JOINED
        self.end_reason: str | None = None
        """The ``SESSION_END`` reason once the session has ended."""
        self.expired = False
        """Set at the idle timeout; handshakes then get 404."""
        self.agent_inbox, self.agent_jobs = anyio.create_memory_object_stream[AgentJob](math.inf)
        self.agent_scope = anyio.CancelScope()
        """Cancels the agent's work when the session ends."""
        self.journal.append(
            EventType.SESSION_START,
            {
                "capabilities": {
                    "streaming": streaming,
                    "max_message_size_bytes": config.max_frame_bytes,
                    "max_reconnect_attempts": config.max_reconnect_attempts,
                    "heartbeat_interval_seconds": config.heartbeat_interval_seconds,
                }
            },
        )

    def __repr__(self) -> str:
        return f"<Session {self.id} events={len(self.journal)} sockets={len(self.sockets)}>"

    @property
    def ended(self) -> bool:
        """Whether ``SESSION_END`` has been journaled."""
        return self.end_reason is not None

    def accepts_token(self, access_token: str, connector_token: str) -> bool:
        """The token that created the session, or any token of the same connector
        (:ref:`protocol-emulator`)."""
        return access_token == self._access_token or connector_token == self._connector_token

    def touch(self, now: float) -> None:
        """Record client activity (it postpones the idle timeout)."""
        self.last_activity = now

    def publish(
        self,
        event_type: str,
        payload: dict[str, Any],
        *,
        metadata: dict[str, Any] | None = None,
        transient: bool = False,
    ) -> JournalEntry | None:
        """Journal (unless ``transient``) and fan out one event; nothing once the session ended.

        Transient events get ``sequence: null`` and are not replayed.
        """
        if self.ended:
            return None
        if transient:
            entry = make_entry(event_type, payload, sequence=None, metadata=metadata)
        else:
            entry = self.journal.append(event_type, payload, metadata=metadata)
        for connection in list(self.sockets):
            connection.deliver(entry.text)
        return entry

    def end(self, reason: str) -> None:
        """Journal ``SESSION_END``, stop the agent and close every socket with 1000
        (:ref:`protocol-emulator`)."""
        if self.ended:
            return
        self.publish(EventType.SESSION_END, {"reason": reason})
        self.end_reason = reason
        self.agent_scope.cancel()
        self.agent_inbox.close()
        for connection in list(self.sockets):
            connection.close(1000, "session ended", self.config.close_grace_seconds)

    def close_agent_queue(self) -> None:
        """Close both ends of the agent's job queue (the emulator is stopping)."""
        self.agent_inbox.close()
        self.agent_jobs.close()

    def expire(self) -> None:
        """The idle timeout: end as abandoned (if not ended yet) and refuse later handshakes."""
        self.end("REASON_USER_ABANDONED")
        self.expired = True
