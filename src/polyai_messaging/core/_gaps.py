"""``Gaps``: the missing sequence ranges below the cursor, persistent, O(log n) per change.

Events that arrive out of order open a gap each, and each late event fills one: with a tuple of
ranges, every such event copied (and scanned) them all, which made one batch of 60,000 events
sent evens-then-odds quadratic. Here the ranges are the leaves of a small B-tree of tuples: a
change copies one path of nodes (a few tuples of at most :data:`FANOUT` entries), every version
shares the rest, and no version ever changes.

Every node is a tuple of ``(key, value)`` pairs sorted by key: in a leaf a range
``(first, last)``, in an inner node ``(first of its subtree, subtree)``. Nodes split in halves
when they overflow and are dropped when empty. They are never merged: a node gains at least
half a node's worth of entries between two of its splits, so the height stays logarithmic in
the number of ranges ever added. New ranges always come above the others, so the last leaf is
kept apart, as ``tail``: opening a gap copies that one tuple, and only a full tail goes into the
tree.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from operator import itemgetter
from typing import Any

__all__ = ["FANOUT", "Gaps"]

FANOUT = 32
"""Most entries in one node."""

Range = tuple[int, int]
Node = tuple[tuple[int, Any], ...]
"""A leaf holds ``Range`` pairs; an inner node ``(first, Node)`` pairs."""

_key = itemgetter(0)
_new = object.__new__


def _index(node: Node, sequence: int) -> int:
    """The last entry whose key is at most ``sequence`` (-1 if none)."""
    return bisect_right(node, sequence, key=_key) - 1


def _pieces(entries: Node, fanout: int) -> Node:
    """``entries`` as the ``(first, node)`` entries that replace one node: none, one or two."""
    if not entries:
        return ()
    if len(entries) <= fanout:
        return ((entries[0][0], entries),)
    half = len(entries) // 2
    return ((entries[0][0], entries[:half]), (entries[half][0], entries[half:]))


def _without(entry: Range, sequence: int) -> tuple[Range, ...]:
    """What is left of the range ``entry`` once ``sequence`` (inside it) is filled."""
    first, last = entry
    if first < sequence:
        if sequence < last:
            return ((first, sequence - 1), (sequence + 1, last))
        return ((first, sequence - 1),)
    if sequence < last:
        return ((sequence + 1, last),)
    return ()


def _rooted(pieces: Node, height: int) -> tuple[Node, int]:
    """The root made of ``pieces`` (the nodes replacing the old root of ``height``)."""
    if len(pieces) > 1:
        return pieces, height + 1
    root: Node = pieces[0][1] if pieces else ()
    while height and len(root) == 1:  # an inner root with one child hands over to it
        root = root[0][1]
        height -= 1
    return root, height


def _walk(node: Node, height: int) -> Iterator[Range]:
    if not height:
        yield from node
        return
    for _, child in node:
        yield from _walk(child, height - 1)


def _after(node: Node, height: int, sequence: int) -> Iterator[Range]:
    start = _index(node, sequence)
    if not height:
        yield from node[start + 1 :]
        return
    # the subtree holding ``sequence`` may hold later ranges too; the ones after it all are
    if start >= 0:
        yield from _after(node[start][1], height - 1, sequence)
    for _, child in node[start + 1 :]:
        yield from _walk(child, height - 1)


class Gaps:
    """Disjoint ranges ``(first, last)`` of missing sequences, ascending. Create with ``Gaps()``.

    Persistent: :meth:`appended` and :meth:`filled` return a new version and leave this one as
    it was.
    """

    __slots__ = ("_count", "_fanout", "_height", "_root", "_tail")

    _root: Node
    _height: int
    _tail: tuple[Range, ...]
    _count: int
    _fanout: int

    def __init__(self, *, fanout: int = FANOUT) -> None:
        if fanout < 3:
            # at 2 a split leaves a full piece, and every append would split up to the root
            raise ValueError("fanout must be at least 3")
        self._root = ()
        self._height = 0
        self._tail = ()
        self._count = 0
        self._fanout = fanout

    def _derive(self, root: Node, height: int, tail: tuple[Range, ...], count: int) -> Gaps:
        new: Gaps = _new(Gaps)
        new._root = root
        new._height = height
        new._tail = tail
        new._count = count
        new._fanout = self._fanout
        return new

    def appended(self, first: int, last: int) -> Gaps:
        """This set with the range ``(first, last)`` added above every range in it: O(1)
        amortised."""
        tail = self._tail
        top = tail[-1][1] if tail else self._tree_last()
        if first > last or (top is not None and first <= top):
            raise ValueError(f"range ({first}, {last}) does not follow the last range")
        if len(tail) < self._fanout:  # the usual case (_derive inlined: once per gap opened)
            new: Gaps = _new(Gaps)
            new._root = self._root
            new._height = self._height
            new._tail = tail + ((first, last),)  # noqa: RUF005 (unpacking builds a list first)
            new._count = self._count + 1
            new._fanout = self._fanout
            return new
        root, height = self._push(tail)
        return self._derive(root, height, ((first, last),), self._count + 1)

    def _tree_last(self) -> int | None:
        node = self._root
        if not node:
            return None
        for _ in range(self._height):
            node = node[-1][1]
        return int(node[-1][1])

    def _push(self, leaf: tuple[Range, ...]) -> tuple[Node, int]:
        """The tree with ``leaf`` added as its last leaf: root and height."""
        if not self._root:
            return leaf, 0
        path = []
        node = self._root
        for _ in range(self._height):
            path.append(node)
            node = node[-1][1]
        # the new leaf goes beside the last one, in its parent
        pieces: Node = ((node[0][0], node), (leaf[0][0], leaf))
        for parent in reversed(path):
            pieces = _pieces((*parent[:-1], *pieces), self._fanout)
        return _rooted(pieces, self._height)

    def filled(self, sequence: int) -> Gaps:
        """This set without ``sequence``: its range shrinks, splits or goes. O(log n).

        ``self`` when ``sequence`` is not missing, so this also tells whether it is.
        """
        if not self._count:  # the usual case: a duplicate of a history without gaps
            return self
        tail = self._tail
        # (_index, _without and _derive inlined: once per late event, and a history sent out
        # of order fills one gap per event.)
        if tail and sequence >= tail[0][0]:
            i = bisect_right(tail, sequence, key=_key) - 1
            first, last = tail[i]
            if last < sequence:
                return self
            rest = _without(tail[i], sequence) if first != last else ()
            tail = tail[:i] + rest + tail[i + 1 :]
            return self._derive(self._root, self._height, tail, self._count + len(rest) - 1)
        path = []
        node = self._root
        if not node or sequence < node[0][0]:
            return self
        # The lowest gap is found without a search: late events usually fill the gaps lowest
        # first (a replay sends them in order), so its subtree is each node's first.
        for _ in range(self._height):
            if len(node) > 1 and sequence >= node[1][0]:
                i = bisect_right(node, sequence, key=_key) - 1
            else:
                i = 0
            path.append((node, i))
            node = node[i][1]
        if len(node) > 1 and sequence >= node[1][0]:
            i = bisect_right(node, sequence, key=_key) - 1
        else:
            i = 0
        first, last = node[i]
        if last < sequence:
            return self
        fanout = self._fanout
        if first == last:
            rest = ()
            # Concatenated, not unpacked into a new tuple: this builds no list first.
            entries = node[i + 1 :] if i == 0 else node[:i] + node[i + 1 :]
        else:
            rest = _without(node[i], sequence)
            entries = node[:i] + rest + node[i + 1 :]
        for parent, j in reversed(path):
            if 0 < len(entries) <= fanout:  # the usual case, inlined: one node replaces one
                entries = parent[:j] + ((entries[0][0], entries),) + parent[j + 1 :]  # noqa: RUF005
            else:
                entries = parent[:j] + _pieces(entries, fanout) + parent[j + 1 :]
        if 0 < len(entries) <= fanout and (len(entries) > 1 or not self._height):
            root, height = entries, self._height  # the usual case of _rooted(_pieces(...))
        else:
            root, height = _rooted(_pieces(entries, fanout), self._height)
        new: Gaps = _new(Gaps)
        new._root = root
        new._height = height
        new._tail = tail
        new._count = self._count + len(rest) - 1
        new._fanout = fanout
        return new

    def after(self, sequence: int) -> Iterator[Range]:
        """The ranges whose first sequence is above ``sequence``, ascending: O(log n + k)."""
        yield from _after(self._root, self._height, sequence)
        yield from self._tail[_index(self._tail, sequence) + 1 :]

    def __iter__(self) -> Iterator[Range]:
        yield from _walk(self._root, self._height)
        yield from self._tail

    def __len__(self) -> int:
        return self._count

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Gaps):
            return NotImplemented
        return self._count == other._count and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Gaps({list(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuilt, (tuple(self), self._fanout))


def _rebuilt(ranges: tuple[Range, ...], fanout: int) -> Gaps:
    """The set of ``ranges`` (ascending and disjoint), as unpickling builds it."""
    gaps = Gaps(fanout=fanout)
    for first, last in ranges:
        gaps = gaps.appended(first, last)
    return gaps
