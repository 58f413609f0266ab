"""``Gaps``: a persistent set of missing ranges, checked against a plain list of sequences."""

from __future__ import annotations

import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyai_messaging.core import _gaps
from polyai_messaging.core._gaps import FANOUT, Gaps
from strategies import examples


def ranges(missing: set[int]) -> list[tuple[int, int]]:
    """``missing`` as ascending, maximal ``(first, last)`` ranges."""
    out: list[tuple[int, int]] = []
    for sequence in sorted(missing):
        if out and out[-1][1] == sequence - 1:
            out[-1] = (out[-1][0], sequence)
        else:
            out.append((sequence, sequence))
    return out


def check(gaps: Gaps, missing: set[int], top: int) -> None:
    expected = ranges(missing)
    assert list(gaps) == expected
    assert len(gaps) == len(expected)
    for sequence in range(-1, top + 2):
        assert (gaps.filled(sequence) is not gaps) == (sequence in missing)
        assert list(gaps.after(sequence)) == [r for r in expected if r[0] > sequence]


operations = st.lists(
    st.one_of(
        st.tuples(st.just("open"), st.integers(0, 3), st.integers(1, 4)),
        st.tuples(st.just("fill"), st.integers(0, 10**6), st.just(0)),
    ),
    max_size=120,
)


@settings(max_examples=examples(150))
@given(st.sampled_from([3, 4, 5, FANOUT]), operations, st.integers(0, 10**6))
def test_every_version_holds_what_a_plain_set_holds(
    fanout: int, steps: list[tuple[str, int, int]], fork: int
) -> None:
    """Ranges open above the top and fill anywhere; each operation sometimes extends an older
    version (a fork), and every version must keep its contents."""
    versions: list[tuple[Gaps, set[int], int]] = [(Gaps(fanout=fanout), set(), 0)]
    for kind, a, b in steps:
        gaps, missing, top = (
            versions[-1] if (fork + len(versions)) % 4 else versions[fork % len(versions)]
        )
        if kind == "open":
            first = top + 1 + a
            last = first + b - 1
            versions.append(
                (gaps.appended(first, last), missing | set(range(first, last + 1)), last + 1)
            )
        elif missing:
            sequence = sorted(missing)[a % len(missing)]
            versions.append((gaps.filled(sequence), missing - {sequence}, top))
        else:
            assert gaps.filled(a) is gaps
    for gaps, missing, top in versions:
        check(gaps, missing, top)


def test_filling_what_is_not_missing_changes_nothing() -> None:
    gaps = Gaps().appended(3, 5).appended(9, 9)
    for sequence in (1, 2, 6, 8, 10):
        assert gaps.filled(sequence) is gaps
    assert list(gaps.filled(4)) == [(3, 3), (5, 5), (9, 9)]


def test_ranges_must_be_appended_in_order() -> None:
    gaps = Gaps(fanout=3)
    for first in (3, 6, 9, 12):  # the last two are in the tree, past the tail
        gaps = gaps.appended(first, first + 1)
    for bad in ((13, 20), (1, 1), (20, 19)):
        with pytest.raises(ValueError, match="does not follow"):
            gaps.appended(*bad)
    emptied_tail = gaps.filled(12).filled(13)
    with pytest.raises(ValueError, match="does not follow"):
        emptied_tail.appended(10, 11)
    assert list(emptied_tail.appended(11, 11)) == [(3, 4), (6, 7), (9, 10), (11, 11)]
    with pytest.raises(ValueError, match="fanout"):
        Gaps(fanout=2)


@pytest.mark.parametrize("fanout", [3, 4, FANOUT])
def test_the_tree_stays_shallow(fanout: int) -> None:
    """Evens then odds, the worst order: the height stays logarithmic throughout."""
    count = 3000
    gaps = Gaps(fanout=fanout)
    for sequence in range(2, 2 * count + 1, 2):
        gaps = gaps.appended(sequence - 1, sequence - 1)
    bound = math.log(count, (fanout + 1) // 2) + 1
    assert gaps._height <= bound
    for sequence in range(2 * count - 1, 0, -2):  # filled from the top, then again from the bottom
        gaps = gaps.filled(sequence) if sequence % 4 == 1 else gaps
        assert gaps._height <= bound
    for sequence in range(3, 2 * count, 4):
        gaps = gaps.filled(sequence)
    assert list(gaps) == []
    assert gaps._height == 0


def test_equality_pickling_and_repr() -> None:
    small = Gaps(fanout=3)
    big = Gaps()
    for first in range(1, 40, 3):
        small, big = small.appended(first, first + 1), big.appended(first, first + 1)
    assert small == big
    assert small != big.filled(1)
    copy = pickle.loads(pickle.dumps(small))
    assert copy == small
    assert list(copy.filled(4)) == list(small.filled(4))
    assert repr(Gaps().appended(2, 3)) == "Gaps([(2, 3)])"
    with pytest.raises(TypeError):
        hash(small)


def test_filling_the_lowest_gap_searches_no_node(monkeypatch: pytest.MonkeyPatch) -> None:
    """Late events usually fill the gaps lowest first (a replay sends them in order): that
    gap is found by following each node's first entry, without a search."""
    gaps = Gaps()
    for first in range(1, 4 * FANOUT * FANOUT, 2):
        gaps = gaps.appended(first, first)
    searches: list[object] = []
    real = _gaps.bisect_right

    def counted(*args: object, **kwargs: object) -> int:
        searches.append(args)
        return real(*args, **kwargs)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(_gaps, "bisect_right", counted)
    expected = list(gaps)
    while len(expected) > len(gaps._tail):
        gaps = gaps.filled(expected.pop(0)[0])
        assert list(gaps) == expected
    assert searches == []
    gaps.filled(expected[-1][0] - 1)  # not missing, and not the lowest: searched
    assert searches
