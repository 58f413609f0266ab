"""Scripted conversations: run a recorded conversation through the driver with a fake link.

A script is JSON Lines:

- an optional first line ``{"scenario": name, "description": text, "streaming": bool}``;
- server frames (lines with ``type``), delivered on the current link;
- ``{"client_sends": {type, payload[, metadata]}}``: the client must send that frame here.
  ``USER_MESSAGE``, ``USER_TYPING`` and ``USER_END_SESSION`` are app intents the harness performs
  (a message with the line's whole ``metadata.custom``, whose ``client_event_id`` it keeps).
  ``REQUEST_POLY_AGENT_JOIN`` and ``HEARTBEAT`` must come from the driver by itself; for them
  the harness advances the fake clock to the driver's next deadlines. A ``USER_MESSAGE`` whose
  ``client_event_id`` is already in the outbox is an expected *resend*, also the driver's own
  doing. Any other type is a raw send and is skipped.
- ``{"drop": true}``: the link breaks; the harness advances the clock through the backoff and
  reconnects, recording the cursor the driver asked for;
- anything else is ignored.

The result lists ``mismatches``: expected frames the driver did not send (or sent differently)
and frames it sent that the script did not expect (heartbeats and typing aside).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from ..core import TYPING_STARTED, LocalProtocolError
from ..driver import (
    Effect,
    EndSession,
    FrameReceived,
    Input,
    LinkClosed,
    LinkOpened,
    Now,
    OpenSocket,
    SendFrame,
    SendText,
    SessionConfig,
    SessionState,
    SetTyping,
    Start,
    WakeUp,
    step,
)

__all__ = ["ScriptResult", "is_script", "run_script"]

_SCRIPT_KEYS = ("client_sends", "drop", "scenario")
_DRIVER_TYPES = ("EVENT_TYPE_REQUEST_POLY_AGENT_JOIN", "EVENT_TYPE_HEARTBEAT")
_QUIET_TYPES = ("EVENT_TYPE_HEARTBEAT", "EVENT_TYPE_USER_TYPING")
_MAX_WAKES = 8
_WALL_EPOCH = 1_700_000_000.0


def is_script(lines: Iterable[Mapping[str, Any]]) -> bool:
    """Whether parsed lines form a scripted conversation rather than a plain frame log."""
    return any(key in line for line in lines for key in _SCRIPT_KEYS)


@attrs.frozen
class ScriptResult:
    """What the driver did while the script ran."""

    state: SessionState
    sent: tuple[dict[str, Any], ...]
    reconnect_cursors: tuple[int | None, ...]
    mismatches: tuple[str, ...]

    def report(self) -> dict[str, Any]:
        """The keys ``replay --json`` adds for a script."""
        return {
            "sent": list(self.sent),
            "reconnect_cursors": list(self.reconnect_cursors),
            "delivery": [
                {
                    "client_event_id": e.client_event_id,
                    "status": e.status.value,
                    "message_id": e.message_id,
                }
                for e in self.state.outbox
            ],
            "heartbeat_interval_seconds": self.state.heartbeat_interval,
            "mismatches": list(self.mismatches),
        }


class _Harness:
    def __init__(self, seed: int, config: SessionConfig | None) -> None:
        self.state = SessionState.new("scripted-session", seed=seed, config=config)
        self.clock = 0.0
        self.sent: list[dict[str, Any]] = []
        self.unmatched: list[dict[str, Any]] = []
        self.cursors: list[int | None] = []
        self.mismatches: list[str] = []
        self.last_open: OpenSocket | None = None

    def feed(self, event: Input) -> list[Effect]:
        self.state, effects = step(self.state, event, Now(self.clock, _WALL_EPOCH + self.clock))
        for effect in effects:
            if isinstance(effect, SendFrame):
                frame = json.loads(effect.text)
                self.sent.append(frame)
                if frame["type"] not in _QUIET_TYPES:
                    self.unmatched.append(frame)
            elif isinstance(effect, OpenSocket):
                self.last_open = effect
        return effects

    def advance_until(self, done: Callable[[], bool]) -> bool:
        """Wake the driver at its successive deadlines until ``done()`` (bounded)."""
        for _ in range(_MAX_WAKES):
            if done():
                return True
            deadline = self.state.deadline
            if deadline is None:
                return False
            self.clock = max(self.clock, deadline)
            self.feed(WakeUp())
        return done()

    def _unmatched(self, kind: str) -> Callable[[], bool]:
        return lambda: any(frame["type"] == kind for frame in self.unmatched)

    def _count(self, kind: str) -> int:
        return sum(1 for frame in self.sent if frame["type"] == kind)

    def _opened(self) -> OpenSocket | None:
        return self.last_open

    def connect(self) -> None:
        opened = self.last_open
        if opened is not None:
            self.feed(LinkOpened(opened.generation))

    def frame(self, line: Mapping[str, Any]) -> None:
        self.clock += 0.01
        self.feed(FrameReceived(self.state.generation, json.dumps(line)))

    def drop(self) -> None:
        self.last_open = None
        self.feed(LinkClosed(self.state.generation, 1006, "scripted drop"))
        self.advance_until(lambda: self.last_open is not None or self.state.finished is not None)
        reopened = self._opened()
        if reopened is not None:
            self.cursors.append(reopened.cursor or None)
            self.connect()

    def expect(self, frame: Mapping[str, Any]) -> None:
        kind = frame.get("type")
        if not isinstance(kind, str):
            self.mismatches.append(f"client_sends without a type: {json.dumps(frame)}")
            return
        custom = (frame.get("metadata") or {}).get("custom") or {}
        payload = frame.get("payload") or {}
        if kind == "EVENT_TYPE_HEARTBEAT":
            before = self._count(kind)
            if not self.advance_until(lambda: self._count(kind) > before):
                self.mismatches.append(f"expected {kind}, the driver did not send it")
            return
        if kind in _DRIVER_TYPES:
            self.advance_until(self._unmatched(kind))
            self._match(frame)
            return
        if kind == "EVENT_TYPE_USER_MESSAGE":
            client_event_id = custom.get("client_event_id")
            if client_event_id and self.state.delivery(client_event_id) is not None:
                self.advance_until(self._unmatched(kind))  # a resend: the driver's own doing
                self._match(frame)
                return
            if not isinstance(custom, dict):
                self.mismatches.append(f"{kind}: metadata.custom must be an object")
                return
            self._intent(SendText(str(payload.get("text", "")), custom=custom), frame)
        elif kind == "EVENT_TYPE_USER_TYPING":
            self._intent(SetTyping(payload.get("state") == TYPING_STARTED), None)
        elif kind == "EVENT_TYPE_USER_END_SESSION":
            self._intent(EndSession(), frame)

    def _intent(self, intent: Input, frame: Mapping[str, Any] | None) -> None:
        try:
            self.feed(intent)
        except LocalProtocolError as exc:
            self.mismatches.append(f"the driver refused {type(intent).__name__}: {exc}")
            return
        if frame is not None:
            self.advance_until(self._unmatched(str(frame["type"])))
            self._match(frame)

    def _match(self, expected: Mapping[str, Any]) -> None:
        kind = expected["type"]
        for index, sent in enumerate(self.unmatched):
            if sent["type"] != kind:
                continue
            del self.unmatched[index]
            if (sent.get("payload") or {}) != (expected.get("payload") or {}):
                self.mismatches.append(
                    f"{kind}: expected payload {json.dumps(expected.get('payload'))}, "
                    f"sent {json.dumps(sent.get('payload'))}"
                )
            want = (expected.get("metadata") or {}).get("custom")
            got = (sent.get("metadata") or {}).get("custom") or {}
            if want and any(got.get(k) != v for k, v in want.items()):
                self.mismatches.append(f"{kind}: expected metadata {json.dumps(want)}")
            return
        self.mismatches.append(f"expected {kind}, the driver did not send it")


def run_script(
    lines: Iterable[Mapping[str, Any]], *, seed: int = 0, config: SessionConfig | None = None
) -> ScriptResult:
    """Run a parsed script through a fresh driver and report what it sent."""
    harness = _Harness(seed, config)
    harness.feed(Start())
    harness.connect()
    for line in lines:
        if "type" in line:
            harness.frame(line)
        elif "client_sends" in line:
            harness.expect(line["client_sends"])
        elif line.get("drop") is True:
            harness.drop()
    for frame in harness.unmatched:
        harness.mismatches.append(f"unexpected {frame['type']}: {json.dumps(frame)}")
    return ScriptResult(
        state=harness.state,
        sent=tuple(harness.sent),
        reconnect_cursors=tuple(harness.cursors),
        mismatches=tuple(harness.mismatches),
    )
