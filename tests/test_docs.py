"""The documentation: every Python example in ``docs/`` runs, and no text cites a file that is not
in this repository.

A block whose first line is ``# test_<name>.py`` is a pytest module and is run by pytest; a block
whose first line is ``# continued`` is the rest of the latest program before it; any other block
is a program and must exit 0 (the examples assert what they claim). Each runs in a fresh
directory holding a copy of ``examples/``, as a reader's checkout would. Examples shown
with ``literalinclude`` are files in ``examples/``, run by ``tests/test_examples.py``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(path for path in DOCS.rglob("*.md") if "_build" not in path.parts)
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)
PYTEST_MODULE = re.compile(r"# (test_\w+\.py)\n")
CONTINUED = "# continued"


def python_blocks() -> list[tuple[str, str]]:
    """(``page:line``, code) for every ```` ```python ```` block of the documentation."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            where, code = f"{page.relative_to(DOCS)}:{line}", match.group(1)
            if code.startswith(CONTINUED):  # the latest program (not pytest module) goes on
                index = max(i for i, (_, c) in enumerate(found) if not PYTEST_MODULE.match(c))
                before, earlier = found.pop(index)
                where, code = f"{before}+{line}", earlier + code
            found.append((where, code))
    return found


BLOCKS = python_blocks()


def test_the_documentation_has_examples_to_run() -> None:
    pages_with_examples = {where.split(":")[0] for where, _ in BLOCKS}
    assert len(BLOCKS) >= 10
    assert {"concepts.md", "guides/testing.md", "guides/persistence.md"} <= pages_with_examples


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_the_example_runs(where: str, code: str, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    module = PYTEST_MODULE.match(code)
    if module:
        (tmp_path / module.group(1)).write_text(code, encoding="utf-8")
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", module.group(1)]
    else:
        command = [sys.executable, "-c", code]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"{where}\n{result.stdout}\n{result.stderr}"


# --- citations ---------------------------------------------------------------------------------

CITATION = re.compile(r"protocol\.md|§|\bOP-\d")
CHECKED = [
    *("src", "docs", "diagrams", "tests", "bench", "scripts", "examples"),
    *("README.md", "CHANGELOG.md"),
]
GUARD = "tests/test_docs.py"
"""This file names the citations it looks for."""
LABEL_MENTION = re.compile(r":ref:`(protocol-[a-z-]+)`|\(docs: (protocol-[a-z-]+)\)")


def checked_files() -> list[Path]:
    files: list[Path] = []
    for name in CHECKED:
        path = ROOT / name
        if path.is_file():
            files.append(path)
        else:
            files += [
                file
                for file in path.rglob("*")
                if file.is_file()
                and "_build" not in file.parts
                and "__pycache__" not in file.parts
                and file.suffix in {".py", ".md", ".mmd", ".txt"}
            ]
    return sorted(files)


def test_no_text_cites_the_external_protocol_reference() -> None:
    citing = [
        f"{file.relative_to(ROOT)}:{number}: {line.strip()}"
        for file in checked_files()
        if str(file.relative_to(ROOT)) != GUARD
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1)
        if CITATION.search(line)
    ]
    assert citing == [], "cite the Protocol coverage page instead:\n" + "\n".join(citing)


def test_the_guard_finds_a_citation() -> None:
    for line in ("see protocol.md", "(§5.1)", "as OP-23 says"):
        assert CITATION.search(line)
    for line in ("operation", "OP-AMP", "protocol-coverage.md"):
        assert not CITATION.search(line)


def test_every_mention_of_a_coverage_section_names_one_that_exists() -> None:
    page = (DOCS / "protocol-coverage.md").read_text(encoding="utf-8")
    labels = set(re.findall(r"^\((protocol-[a-z-]+)\)=$", page, re.M))
    mentioned = {
        (label or comment, str(file.relative_to(ROOT)))
        for file in (ROOT / "src").rglob("*.py")
        for label, comment in LABEL_MENTION.findall(file.read_text(encoding="utf-8"))
    }
    assert len(labels) >= 20
    assert {name for name, _ in mentioned} <= labels, sorted(
        mention for mention in mentioned if mention[0] not in labels
    )


# --- the README as a package description --------------------------------------------------------

MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)|<(https?://[^>]+)>")


def project_urls() -> dict[str, str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]


def test_the_readme_renders_on_a_package_index() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = [a or b for a, b in MARKDOWN_LINK.findall(readme)]
    assert links, "the README links to the documentation and the repository"
    relative = [link for link in links if not link.startswith("https://")]
    assert relative == [], "a package index cannot resolve relative links"
    assert "```mermaid" not in readme, "a package index does not render Mermaid"
    urls = project_urls()
    ours = [link for link in links if "polyai-messaging" in link.split("/")[2]]
    bases = (urls["Source"], urls["Documentation"].rstrip("/"))
    assert ours
    assert all(link.startswith(bases) for link in ours), ours


def test_the_project_urls_name_one_repository() -> None:
    urls = project_urls()
    assert {"Documentation", "Source", "Changelog"} <= set(urls)
    assert urls["Changelog"].startswith(urls["Source"] + "/")
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    assert f'polyai_repository = "{urls["Source"]}"' in conf
