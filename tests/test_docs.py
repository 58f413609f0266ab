"""The documentation: every Python example in ``docs/`` runs, and no text cites a file that is not
in this repository.

A block whose first line is ``# test_<name>.py`` is a pytest module and is run by pytest; a block
whose first line is ``# continued`` is the rest of the latest program before it; any other block
is a program and must exit 0 (the examples assert what they claim). Each runs in a fresh
directory holding a copy of ``examples/``, as a reader's checkout would. Examples shown
with ``literalinclude`` are files in ``examples/``, run by ``tests/test_examples.py``.
"""

from __future__ import annotations

import ast
import html
import importlib
import inspect
import pydoc
import re
import shutil
import subprocess
import sys
import tomllib
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

import polyai_messaging.asyncio
import polyai_messaging.trio
from polyai_messaging.rest import SessionOpener
from polyai_messaging.runtime import SessionRuntime

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


# --- the install instructions ---------------------------------------------------------------------

PUBLISHED_INSTALL = re.compile(r"pip install '?polyai-messaging\b")


@pytest.mark.parametrize("page", ["README.md", "docs/quickstart.md"])
def test_the_install_instructions_work_before_the_first_release(page: str) -> None:
    """The package is not on PyPI yet: installing it by name is only ever shown as what will
    work once it is released (drop this test when it is published)."""
    paragraphs = (ROOT / page).read_text(encoding="utf-8").split("\n\n")
    assert any("not on PyPI yet" in paragraph for paragraph in paragraphs)
    for index, paragraph in enumerate(paragraphs):
        if PUBLISHED_INSTALL.search(paragraph):
            context = paragraph if index == 0 else paragraphs[index - 1] + paragraph
            assert "released" in context, paragraph
    assert "every extra" not in "\n".join(paragraphs), "[test] leaves out the docs extra"


# --- the logging guide --------------------------------------------------------------------------

LOGGER_CALL = re.compile(r"logging\.getLogger\((__name__|\"[\w.]+\")\)")


def test_the_logging_guide_names_public_loggers_that_cover_every_logger() -> None:
    guide = (DOCS / "guides" / "observability.md").read_text(encoding="utf-8")
    logs = guide.split("## Logs", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"^- `(polyai_messaging[\w.]*)`", logs, re.M))
    assert "polyai_messaging" in named
    assert not [name for name in named if "._" in name], "a private module is no logger name"
    used = set()
    for path in (ROOT / "src").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT / "src").with_suffix("").parts)
        for name in LOGGER_CALL.findall(path.read_text(encoding="utf-8")):
            used.add(module.removesuffix(".__init__") if name == "__name__" else name.strip('"'))
    assert used
    assert not [logger for logger in used if "._" in logger], "records named after private modules"
    for logger in used:
        assert logger in named or any(logger.startswith(f"{name}.") for name in named), logger
    # A package named in the guide is one that logs (directly or below it).
    for name in named:
        assert any(logger == name or logger.startswith(f"{name}.") for logger in used), name


# --- open_session documents itself ----------------------------------------------------------------

ADAPTERS = {"asyncio": polyai_messaging.asyncio, "trio": polyai_messaging.trio}


@pytest.mark.parametrize("loop", ADAPTERS)
def test_open_session_documents_itself_not_the_opener_class(loop: str) -> None:
    adapter = ADAPTERS[loop]
    open_session = adapter.open_session
    doc = inspect.getdoc(open_session) or ""
    assert doc.startswith(f"Open a session on {loop}"), doc
    assert "SessionOpener" not in doc
    assert inspect.getdoc(SessionOpener) not in doc, "the opener class's docstring"
    assert "``base_url`` is the REST base URL" in doc, "the parameters are documented"
    assert f"~{adapter.Session.__module__}.Session" in doc, "what it returns is documented"
    assert inspect.isfunction(open_session)
    help_text = pydoc.render_doc(open_session, renderer=pydoc.plaintext)
    assert "function open_session" in help_text
    assert f"Open a session on {loop}" in help_text
    signature = inspect.signature(open_session)
    assert signature.return_annotation == AbstractAsyncContextManager[adapter.Session]
    call = inspect.signature(SessionOpener.__call__)
    assert list(signature.parameters) == [name for name in call.parameters if name != "self"]


# --- every public constant has its own documentation -------------------------------------------

PUBLIC_PACKAGES = [
    "polyai_messaging",
    *(f"polyai_messaging.{name}" for name in ("core", "driver", "runtime", "rest")),
    *(f"polyai_messaging.{name}" for name in ("trio", "asyncio", "emulator", "testing", "cli")),
]


def documented_assignments() -> set[tuple[str, str]]:
    """(module, name) for every module-level assignment of the package followed by a docstring
    or preceded by a ``#:`` comment, as Sphinx reads them."""
    found: set[tuple[str, str]] = set()
    for path in (ROOT / "src").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT / "src").with_suffix("").parts)
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        body = ast.parse(source).body
        for node, after in zip(body, [*body[1:], None], strict=True):
            if not isinstance(node, ast.Assign | ast.AnnAssign):
                continue
            docstring = (
                isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            )
            comment = node.lineno > 1 and lines[node.lineno - 2].strip().startswith("#:")
            if docstring or comment:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                found |= {
                    (module.removesuffix(".__init__"), target.id)
                    for target in targets
                    if isinstance(target, ast.Name)
                }
    return found


def test_every_public_constant_has_a_doc_comment_where_it_is_defined() -> None:
    """Otherwise the reference shows the docstring of its type (``int([x]) -> integer``)."""
    documented = documented_assignments()
    missing = []
    for package in PUBLIC_PACKAGES:
        exported = importlib.import_module(package)
        for name in exported.__all__:
            value = getattr(exported, name)
            if inspect.isclass(value) or inspect.isroutine(value) or inspect.ismodule(value):
                continue
            homes = [module for module, defined in documented if defined == name]
            if not any(getattr(importlib.import_module(m), name, None) is value for m in homes):
                missing.append(f"{package}.{name}")
    assert missing == []


# --- the built site -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation built from scratch, warnings as errors (as CI builds it); skipped
    without the ``docs`` extra."""
    for module in ("sphinx", "myst_parser", "furo", "sphinxcontrib.mermaid", "sphinxarg"):
        pytest.importorskip(module, reason="the docs extra is not installed")
    out = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    command += ["-d", str(out / "doctrees"), str(DOCS), str(out / "html")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    return out / "html"


def page_text(path: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))


BUILTIN_TYPES = (str, int, float, bytes, bool, tuple, list, dict, set, frozenset, type(int | str))


def test_no_reference_entry_shows_a_builtin_types_docstring(site: Path) -> None:
    openings = {t.__name__: (inspect.getdoc(t) or "").splitlines()[0] for t in BUILTIN_TYPES}
    assert openings["str"].startswith("str(object=")
    shown = [
        f"{page.name}: {name}"
        for page in sorted((site / "reference").glob("*.html"))
        for name, opening in openings.items()
        if opening in page_text(page)
    ]
    assert shown == []


@pytest.mark.parametrize("loop", ADAPTERS)
def test_the_session_entry_shows_the_session_api_only(site: Path, loop: str) -> None:
    page = (site / "reference" / f"{loop}.html").read_text(encoding="utf-8")
    prefix = f"polyai_messaging.{loop}.Session."
    shown = set(re.findall(rf'id="{re.escape(prefix)}(\w+)"', page))
    public = {name for name in vars(SessionRuntime) if not name.startswith("_")}
    read_by_guides = {"state", "last_resume", "error"}  # the Engine's that applications read
    assert shown == public | read_by_guides


@pytest.mark.parametrize("loop", ADAPTERS)
def test_the_reference_shows_what_open_session_returns(site: Path, loop: str) -> None:
    text = page_text(site / "reference" / f"{loop}.html")
    entry = text.split("open_session(base_url", 1)[1]
    assert "AbstractAsyncContextManager[Session]" in entry
    assert "_S_co" not in text
    assert "new_event makes the loop" not in text
