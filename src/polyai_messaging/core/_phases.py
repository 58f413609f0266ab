"""The conversation phase machine: one table, every rule stated here.

The table is declared once with ``transitions.Machine(model=None, ...)`` and only read, through
:func:`next_phase`. Sources say which phases the protocol expects an event in; destinations are
fixed. The server is the source of truth: an event arriving in an unexpected phase still moves
the phase to its destination (except out of ``ended``, which is absorbing), and the caller records
an :class:`UnexpectedPhaseEvent` anomaly.

===================================== ===================== ==========
event                                 expected in           phase after
===================================== ===================== ==========
POLY_AGENT_JOINED                     connecting, active,   active
                                      handoff
LIVE_AGENT_JOINED                     handoff, queued       active
HANDOFF_FAILED, HANDOFF_TIMEOUT       handoff, queued       active
POLY_AGENT_TRIGGERED_HANDOFF          active                handoff
CLIENT_HANDOFF_REQUIRED               active, handoff       handoff
HANDOFF_ACCEPTED                      handoff               queued
HANDOFF_QUEUE_STATUS                  handoff, queued       queued
SESSION_END                           every phase but ended ended
===================================== ===================== ==========
"""

from __future__ import annotations

import enum

import attrs
from transitions import Machine

__all__ = [
    "PHASE_TRIGGERS",
    "TRANSITIONS",
    "Phase",
    "UnexpectedPhaseEvent",
    "build_machine",
    "destination",
    "is_expected",
    "next_phase",
]


class Phase(enum.Enum):
    """Where the conversation stands. ``ENDED`` is absorbing."""

    CONNECTING = "connecting"
    ACTIVE = "active"
    HANDOFF = "handoff"
    QUEUED = "queued"
    ENDED = "ended"


_C, _A, _H, _Q, _E = (Phase.CONNECTING, Phase.ACTIVE, Phase.HANDOFF, Phase.QUEUED, Phase.ENDED)
_OPEN = [_C, _A, _H, _Q]

TRANSITIONS: tuple[dict[str, object], ...] = (
    {"trigger": "EVENT_TYPE_POLY_AGENT_JOINED", "source": [_C, _A, _H], "dest": _A},
    {"trigger": "EVENT_TYPE_LIVE_AGENT_JOINED", "source": [_H, _Q], "dest": _A},
    {"trigger": "EVENT_TYPE_HANDOFF_FAILED", "source": [_H, _Q], "dest": _A},
    {"trigger": "EVENT_TYPE_HANDOFF_TIMEOUT", "source": [_H, _Q], "dest": _A},
    {"trigger": "EVENT_TYPE_POLY_AGENT_TRIGGERED_HANDOFF", "source": [_A], "dest": _H},
    {"trigger": "EVENT_TYPE_CLIENT_HANDOFF_REQUIRED", "source": [_A, _H], "dest": _H},
    {"trigger": "EVENT_TYPE_HANDOFF_ACCEPTED", "source": [_H], "dest": _Q},
    {"trigger": "EVENT_TYPE_HANDOFF_QUEUE_STATUS", "source": [_H, _Q], "dest": _Q},
    {"trigger": "EVENT_TYPE_SESSION_END", "source": _OPEN, "dest": _E},
)
"""The table itself, in ``transitions`` form. Sources are explicit: ``ended`` accepts nothing."""


def build_machine(machine_class: type[Machine] = Machine) -> Machine:
    """Build the (model-less, read-only) machine; the diagram script passes ``GraphMachine``."""
    return machine_class(
        model=None,
        states=Phase,
        transitions=[dict(t) for t in TRANSITIONS],
        initial=Phase.CONNECTING,
        auto_transitions=False,
    )


def _index(machine: Machine) -> tuple[dict[tuple[str, Phase], Phase], dict[str, Phase]]:
    expected: dict[tuple[str, Phase], Phase] = {}
    fixed: dict[str, Phase] = {}
    for trigger, event in machine.events.items():
        for source_name, transitions in event.transitions.items():
            for transition in transitions:
                dest = Phase[str(transition.dest)]
                expected[(trigger, Phase[source_name])] = dest
                fixed[trigger] = dest
    return expected, fixed


_EXPECTED, _DESTINATION = _index(build_machine())

PHASE_TRIGGERS: frozenset[str] = frozenset(_DESTINATION)
"""Event types that move the phase; every other type leaves it unchanged."""


def destination(trigger: str) -> Phase | None:
    """The fixed phase after ``trigger``, or ``None`` if it does not change the phase."""
    return _DESTINATION.get(trigger)


def is_expected(phase: Phase, trigger: str) -> bool:
    """Whether the table lists ``phase`` as a source of ``trigger``."""
    return (trigger, phase) in _EXPECTED


def next_phase(phase: Phase, trigger: str) -> Phase:
    """The phase after ``trigger`` in ``phase``: its fixed destination, but never out of ENDED."""
    if phase is Phase.ENDED:
        return phase
    return _DESTINATION.get(trigger, phase)


@attrs.frozen
class UnexpectedPhaseEvent:
    """Anomaly: the server sent ``trigger`` (at ``sequence``) while the phase was ``phase``.

    The event was applied anyway; the anomaly is there for logs and diagnostics.
    """

    sequence: int | None
    trigger: str
    phase: Phase

    def describe(self) -> str:
        return f"{self.trigger} at sequence {self.sequence} while {self.phase.value}"
