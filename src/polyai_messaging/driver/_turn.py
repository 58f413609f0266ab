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
from ._state import DEADLINE_CACHE, UNKNOWN, SessionState

__all__ = ["Turn"]

_FIELDS = frozenset(field.name for field in attrs.fields(SessionState))
_new = object.__new__
_set = object.__setattr__


class Turn:
    """One step's work in progress: the evolving state and the effects so far."""

    __slots__ = ("_made", "deadline", "effects", "last_inbound", "now", "state", "t")

    def __init__(self, state: SessionState, now: Now) -> None:
        self.state = state
        self.now = now
        self.t = now.monotonic
        """The monotonic reading, which the timers use."""
        self.effects: list[Effect] = []
        self.last_inbound: float | None = None
        """Set by a frame: written into the state when the step ends (nothing a step does
        after a frame reads it)."""
        self.deadline: object = UNKNOWN
        """The final state's deadline, when a handler knows it without working it out (it
        must then know every change the step made): kept in the state's cache."""
        self._made: SessionState | None = None
        """The latest state :meth:`update` made: no one outside this step holds it."""

    def update(self, **changes: Any) -> None:
        # attrs.evolve re-runs __init__ over some 50 fields; a step updates the state several
        # times, so the new state is the old one's field values with the changes written in.
        if not changes.keys() <= _FIELDS:
            raise TypeError(f"not fields of SessionState: {sorted(changes.keys() - _FIELDS)}")
        fields = self.state.__dict__.copy()
        # The new state's own deadline is worked out when asked. Set, not removed: a removed
        # key leaves a hole in the copy, and each of its copies, until the table grows.
        fields[DEADLINE_CACHE] = UNKNOWN
        fields.update(changes)
        state = _new(SessionState)
        _set(state, "__dict__", fields)
        self.state = self._made = state

    def end(self) -> SessionState:
        """The state the step returns: the clock reading (and a frame's arrival) written in.

        Into the state this step made, if it made one: nothing else holds it, and no handler
        runs after this, so the step's last change copies no state.
        """
        state = self.state
        if state is self._made:
            fields = state.__dict__
            fields[DEADLINE_CACHE] = UNKNOWN
            fields["last_now"] = self.now
            if self.last_inbound is not None:
                fields["last_inbound"] = self.last_inbound
        elif self.last_inbound is not None:
            self.update(last_now=self.now, last_inbound=self.last_inbound)
        else:
            self.update(last_now=self.now)
        if self.deadline is not UNKNOWN:
            self.state.__dict__[DEADLINE_CACHE] = self.deadline
        return self.state

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
        self.send_encoded(encode(command))

    def send_encoded(self, frame: str, **changes: Any) -> None:
        """Send an encoded command, and make ``changes`` to the state in the same update."""
        self.effects.append(SendFrame(self.state.generation, frame))
        # Every frame sent restarts the server's idle clock, so ours restarts with it.
        self.update(last_sent_wall=self.now.wall, last_sent_monotonic=self.t, **changes)
