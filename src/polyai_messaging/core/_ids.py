"""``IdMemory``: the ids of a conversation's recent events, shared by its versions.

Every event with an id adds it (de-duplication, see :mod:`._reducer`), so this is the one
structure every fold extends. A persistent map copied a path of nodes per id: a third of the
cost of folding an event. Here, as in :class:`~._history.EventLog`, every version of a
conversation shares one append-only list of ids and an index of it, and sees only the first
``count`` of them (the count is a field of the conversation). Extending the newest version
appends in place; extending an older one (a fork) first copies what that version sees.

Ids are remembered in two generations of :data:`RECENT_ID_MEMORY`: once the newer generation
is full, the next id starts a new memory holding only that generation (as the older one), so a
memory holds at most twice that many ids, and rolling over costs one id's copy per id added.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["RECENT_ID_MEMORY", "IdMemory"]

RECENT_ID_MEMORY = 256
"""Event ids are remembered for de-duplication in two generations of this many (512 at most).

Duplicates come from overlapping replays and fan-out, within a batch or two of the original, so
this is ample. Sequenced events are also de-duplicated exactly by their sequence, whatever
their age."""


class IdMemory:
    """Ids in the order they were remembered, shared by versions that each see a prefix.

    ``ids[:older]`` is the older generation, ``ids[older:count]`` the newer one of a version
    that sees ``count`` ids; ``index`` gives each id's place in ``ids``. Only the version that
    sees every id (``count == len(ids)``) appends in place, so no version's prefix ever changes.
    """

    __slots__ = ("ids", "index", "older")

    ids: list[str]
    index: dict[str, int]
    older: int

    def __init__(self, ids: Iterable[str] = (), older: int = 0) -> None:
        self.ids = list(ids)
        self.index = {event_id: place for place, event_id in enumerate(self.ids)}
        self.older = older

    def seen(self, count: int, event_id: str) -> bool:
        """Whether the version that sees ``count`` ids remembers ``event_id``."""
        index = self.index
        return event_id in index and index[event_id] < count

    def extended(self, count: int, event_id: str) -> IdMemory:
        """A new memory: what the version that sees ``count`` ids remembers, and ``event_id``.

        For a version that is not the newest, or whose newer generation is full (then the new
        memory keeps only that generation, as the older one). Adding to the newest version
        otherwise appends to :attr:`ids` in place (the reducer does it inline)."""
        if count - self.older >= RECENT_ID_MEMORY:
            memory = IdMemory(self.ids[self.older : count], older=count - self.older)
        else:
            memory = IdMemory(self.ids[:count], older=self.older)
        memory.ids.append(event_id)
        memory.index[event_id] = len(memory.ids) - 1
        return memory

    def generations(self, count: int) -> tuple[list[str], list[str]]:
        """The older and the newer generation of ids seen by the version that sees ``count``."""
        return self.ids[: self.older], self.ids[self.older : count]

    def __repr__(self) -> str:
        return f"<IdMemory of {len(self.ids)} ids>"
