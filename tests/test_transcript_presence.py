"""Presence in the rendered conversation: ``to_json`` keys and the ``Presence:`` line."""

from __future__ import annotations

from typing import Any

import pytest

from polyai_messaging.core import Conversation, render_text, to_json
from polyai_messaging.core import _reducer as reducer
from polyai_messaging.core import _wire as wire


def fold(*frames: dict[str, Any]) -> Conversation:
    return reducer.fold(wire.decode_object(frame) for frame in frames)


def event(kind: str, sequence: int, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "EVENT_TYPE_" + kind,
        "id": f"e{sequence}",
        "sequence": sequence,
        "payload": payload or {},
    }


JOINED = event("POLY_AGENT_JOINED", 2, {"agent_name": "Ada"})
LEFT = event("POLY_AGENT_LEFT", 3, {"reason": "HANDOFF"})
LIVE_JOINED = event("LIVE_AGENT_JOINED", 4, {"agent": {"id": "a42", "name": "Sarah"}})
LIVE_LEFT = event("LIVE_AGENT_LEFT", 5)


@pytest.mark.parametrize(
    ("frames", "json_facts", "line"),
    [
        ((), (False, None, False, None), None),
        ((JOINED,), (True, None, False, None), "Presence: agent present"),
        ((JOINED, LEFT), (False, "HANDOFF", False, None), "Presence: agent left (HANDOFF)"),
        (
            (JOINED, LEFT, LIVE_JOINED),
            (False, "HANDOFF", True, None),
            "Presence: agent left (HANDOFF), live agent present",
        ),
        (
            (JOINED, LEFT, LIVE_JOINED, LIVE_LEFT),
            (False, "HANDOFF", False, None),
            "Presence: agent left (HANDOFF), live agent left",
        ),
        ((LIVE_LEFT,), (False, None, False, None), None),  # nobody announced
    ],
)
def test_presence_is_rendered(
    frames: tuple[dict[str, Any], ...],
    json_facts: tuple[bool, str | None, bool, str | None],
    line: str | None,
) -> None:
    conversation = fold(*frames)
    document = to_json(conversation)
    names = ("agent_present", "agent_left_reason", "live_agent_present", "live_agent_left_reason")
    assert tuple(document[name] for name in names) == json_facts
    lines = [x for x in render_text(conversation).splitlines() if x.startswith("Presence:")]
    assert lines == ([] if line is None else [line])
