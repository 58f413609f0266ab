"""The committed diagrams: the phase diagram must match the table it is generated from."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from polyai_messaging.core import TRANSITIONS, Phase

ROOT = Path(__file__).resolve().parent.parent
DIAGRAMS = ROOT / "diagrams"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_diagrams", ROOT / "scripts" / "make_diagrams.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_phase_diagram_matches_the_table() -> None:
    generated = load_script().phases_mermaid()
    committed = (DIAGRAMS / "phases.mmd").read_text(encoding="utf-8")
    assert committed == generated, "diagrams/phases.mmd is stale: run scripts/make_diagrams.py"


def test_check_mode(capsys: object) -> None:
    assert load_script().main(["--check"]) == 0


def test_the_site_renders_the_committed_diagrams_and_the_readme_links_to_them() -> None:
    concepts = (ROOT / "docs" / "concepts.md").read_text(encoding="utf-8")
    for name in ("phases.mmd", "connect-replay-join.mmd"):
        assert f"```{{mermaid}} ../diagrams/{name}\n```" in concepts
    # A package index shows the README without Mermaid: it links to the rendered page instead.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "```mermaid" not in readme
    assert "/concepts.html#phases)" in readme


def edges(source: str) -> set[tuple[str, str, str]]:
    found = set()
    for line in source.splitlines():
        match = re.fullmatch(r"\s*(\w+) --> (\w+): (.+)", line)
        if match:
            src, dst, labels = match.groups()
            found.update((src, dst, label) for label in labels.split(" | "))
    return found


def test_the_diagram_draws_exactly_the_table() -> None:
    source = load_script().phases_mermaid()
    expected = {
        (source_phase.name, row["dest"].name, row["trigger"])  # type: ignore[union-attr]
        for row in TRANSITIONS
        for source_phase in row["source"]  # type: ignore[attr-defined]
    }
    assert edges(source) == expected
    assert not any(src == Phase.ENDED.name for src, _, _ in edges(source))
    assert "[*] --> CONNECTING" in source
    assert source.startswith("---\ntitle: Conversation phase\n---\nstateDiagram-v2\n")
    for phase in Phase:
        assert f'state "{phase.name}" as {phase.name}' in source


def test_the_sequence_diagram_covers_the_flow() -> None:
    source = (DIAGRAMS / "connect-replay-join.mmd").read_text(encoding="utf-8")
    body = source.split("---\n", 2)[2]
    assert body.startswith("sequenceDiagram\n")
    for step in (
        "EVENT_BATCH",
        "SESSION_START",
        "REQUEST_POLY_AGENT_JOIN",
        "POLY_AGENT_JOINED",
        "HEARTBEAT",
        "cursor=",
        "SESSION_END",
    ):
        assert step in body
    # Mermaid treats ';' as a line break and '<...>' as HTML in message text
    for line in body.splitlines():
        assert ";" not in line, line
        assert not re.search(r"<(?!br/>)[^>]*>", line), line
