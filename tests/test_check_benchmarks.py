"""The CI check of the benchmarks' output (scripts/check_benchmarks.py): its verdicts."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_script() -> ModuleType:
    path = ROOT / "scripts" / "check_benchmarks.py"
    spec = importlib.util.spec_from_file_location("check_benchmarks", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHECK = load_script()
FIGURES = ("a", "b")


def test_every_benchmark_file_is_checked_and_exists() -> None:
    benchmarks = {
        path.stem for path in (ROOT / "bench").glob("*.py") if not path.stem.startswith("_")
    }
    assert set(CHECK.FIGURES) == benchmarks


def test_a_last_line_with_every_figure_passes() -> None:
    output = 'some lines\n  of text\n{"a": 1.5, "b": 0, "extra": {"x": 1}}\n'
    assert CHECK.problems(output, FIGURES) == []


def test_null_stands_for_a_figure_that_could_not_be_had() -> None:
    assert CHECK.problems('{"a": null, "b": 2}', FIGURES) == []


@pytest.mark.parametrize(
    ("output", "complaint"),
    [
        ("", "printed nothing"),
        ('{"a": 1, "b": 2}\ndone', "not JSON"),
        ("[1, 2]", "not an object"),
        ('{"a": 1}', "'b' is missing"),
        ('{"a": 1, "b": "fast"}', "'b' is not a number"),
        ('{"a": true, "b": 2}', "'a' is not a number"),
    ],
)
def test_what_is_wrong_is_said(output: str, complaint: str) -> None:
    found = CHECK.problems(output, FIGURES)
    assert len(found) == 1
    assert complaint in found[0]
