"""Probes that count passes over a whole conversation history (for counting tests)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from polyai_messaging.core import Conversation, EventLog


class HistoryProbe:
    """Counts passes over a conversation's whole history while installed: iterating or
    slicing its event log (what the timeline, the journal map or a re-fold are built from) and
    sorting every message (the transcript). Each pass is listed in :attr:`passes`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.passes: list[str] = []
        iterate, item = EventLog.__iter__, EventLog.__getitem__
        sort = Conversation._sorted_records

        def counted_iter(log: EventLog) -> Iterator[Any]:
            self.passes.append("EventLog.__iter__")
            return iterate(log)

        def counted_item(log: EventLog, index: Any) -> Any:
            if isinstance(index, slice):
                self.passes.append("EventLog slice")
            return item(log, index)

        def counted_sort(conversation: Conversation) -> Any:
            self.passes.append("Conversation._sorted_records")
            return sort(conversation)

        monkeypatch.setattr(EventLog, "__iter__", counted_iter)
        monkeypatch.setattr(EventLog, "__getitem__", counted_item)
        monkeypatch.setattr(Conversation, "_sorted_records", counted_sort)
