"""Private: :class:`Turn`, the scratchpad one :func:`.step` call threads through its handlers.

It lives apart from :mod:`._step` so that the handler modules can share it without importing
the dispatcher that imports them.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..core import ClientCommand, encode
from ._effects import Effect, LinkStatus, SendFrame, StatusChanged
from ._inputs import Now
from ._state import SessionState

__all__ = ["Turn"]


class Turn:
    """One step's work in progress: the evolving state and the effects so far."""

    def __init__(self, state: SessionState, now: Now) -> None:
        self.state = state
        self.now = now
        self.effects: list[Effect] = []

    @property
    def t(self) -> float:
        return self.now.monotonic

    def update(self, **changes: Any) -> None:
        self.state = attrs.evolve(self.state, **changes)

    def count(self, **increments: int) -> None:
        counters = self.state.counters
        self.update(
            counters=attrs.evolve(
                counters, **{k: getattr(counters, k) + v for k, v in increments.items()}
            )
        )

    def emit(self, effect: Effect) -> None:
        self.effects.append(effect)

    def status(self, status: LinkStatus, reason: str, retry_in: float | None = None) -> None:
        s = self.state
        self.emit(StatusChanged(status, reason, s.attempt, retry_in, s.generation))

    def send(self, command: ClientCommand) -> None:
        s = self.state
        self.emit(SendFrame(s.generation, encode(command)))
        # Every frame sent restarts the server's idle clock, so ours restarts with it.
        self.update(last_sent_wall=self.now.wall, last_sent_monotonic=self.t)
