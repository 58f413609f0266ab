"""``scripts/check_wheel.py``: what it finds wrong with a wheel (the CI step that installs the
real wheel runs the rest)."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent

GOOD_METADATA = """\
Metadata-Version: 2.4
Name: polyai-messaging
Version: 0.1.0
Project-URL: Documentation, https://example.org/docs/
Project-URL: Source, https://example.org/source
Project-URL: Changelog, https://example.org/source/CHANGELOG.md
License-Expression: MIT
Classifier: Framework :: AsyncIO
Classifier: Framework :: Trio
Classifier: Typing :: Typed
Description-Content-Type: text/markdown

# polyai-messaging
"""
GOOD_FILES = {
    "polyai_messaging/__init__.py": "",
    "polyai_messaging/py.typed": "",
    "polyai_messaging-0.1.0.dist-info/licenses/LICENSE": "MIT License",
}


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_wheel", ROOT / "scripts/check_wheel.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_wheel(path: Path, files: dict[str, str], metadata: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr("polyai_messaging-0.1.0.dist-info/METADATA", metadata)
    return path


def test_a_complete_wheel_has_no_problem(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "good.whl", GOOD_FILES, GOOD_METADATA)
    assert load_script().check_wheel_contents(wheel) == []


def test_every_packaging_mistake_is_named(tmp_path: Path) -> None:
    files = {
        name: text
        for name, text in GOOD_FILES.items()
        if not name.endswith(("py.typed", "LICENSE"))
    } | {"tests/test_x.py": ""}
    metadata = (
        GOOD_METADATA.replace("License-Expression: MIT\n", "")
        .replace("Classifier: Framework :: Trio\n", "")
        .replace("Description-Content-Type: text/markdown\n", "")
        .replace("Project-URL: Changelog, https://example.org/source/CHANGELOG.md\n", "")
    )
    wheel = make_wheel(tmp_path / "bad.whl", files, metadata)
    problems = load_script().check_wheel_contents(wheel)
    assert problems == [
        "the wheel lacks polyai_messaging/py.typed",
        "the wheel lacks the licence file",
        "the wheel holds tests, docs or benchmarks",
        "License-Expression is None",
        "the description is not declared as Markdown",
        "classifier 'Framework :: Trio' is missing",
        "no Changelog URL",
    ]


def test_the_quickstart_it_runs_is_the_readmes() -> None:
    quickstart = load_script().quickstart()
    assert "open_session" in quickstart
    assert "asyncio.run(main())" in quickstart
