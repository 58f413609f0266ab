"""The ``/ws`` endpoint: handshake checks, replay, client frames, fan-out and faults.

Each socket runs two tasks. The *receiver* validates client frames, journals echoes and queues
agent work. The *sender* is the only task that writes to the socket: first the replay batches,
then whatever the session's fan-out queues in the socket's outbox. Fault injection (delay,
duplicate, drop, freeze) therefore lives in one place, the sender's :class:`_Emitter`; the
faults that shape a socket's opening (overlap, reorder, no-replay, close) are decided when the
socket joins the fan-out.

Every event of a session, echoes and heartbeat echoes included, goes to every open socket of
that session (:ref:`protocol-emulator`); only invalid-frame errors go to the offending socket
alone.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from urllib.parse import parse_qs

import anyio

from ._asgi import Receive, Scope, Send, send_json
from ._faults import REFUSAL_BODIES
from ._journal import make_entry
from ._sessions import AgentJob, CloseSocket, DropSocket, Session, SocketConnection
from ._state import EmulatorState
from ._wire import (
    MESSAGE_TOO_LARGE,
    MESSAGE_UNKNOWN_OR_INVALID,
    SYSTEM_LEVEL_ERROR,
    ClientFrame,
    EventType,
    FrameError,
    batch_frames,
    parse_client_frame,
    parse_cursor,
    utf8_len,
)

__all__ = ["serve_websocket"]

logger = logging.getLogger("polyai_messaging.emulator")  # the public name

DROP_FALLBACK_CLOSE_CODE = 4002
"""Close code used for ``drop`` when the TCP connection cannot be aborted directly."""


async def serve_websocket(state: EmulatorState, scope: Scope, receive: Receive, send: Send) -> None:
    """Handle one WebSocket connection from handshake to close."""
    if (await receive())["type"] != "websocket.connect":
        return
    query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
    admitted = _admit(state, query)
    if not isinstance(admitted, Session):
        status, message = admitted
        await reject_handshake(scope, send, status, message)
        return
    session = admitted
    # From here to the accept there is no await: the replay snapshot and joining the fan-out
    # happen atomically, so no event is missed or delivered twice.
    connection = SocketConnection(session, _peer(scope))
    session.sockets.add(connection)
    session.touch(anyio.current_time())
    initial = _opening_frames(state, session, _cursor(query))
    close_code = state.fault_state.take_close()
    if close_code is not None:
        # Queued before any live event, so the close follows the opening frames directly.
        connection.close(close_code, "closed by fault")
    elif session.ended:
        connection.close(1000, "session ended", state.config.close_grace_seconds)
    try:
        await send({"type": "websocket.accept"})
        async with anyio.create_task_group() as tasks:
            emitter = _Emitter(state, connection, send, tasks.cancel_scope)
            tasks.start_soon(emitter.run, initial)
            await _receive_frames(state, connection, receive)
            tasks.cancel_scope.cancel()
    finally:
        connection.detach()


def _admit(state: EmulatorState, query: dict[str, list[str]]) -> Session | tuple[int, str]:
    """The session a handshake with this query joins, or the status and body refusing it."""
    session_id = _first(query, "session_id")
    access_token = _first(query, "access_token")
    if not session_id or not access_token:
        return 400, "invalid connection parameters"
    refusal = state.fault_state.take_refusal()
    if refusal is not None:
        return refusal, REFUSAL_BODIES[refusal]
    session = state.find_open_session(session_id)
    if session is None:
        return 404, "session not found"
    token = state.resolve_access_token(access_token)
    if token is None or not session.accepts_token(access_token, token.connector_token):
        return 401, "authentication failed"
    if len(session.sockets) >= state.config.max_connections_per_session:
        return 429, "connection limit exceeded for session"
    return session


async def reject_handshake(scope: Scope, send: Send, status: int, message: str) -> None:
    """Answer the upgrade request with a plain HTTP error response (:ref:`protocol-websocket`)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        await send_json(send, status, {"error": message, "message": message}, websocket=True)
    else:  # pragma: no cover - hypercorn supports the extension
        await send({"type": "websocket.close", "code": 1008})


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _peer(scope: Scope) -> tuple[str, int] | None:
    client = scope.get("client")
    if client is None:
        return None
    return str(client[0]), int(client[1])


def _cursor(query: dict[str, list[str]]) -> int:
    raw = _first(query, "cursor")
    cursor = parse_cursor(raw)
    if raw is not None and cursor == 0 and raw.strip().lower() not in ("0", "seq:0"):
        logger.warning("invalid cursor %r: replaying the full history", raw[:40])
    return cursor


def _opening_frames(state: EmulatorState, session: Session, cursor: int) -> list[str]:
    """What a new socket is sent before live events: the replay and the ``overlap`` fault's
    frames, or nothing at all under the ``no-replay`` fault."""
    if state.fault_state.take_no_replay():
        return []
    overlap = [entry.text for entry in session.journal.last(state.faults.overlap)]
    return _replay_frames(state, session, cursor) + overlap


def _replay_frames(state: EmulatorState, session: Session, cursor: int) -> list[str]:
    entries = list(session.journal.after(cursor))
    first = session.journal.at(1)
    if state.config.always_prepend_session_start and cursor >= 1 and first is not None:
        # Only the first entry is looked up: the replay costs what it sends, not the history.
        entries.insert(0, first)  # docs: protocol-emulator
    texts = [entry.text for entry in entries]
    return batch_frames(texts, state.config.max_frame_bytes, reverse_each=state.faults.reorder)


async def _receive_frames(
    state: EmulatorState, connection: SocketConnection, receive: Receive
) -> None:
    """Read client frames until the client disconnects."""
    session = connection.session
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message["type"] != "websocket.receive" or connection.frozen or session.ended:
            continue  # a frozen socket reads and discards; nothing follows SESSION_END
        now = anyio.current_time()
        session.touch(now)
        if state.ws_limiter is not None and state.ws_limiter.acquire(session.id, now) > 0:
            continue  # excess frames may be dropped silently (docs: protocol-limits)
        text = message.get("text")
        if text is None:  # binary frames are not part of the protocol
            _reject_frame(connection, FrameError(MESSAGE_UNKNOWN_OR_INVALID))
        elif utf8_len(text) > state.config.max_frame_bytes:
            _reject_frame(connection, FrameError(MESSAGE_TOO_LARGE))
        else:
            frame = parse_client_frame(text)
            if isinstance(frame, FrameError):
                _reject_frame(connection, frame)
            else:
                _handle_frame(session, frame)


def _reject_frame(connection: SocketConnection, error: FrameError) -> None:
    # Invalid-input errors go to the offending socket only and are not journaled
    # (docs: protocol-emulator).
    payload = {"level": SYSTEM_LEVEL_ERROR, "message": error.message}
    entry = make_entry(EventType.SYSTEM_MESSAGE, payload, sequence=None, metadata=error.metadata)
    connection.deliver(entry.text)


def _handle_frame(session: Session, frame: ClientFrame) -> None:
    """Echo a valid client event (:ref:`protocol-delivery`) and hand it to the agent where
    needed."""
    if frame.type is EventType.USER_TYPING:
        return  # not echoed, not journaled: there is nobody to show it to (docs: protocol-emulator)
    if frame.type is EventType.HEARTBEAT:
        session.publish(frame.type, frame.payload, metadata=frame.metadata, transient=True)
    elif frame.type is EventType.USER_END_SESSION:
        session.publish(frame.type, frame.payload, metadata=frame.metadata)
        session.end("REASON_USER_END")
    elif frame.type is EventType.USER_MESSAGE:
        payload = {**frame.payload, "message_id": f"msg_{uuid.uuid4().hex}"}
        session.publish(frame.type, payload, metadata=frame.metadata)
        _queue_job(session, AgentJob(frame.type, payload["text"], frame.metadata))
    else:  # REQUEST_POLY_AGENT_JOIN
        session.publish(frame.type, frame.payload, metadata=frame.metadata)
        _queue_job(session, AgentJob(frame.type, metadata=frame.metadata))


def _queue_job(session: Session, job: AgentJob) -> None:
    # The inbox is closed once the session has ended; the job is moot then.
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
        session.agent_inbox.send_nowait(job)


class _Emitter:
    """The socket's single writer, applying the active faults to every frame."""

    def __init__(
        self,
        state: EmulatorState,
        connection: SocketConnection,
        send: Send,
        cancel_scope: anyio.CancelScope,
    ) -> None:
        self._state = state
        self._connection = connection
        self._send = send
        self._cancel_scope = cancel_scope

    async def run(self, initial: list[str]) -> None:
        """Send the replay (and overlap) frames, then serve the outbox until the socket stops."""
        for text in initial:
            if not await self._emit(text):
                return
        while True:
            item = await self._connection.outbox.receive()
            if isinstance(item, CloseSocket):
                await anyio.sleep(item.grace)
                await self._send(
                    {"type": "websocket.close", "code": item.code, "reason": item.reason}
                )
                self._cancel_scope.cancel()
                return
            if isinstance(item, DropSocket):
                await self._drop()
                return
            if not await self._emit(item.text):
                return

    async def _emit(self, text: str) -> bool:
        """Send one frame; ``False`` once the socket was dropped or frozen."""
        if not await self._survives():
            return False
        faults = self._state.faults
        if faults.delay:
            await anyio.sleep(faults.delay)
        for _ in range(2 if faults.duplicate else 1):
            await self._send({"type": "websocket.send", "text": text})
            self._connection.frames_sent += 1
            if not await self._survives():
                return False
        return True

    async def _survives(self) -> bool:
        """Apply ``drop-after`` and ``freeze-after``; ``False`` if the socket must stop."""
        connection, fault_state = self._connection, self._state.fault_state
        if connection.fault_generation != fault_state.generation:
            # Faults were (re)assigned: frame counts start again from here.
            connection.fault_generation = fault_state.generation
            connection.frames_sent = 0
        if fault_state.take_drop(connection.frames_sent):
            await self._drop()
            return False
        if fault_state.take_freeze(connection.frames_sent):
            connection.frozen = True
            logger.info("socket of session %s frozen by fault", connection.session.id)
            return False
        return True

    async def _drop(self) -> None:
        self._connection.closing = True
        if not self._state.abort_transport(self._connection):
            await self._send(
                {"type": "websocket.close", "code": DROP_FALLBACK_CLOSE_CODE, "reason": "dropped"}
            )
        self._cancel_scope.cancel()
