"""The phase table: destinations, expected sources, the read-only machine, every pair."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from transitions import Machine

from polyai_messaging.core import KNOWN_TYPES
from polyai_messaging.core import _phases as phases
from polyai_messaging.core._phases import (
    PHASE_TRIGGERS,
    TRANSITIONS,
    Phase,
    UnexpectedPhaseEvent,
    build_machine,
    destination,
    is_expected,
    next_phase,
)

E = "EVENT_TYPE_"
C, A, H, Q, X = Phase.CONNECTING, Phase.ACTIVE, Phase.HANDOFF, Phase.QUEUED, Phase.ENDED
OPEN = (C, A, H, Q)

# The table of the issue, restated independently of phases.py: trigger -> (destination,
# phases where the protocol expects it).
TABLE: dict[str, tuple[Phase, set[Phase]]] = {
    E + "POLY_AGENT_JOINED": (A, {C, A, H}),
    E + "LIVE_AGENT_JOINED": (A, {H, Q}),
    E + "HANDOFF_FAILED": (A, {H, Q}),
    E + "HANDOFF_TIMEOUT": (A, {H, Q}),
    E + "POLY_AGENT_TRIGGERED_HANDOFF": (H, {A}),
    E + "CLIENT_HANDOFF_REQUIRED": (H, {A, H}),
    E + "HANDOFF_ACCEPTED": (Q, {H}),
    E + "HANDOFF_QUEUE_STATUS": (Q, {H, Q}),
    E + "SESSION_END": (X, {C, A, H, Q}),
}

OTHER_TRIGGERS = [
    *sorted(set(KNOWN_TYPES) - set(TABLE)),
    "EVENT_TYPE_SESSION_IDLE_WARNING",
    "EVENT_TYPE_UNHEARD_OF",
    "",
]


def test_the_phase_values() -> None:
    assert [p.value for p in Phase] == ["connecting", "active", "handoff", "queued", "ended"]


def test_the_triggers_are_exactly_the_table() -> None:
    assert set(TABLE) == PHASE_TRIGGERS
    assert {t["trigger"] for t in TRANSITIONS} == set(TABLE)


@pytest.mark.parametrize("trigger", sorted(TABLE))
@pytest.mark.parametrize("phase", list(Phase), ids=lambda p: p.value)
def test_phase_triggers(trigger: str, phase: Phase) -> None:
    dest, sources = TABLE[trigger]
    assert destination(trigger) is dest
    assert is_expected(phase, trigger) == (phase in sources)
    if phase is X:
        assert next_phase(phase, trigger) is X  # absorbing
    else:
        # The server is the source of truth: unexpected or not, the event moves the phase.
        assert next_phase(phase, trigger) is dest


@pytest.mark.parametrize("trigger", OTHER_TRIGGERS)
@pytest.mark.parametrize("phase", list(Phase), ids=lambda p: p.value)
def test_other_events_leave_the_phase_unchanged(trigger: str, phase: Phase) -> None:
    assert destination(trigger) is None
    assert next_phase(phase, trigger) is phase
    assert not is_expected(phase, trigger)


def test_the_machine_is_model_less_without_auto_transitions() -> None:
    machine = build_machine()
    assert isinstance(machine, Machine)
    assert machine.models == []
    assert machine.auto_transitions is False
    # auto transitions would add ``to_<state>`` triggers
    assert not any(name.startswith("to_") for name in machine.events)
    assert set(machine.events) == set(TABLE)
    assert set(machine.states) == {p.name for p in Phase}
    assert machine.initial == Phase.CONNECTING.name


def test_build_machine_passes_model_none_and_no_auto_transitions() -> None:
    seen: dict[str, object] = {}

    class Spy(Machine):  # type: ignore[misc]
        def __init__(self, **kwargs: object) -> None:
            seen.update(kwargs)
            super().__init__(**kwargs)

    build_machine(Spy)
    assert seen["model"] is None
    assert seen["auto_transitions"] is False
    assert seen["states"] is Phase
    assert seen["initial"] is Phase.CONNECTING


def test_ended_has_no_outgoing_transitions() -> None:
    machine = build_machine()
    for event in machine.events.values():
        assert X.name not in event.transitions
    for row in TRANSITIONS:
        assert X not in row["source"]  # type: ignore[operator]
        assert row["source"] != "*"


def test_machine_transitions_match_the_table() -> None:
    machine = build_machine()
    pairs = {
        (trigger, source, str(transition.dest))
        for trigger, event in machine.events.items()
        for source, transitions in event.transitions.items()
        for transition in transitions
    }
    expected = {
        (trigger, source.name, dest.name)
        for trigger, (dest, sources) in TABLE.items()
        for source in sources
    }
    assert pairs == expected


def test_the_module_docstring_table_is_in_sync() -> None:
    doc = phases.__doc__ or ""
    for trigger, (dest, _) in TABLE.items():
        name = trigger.removeprefix(E)
        line = next(line for line in doc.splitlines() if name in line)
        assert line.rstrip().endswith(dest.value), line


@given(st.sampled_from(list(Phase)), st.sampled_from(sorted(TABLE) + OTHER_TRIGGERS))
def test_every_phase_trigger_pair(phase: Phase, trigger: str) -> None:
    after = next_phase(phase, trigger)
    if phase is X:
        assert after is X
    elif trigger in TABLE:
        assert after is TABLE[trigger][0]
    else:
        assert after is phase
    assert is_expected(phase, trigger) == (trigger in TABLE and phase in TABLE[trigger][1])


@given(st.lists(st.sampled_from(sorted(TABLE) + OTHER_TRIGGERS), max_size=30))
def test_a_run_ends_where_its_last_phase_event_points_unless_it_ended(
    triggers: list[str],
) -> None:
    phase = C
    for trigger in triggers:
        phase = next_phase(phase, trigger)
    moving = [t for t in triggers if t in TABLE]
    if E + "SESSION_END" in moving:
        assert phase is X
    elif moving:
        assert phase is TABLE[moving[-1]][0]
    else:
        assert phase is C


def test_unexpected_phase_event_describes_itself() -> None:
    anomaly = UnexpectedPhaseEvent(7, E + "HANDOFF_ACCEPTED", A)
    assert anomaly.describe() == "EVENT_TYPE_HANDOFF_ACCEPTED at sequence 7 while active"
