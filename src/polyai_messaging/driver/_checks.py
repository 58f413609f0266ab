"""The outbox's echo checks: a persistent min-heap, so that a send costs O(log n) however many
messages are still waiting for their echo.

A leftist heap of ``(time, serial, client_event_id)`` tuples, built from tuples and never
changed in place: every version stays valid, as the immutable outbox needs. Checks are not
removed one by one: when a message is confirmed, or its check moves, the old check stays in
the heap and is dropped once it reaches the top (the outbox keeps the top current), so each
check is pushed once and popped once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeAlias

__all__ = ["NO_CHECKS", "Check", "EchoChecks"]

Check: TypeAlias = tuple[float, int, str]
"""An echo check: its time, then the message's serial and id (a total order)."""

# (rank, check, left, right): the rank is the length of the right spine, kept no longer than
# the left one's, so melding walks O(log n) nodes.
_Node: TypeAlias = "tuple[int, Check, _Node | None, _Node | None]"


def _rank(node: _Node | None) -> int:
    return 0 if node is None else node[0]


def _meld(a: _Node | None, b: _Node | None) -> _Node | None:
    if a is None:
        return b
    if b is None:
        return a
    if b[1] < a[1]:
        a, b = b, a
    left, right = a[2], _meld(a[3], b)
    if _rank(left) < _rank(right):
        left, right = right, left
    return (_rank(right) + 1, a[1], left, right)


class EchoChecks:
    """An immutable min-heap of checks. Create with ``EchoChecks()``."""

    __slots__ = ("_root", "_size")

    def __init__(self, root: _Node | None = None, size: int = 0) -> None:
        self._root = root
        self._size = size

    def __len__(self) -> int:
        """Checks held, including superseded ones not yet dropped."""
        return self._size

    @property
    def first(self) -> Check | None:
        """The earliest check, in O(1)."""
        return None if self._root is None else self._root[1]

    def pushed(self, check: Check) -> EchoChecks:
        """These checks and ``check``: O(log n)."""
        return EchoChecks(_meld(self._root, (1, check, None, None)), self._size + 1)

    def without_first(self) -> EchoChecks:
        """These checks but the earliest: O(log n)."""
        root = self._root
        if root is None:
            return self
        return EchoChecks(_meld(root[2], root[3]), self._size - 1)

    def cleaned(self, current: Callable[[Check], bool]) -> EchoChecks:
        """These checks with every superseded one at the top dropped, so that :attr:`first`
        is ``current``."""
        checks = self
        while checks.first is not None and not current(checks.first):
            checks = checks.without_first()
        return checks

    def until(self, t: float) -> Iterator[Check]:
        """The checks at or before ``t``, earliest first: O(log n) each."""
        checks = self
        while (first := checks.first) is not None and first[0] <= t:
            yield first
            checks = checks.without_first()

    def __iter__(self) -> Iterator[Check]:
        """Every check held, earliest first."""
        return self.until(float("inf"))

    def __repr__(self) -> str:
        return f"EchoChecks({list(self)!r})"


NO_CHECKS = EchoChecks()
