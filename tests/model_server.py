"""A tiny in-memory model of the PolyAI Messaging server, and a harness around the driver.

:class:`ModelServer` keeps a journal (consecutive sequences from 1, unique ids), echoes client
frames the way the protocol says (user messages gain a ``message_id`` and keep their
``metadata``; heartbeat echoes are transient), answers the join request with the agent joining,
and replays everything after a cursor as ``EVENT_BATCH`` frames.

:class:`Link` connects a :class:`~polyai_messaging.driver.SessionState` to a model server
through a fake socket that can lose frames in either direction, duplicate inbound frames and
break. It executes effects the way a real adapter would and keeps a fake clock.

Also a few frame builders used by the unit tests.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from polyai_messaging.driver import (
    AbortSocket,
    CloseSocket,
    Effect,
    FrameReceived,
    Input,
    LinkClosed,
    LinkOpened,
    Now,
    OpenSocket,
    SendFrame,
    SessionState,
    WakeUp,
    step,
)

WALL_EPOCH = 1_700_000_000.0
TS = "2024-02-12T12:00:00Z"

# --- frame builders ---------------------------------------------------------------------------


def event(
    kind: str,
    sequence: int | None,
    payload: dict[str, Any] | None = None,
    *,
    id: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A server event as a JSON object (``kind`` without the ``EVENT_TYPE_`` prefix)."""
    frame: dict[str, Any] = {
        "id": id if id is not None else (f"e{sequence}" if sequence is not None else None),
        "sequence": sequence,
        "timestamp": TS,
        "type": f"EVENT_TYPE_{kind}",
        "payload": payload or {},
    }
    if metadata is not None:
        frame["metadata"] = metadata
    return frame


def session_start(sequence: int = 1, **capabilities: Any) -> dict[str, Any]:
    caps = {"streaming": False, "max_message_size_bytes": 131072, **capabilities}
    return event("SESSION_START", sequence, {"capabilities": caps})


def joined(sequence: int) -> dict[str, Any]:
    return event("POLY_AGENT_JOINED", sequence, {"agent_name": "Ada"})


def agent_message(sequence: int, text: str = "Hello!", message_id: str | None = None):
    return event(
        "POLY_AGENT_MESSAGE", sequence, {"message_id": message_id or f"m{sequence}", "text": text}
    )


def user_echo(sequence: int, client_event_id: str, text: str = "hi") -> dict[str, Any]:
    return event(
        "USER_MESSAGE",
        sequence,
        {"text": text, "message_id": f"u{sequence}"},
        metadata={"custom": {"client_event_id": client_event_id}},
    )


def system_error(sequence: int | None, message: str) -> dict[str, Any]:
    return event(
        "SYSTEM_MESSAGE", sequence, {"message": message, "level": "SYSTEM_MESSAGE_LEVEL_ERROR"}
    )


def batch(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": None,
        "sequence": None,
        "type": "EVENT_TYPE_EVENT_BATCH",
        "payload": {"events": list(events)},
    }


def dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame)


# --- the model server -------------------------------------------------------------------------


class ModelServer:
    """One session's server side: a journal, echoes, and replay after a cursor."""

    def __init__(self, *, batch_size: int = 4, **capabilities: Any) -> None:
        self.journal: list[dict[str, Any]] = []
        self.batch_size = batch_size
        self.transient = 0
        self.received: list[dict[str, Any]] = []
        self.append("SESSION_START", {"capabilities": {"streaming": False, **capabilities}})

    def append(
        self, kind: str, payload: dict[str, Any], metadata: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        sequence = len(self.journal) + 1
        frame = event(kind, sequence, payload, id=f"srv-{sequence}", metadata=metadata)
        self.journal.append(frame)
        return frame

    def replay(self, cursor: int) -> list[dict[str, Any]]:
        """The batch frames sent on connect with ``cursor`` (at least one, maybe empty)."""
        after = [f for f in self.journal if f["sequence"] > cursor]
        chunks = [after[i : i + self.batch_size] for i in range(0, len(after), self.batch_size)]
        return [batch(*chunk) for chunk in chunks] or [batch()]

    def receive(self, text: str) -> list[dict[str, Any]]:
        """Handle one client frame; return the live frames the server sends back."""
        frame = json.loads(text)
        self.received.append(frame)
        kind = frame["type"].removeprefix("EVENT_TYPE_")
        payload = frame.get("payload", {})
        metadata = frame.get("metadata")
        if kind == "HEARTBEAT":
            self.transient += 1
            return [event("HEARTBEAT", None, id=f"hb-{self.transient}")]
        if kind == "USER_TYPING":
            return []
        if kind == "USER_MESSAGE":
            sequence = len(self.journal) + 1
            echo = {**payload, "message_id": f"msg-{sequence}"}
            return [self.append("USER_MESSAGE", echo, metadata)]
        if kind == "REQUEST_POLY_AGENT_JOIN":
            return [
                self.append("REQUEST_POLY_AGENT_JOIN", {}),
                self.append("POLY_AGENT_JOINED", {"agent_name": "Ada"}),
            ]
        if kind == "USER_END_SESSION":
            return [
                self.append("USER_END_SESSION", {}),
                self.append("SESSION_END", {"reason": "REASON_USER_END"}),
            ]
        raise AssertionError(f"unexpected client frame {frame}")

    def user_messages(self) -> list[dict[str, Any]]:
        return [f for f in self.journal if f["type"] == "EVENT_TYPE_USER_MESSAGE"]


# --- the link harness -------------------------------------------------------------------------


class Link:
    """A driver wired to a model server through a fake, lossy socket.

    Effects are executed as an adapter would: ``OpenSocket`` connects at once (the replay is
    queued inbound), ``SendFrame`` reaches the server unless ``lose_outbound`` is set (the
    server's answers are queued inbound), ``CloseSocket``/``AbortSocket`` break the link (a
    close completes its handshake at once unless the link is half-open).
    Inbound frames wait in :attr:`inbound` until :meth:`deliver`. A :attr:`half_open` link
    silently loses everything in both directions until the driver aborts it (or it drops).
    """

    def __init__(self, state: SessionState, server: ModelServer, clock: float = 0.0) -> None:
        self.state = state
        self.server = server
        self.clock = clock
        self.wall_offset = WALL_EPOCH
        self.inbound: deque[str] = deque()
        self.socket: int | None = None
        self.lose_outbound = 0
        self.half_open = False
        self.effects: list[Effect] = []
        self.sent: list[dict[str, Any]] = []
        self.cursors: list[int] = []

    @property
    def now(self) -> Now:
        return Now(self.clock, self.wall_offset + self.clock)

    def feed(self, event: Input) -> list[Effect]:
        pending: deque[Input] = deque([event])
        produced: list[Effect] = []
        while pending:
            self.state, effects = step(self.state, pending.popleft(), self.now)
            produced += effects
            for effect in effects:
                follow = self._execute(effect)
                if follow is not None:
                    pending.append(follow)
        self.effects += produced
        return produced

    def _execute(self, effect: Effect) -> Input | None:
        if isinstance(effect, OpenSocket):
            self.cursors.append(effect.cursor)
            self.socket = effect.generation
            self.half_open = False
            self.inbound.clear()
            self.inbound.extend(dumps(f) for f in self.server.replay(effect.cursor))
            return LinkOpened(effect.generation)
        if isinstance(effect, SendFrame):
            if effect.generation != self.socket:
                return None
            self.sent.append(json.loads(effect.text))
            if self.half_open:
                return None
            if self.lose_outbound:
                self.lose_outbound -= 1
                return None
            self.inbound.extend(dumps(f) for f in self.server.receive(effect.text))
        elif isinstance(effect, CloseSocket | AbortSocket) and effect.generation == self.socket:
            self.socket = None
            self.inbound.clear()
            if isinstance(effect, CloseSocket) and not self.half_open:
                # the closing handshake completes (after every frame sent before it)
                return LinkClosed(effect.generation, effect.code, effect.reason)
        return None

    def deliver(self, count: int | None = None, *, duplicate: bool = False) -> None:
        """Deliver up to ``count`` queued inbound frames (all by default), maybe twice each."""
        n = len(self.inbound) if count is None else min(count, len(self.inbound))
        for _ in range(n):
            if self.socket is None or self.half_open or not self.inbound:
                return
            text = self.inbound.popleft()
            self.clock += 0.01
            self.feed(FrameReceived(self.socket, text))
            if duplicate and self.socket is not None:
                self.feed(FrameReceived(self.socket, text))

    def lose_inbound(self, count: int = 1) -> None:
        for _ in range(min(count, len(self.inbound))):
            self.inbound.popleft()

    def drop(self, code: int = 1006) -> None:
        """The link breaks: whatever was in flight towards the client is lost."""
        if self.socket is None:
            return
        generation = self.socket
        self.socket = None
        self.half_open = False
        self.inbound.clear()
        self.feed(LinkClosed(generation, code, "dropped"))

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, waking the driver at each deadline on the way."""
        target = self.clock + seconds
        for _ in range(10_000):
            deadline = self.state.deadline
            if deadline is None or deadline > target:
                break
            self.clock = max(self.clock, deadline)
            self.feed(WakeUp())
        else:
            raise AssertionError("the driver keeps asking to be woken at the same time")
        self.clock = max(self.clock, target)

    def settle(self) -> None:
        """Deliver everything queued and let the replay's quiet period pass."""
        self.deliver()
        self.advance(self.state.config.replay_quiet_seconds + 0.01)
        self.deliver()
