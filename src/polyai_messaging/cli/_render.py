"""Pure rendering of the terminal chat: what to print for a change between two session snapshots.

Rendering is a pure function of two snapshots, :func:`render` ``(previous, new) -> Rendered``:
the permanent lines to print (messages once complete, agent and handoff notices, queue status,
system notices, link status, the end) and one ephemeral *indicator* line (a streaming reply as
it grows, or "Ada is typing…"). Because it diffs whole snapshots, it stays correct when the
session's update stream skips intermediate snapshots (it is conflated).

Nothing here does I/O; how each line reads is ``_wording``'s part, and
:mod:`polyai_messaging.cli._chat` writes the result to a terminal and re-exports the public names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from ..core import Conversation, Notice, ServerEvent
from ..driver import DeliveryStatus
from ._wording import (
    ELLIPSIS,
    end_line,
    event_line,
    indicator_line,
    message_lines,
    notice_line,
    one_line,
    status_line,
)

if TYPE_CHECKING:
    # Only for annotations: rendering reads snapshots and needs none of the trio adapter.
    from ..runtime import Update

__all__ = ["Rendered", "conversation_lines", "render"]

_EMPTY = Conversation()


@attrs.frozen
class Rendered:
    """What one snapshot changes on screen."""

    lines: tuple[str, ...] = ()
    """Permanent lines, in order."""
    indicator: str | None = None
    """The ephemeral bottom line (typing indicator or a reply still streaming), if any."""


def render(previous: Update | None, new: Update) -> Rendered:
    """Lines for everything that happened between two snapshots, and the current indicator."""
    lines: list[str] = []
    before = previous.conversation if previous is not None else _EMPTY
    if previous is not None and previous.state.session_id != new.state.session_id:
        lines.append("-- The session could not continue; a new session was started. --")
        before = _EMPTY
    status = status_line(previous.status if previous else None, new.status)
    if status is not None:
        lines.append(status)
    lines += conversation_lines(before, new.conversation)
    lines += _failed_deliveries(previous, new)
    if new.finished is not None and (previous is None or previous.finished is None):
        lines.append(end_line(new.finished))
    indicator = None if new.finished is not None else indicator_line(new.conversation)
    return Rendered(tuple(lines), indicator)


def conversation_lines(previous: Conversation, new: Conversation) -> list[str]:
    """Lines for the events and messages in ``new`` that ``previous`` did not have yet.

    Messages are shown once complete (a stream when its last chunk arrived), in sequence order
    together with the agent, handoff and queue notices; transient system notices come last.
    """
    items: list[tuple[float, int, list[str]]] = []
    for event in _new_events(previous, new):
        line = event_line(new, event)
        if line is not None:
            items.append((float(event.sequence or 0), 0, [line]))
    shown = {m.key for m in previous.transcript if m.complete or m.interrupted}
    transcript = new.transcript
    last_key = transcript[-1].key if transcript else None
    for message in transcript:
        if message.key in shown or not (message.complete or message.interrupted):
            continue
        rank = math.inf if message.sequence is None else float(message.sequence)
        lines = message_lines(new, message, suggestions=message.key == last_key)
        if lines and not message.complete:
            lines[0] += f"{ELLIPSIS} (interrupted)"
        if lines:
            items.append((rank, 1, lines))
    items.sort(key=lambda item: (item[0], item[1]))
    out = [line for _, _, lines in items for line in lines]
    out += [notice_line(notice) for notice in _appended(previous.notices, new.notices)]
    return out


def _new_events(previous: Conversation, new: Conversation) -> list[ServerEvent]:
    """Sequenced events in ``new`` that ``previous`` did not have, in sequence order.

    Cheap in the usual case, where ``new`` extends ``previous``: only the added part of the log
    is read. Otherwise (a conversation rebuilt after a reset) the two are compared whole.
    """
    added = new.log.since(previous.log)
    if added is None:
        known = {event.sequence for event in previous.log}
        added = [event for event in new.log if event.sequence not in known]
    return sorted(added, key=lambda event: event.sequence or 0)


def _appended(previous: Sequence[Notice], new: Sequence[Notice]) -> Sequence[Notice]:
    """The items at the end of ``new`` that ``previous`` did not end with (bounded tuples)."""
    for overlap in range(min(len(previous), len(new)), 0, -1):
        if tuple(previous[-overlap:]) == tuple(new[:overlap]):
            return new[overlap:]
    return new


def _failed_deliveries(previous: Update | None, new: Update) -> list[str]:
    failed_before = (
        {e.client_event_id for e in previous.state.outbox if e.status is DeliveryStatus.FAILED}
        if previous is not None
        else set()
    )
    return [
        f"(not delivered: {one_line(repr(entry.text))})"
        for entry in new.state.outbox
        if entry.status is DeliveryStatus.FAILED and entry.client_event_id not in failed_before
    ]
