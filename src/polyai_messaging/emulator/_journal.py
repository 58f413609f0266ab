"""A session's journal: the persistent, ordered history that replays are cut from."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ._wire import encode, make_event

__all__ = ["Journal", "JournalEntry"]


@dataclass(frozen=True, eq=False)
class JournalEntry:
    """One server event and its encoded text (encoded once, sent to every socket as is)."""

    event: dict[str, Any]
    """The full envelope. Treat it as read-only: ``text`` was encoded from it."""
    text: str
    """The JSON text of ``event``."""

    @property
    def sequence(self) -> int | None:
        """The event's ``sequence``; ``None`` for transient events."""
        sequence: int | None = self.event["sequence"]
        return sequence

    @property
    def type(self) -> str:
        """The event's ``type``."""
        event_type: str = self.event["type"]
        return event_type


def make_entry(
    event_type: str,
    payload: dict[str, Any],
    *,
    sequence: int | None,
    metadata: dict[str, Any] | None = None,
) -> JournalEntry:
    """Build and encode one event."""
    event = make_event(event_type, payload, sequence=sequence, metadata=metadata)
    return JournalEntry(event, encode(event))


class Journal:
    """Persistent events of one session, with consecutive sequences from 1
    (:ref:`protocol-emulator`)."""

    def __init__(self) -> None:
        self._entries: list[JournalEntry] = []

    def append(
        self,
        event_type: str,
        payload: dict[str, Any],
        *,
        metadata: dict[str, Any] | None = None,
    ) -> JournalEntry:
        """Journal a new event with the next sequence number and return it."""
        entry = make_entry(event_type, payload, sequence=len(self._entries) + 1, metadata=metadata)
        self._entries.append(entry)
        return entry

    def after(self, cursor: int) -> Sequence[JournalEntry]:
        """Entries whose sequence is greater than ``cursor`` (the cursor is exclusive)."""
        # Sequences are 1..n without gaps, so entry i has sequence i + 1.
        return self._entries[max(cursor, 0) :]

    def at(self, sequence: int) -> JournalEntry | None:
        """The entry with ``sequence``, if journaled: O(1), nothing is copied."""
        return self._entries[sequence - 1] if 0 < sequence <= len(self._entries) else None

    def last(self, count: int) -> Sequence[JournalEntry]:
        """The ``count`` most recent entries, oldest first."""
        return self._entries[-count:] if count > 0 else []

    @property
    def last_sequence(self) -> int:
        """The highest sequence journaled so far (0 when empty)."""
        return len(self._entries)

    @property
    def events(self) -> list[dict[str, Any]]:
        """The journaled envelopes in order (the list is a copy; the dicts are not)."""
        return [entry.event for entry in self._entries]

    def types(self) -> list[str]:
        """The journaled event types in order; handy in tests."""
        return [entry.type for entry in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[JournalEntry]:
        return iter(list(self._entries))
