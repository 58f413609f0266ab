"""The rules of the facts and the phase: "latest by rank" values, indicators, phase moves.

Each rule writes the fields of the conversation being built (see :mod:`._reducer`); a fact is a
``(rank, value)`` pair that a higher-ranked event replaces (see :mod:`._conversation`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._conversation import Fields
from ._events import LiveAgentTyping, PolyAgentJoined, PolyAgentJoinRequested, PolyAgentThinking
from ._messages import Agent
from ._phases import Phase, destination

__all__: list[str] = []


def _phase(fields: Fields, trigger: str, rank: float) -> None:
    fields["phase_events"] = fields["phase_events"].set(rank, trigger)
    _move(fields, trigger, rank)


def _move(fields: Fields, trigger: str, rank: float) -> None:
    """Move the phase as ``trigger`` at ``rank`` does (without recording it as a phase event)."""
    dest = destination(trigger)
    if fields["phase"] is Phase.ENDED or dest is None:
        return
    if dest is Phase.ENDED or rank > fields["phase_rank"]:
        fields["phase"] = dest
        fields["phase_rank"] = rank


def _latest(current: tuple[float, Any] | None, rank: float, value: Any) -> tuple[float, Any]:
    if current is not None and current[0] > rank:
        return current
    return (rank, value)


_Handler = Callable[[Fields, Any, float], None]


def _on_agent_joined(fields: Fields, event: PolyAgentJoined, rank: float) -> None:
    agent = Agent(name=event.payload.agent_name, avatar_url=event.payload.avatar)
    _set_fact(fields, "agent", rank, agent)


def _on_thinking(fields: Fields, event: PolyAgentThinking, rank: float) -> None:
    if rank > fields["thinking_rank"]:  # noqa: PLR1730 (max() is a call; once per event)
        fields["thinking_rank"] = rank


def _on_join_requested(fields: Fields, event: PolyAgentJoinRequested, rank: float) -> None:
    _set_fact(fields, "join_requested", rank, None)


def _on_live_typing(fields: Fields, event: LiveAgentTyping, rank: float) -> None:
    fields["live_typing"] = _latest(fields["live_typing"], rank, event.payload.state)


def _set_fact(fields: Fields, name: str, rank: float, value: Any) -> None:
    facts = fields["facts"]
    fields["facts"] = facts.set(name, _latest(facts.get(name), rank, value))


def _setter(name: str, value: Callable[[Any], Any]) -> _Handler:
    def handler(fields: Fields, event: Any, rank: float) -> None:
        _set_fact(fields, name, rank, value(event))

    return handler
