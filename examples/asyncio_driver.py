"""Drive the sans-I/O session from asyncio, against a scripted in-memory server.

The driver (``polyai_messaging.step``) does no I/O, so any event loop can run it: feed inputs,
execute effects, sleep until ``WakeAt``. Run: ``python examples/asyncio_driver.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

from polyai_messaging import (
    Applied,
    EndSession,
    FrameReceived,
    LinkOpened,
    Now,
    OpenSocket,
    SendFrame,
    SendText,
    SessionConfig,
    SessionState,
    Start,
    WakeAt,
    WakeUp,
    step,
)
from polyai_messaging.core import PolyAgentMessage
from polyai_messaging.driver import Input


class FakeServer:
    """Answers like the Messaging API: a replay on connect, echoes, and a one-line agent."""

    def __init__(self) -> None:
        self._sequence = itertools.count(1)
        self._messages = itertools.count(1)

    def _event(self, kind: str, payload: dict[str, Any], **extra: Any) -> str:
        n = next(self._sequence)
        envelope = {"id": f"e{n}", "sequence": n, "type": f"EVENT_TYPE_{kind}", "payload": payload}
        return json.dumps(envelope | extra)

    def connect(self) -> list[str]:
        start = json.loads(self._event("SESSION_START", {"capabilities": {"streaming": False}}))
        return [json.dumps({"type": "EVENT_TYPE_EVENT_BATCH", "payload": {"events": [start]}})]

    def receive(self, text: str) -> list[str]:
        frame = json.loads(text)
        kind = frame["type"].removeprefix("EVENT_TYPE_")
        echo = self._event(kind, frame["payload"], metadata=frame.get("metadata", {}))
        reply = {"message_id": f"msg{next(self._messages)}", "text": ""}
        if kind == "REQUEST_POLY_AGENT_JOIN":
            joined = self._event("POLY_AGENT_JOINED", {"agent_name": "Ada"})
            return [echo, joined, self._event("POLY_AGENT_MESSAGE", reply | {"text": "Hello!"})]
        if kind == "USER_MESSAGE":
            said = f"You said: {frame['payload']['text']}"
            return [echo, self._event("POLY_AGENT_MESSAGE", reply | {"text": said})]
        if kind == "USER_END_SESSION":
            return [echo, self._event("SESSION_END", {"reason": "REASON_USER_END"})]
        return [echo]


async def run(lines: list[str]) -> SessionState:
    """Say each line after each agent message, then leave; return the final state."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Input] = asyncio.Queue()
    server, todo, deadline = FakeServer(), list(lines), None
    state = SessionState.new("demo", seed=1, config=SessionConfig(replay_quiet_seconds=0.01))
    inbox.put_nowait(Start())
    while state.finished is None:
        timeout = None if deadline is None else max(0.0, deadline - loop.time())
        try:
            event = await asyncio.wait_for(inbox.get(), timeout)
        except TimeoutError:
            event = WakeUp()
        state, effects = step(state, event, Now(loop.time(), time.time()))
        for effect in effects:
            if isinstance(effect, OpenSocket):
                inbox.put_nowait(LinkOpened(effect.generation))
                for frame in server.connect():
                    inbox.put_nowait(FrameReceived(effect.generation, frame))
            elif isinstance(effect, SendFrame):
                for frame in server.receive(effect.text):
                    inbox.put_nowait(FrameReceived(effect.generation, frame))
            elif isinstance(effect, WakeAt):
                deadline = effect.deadline
            elif isinstance(effect, Applied) and isinstance(effect.event, PolyAgentMessage):
                inbox.put_nowait(SendText(todo.pop(0)) if todo else EndSession())
    return state


if __name__ == "__main__":
    final = asyncio.run(run(["Hi there", "Thanks"]))
    for message in final.conversation.transcript:
        print(f"{message.role.value}: {message.text}")
    print("finished:", final.finished)
