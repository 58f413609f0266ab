"""The layers stay what the folder list says they are.

The core and the driver perform no I/O and read no clock: no module under them imports an
event loop, a socket, an HTTP client, a server, a clock or threads. The core does not import the
driver. ``import polyai_messaging`` imports no I/O library.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import polyai_messaging

PACKAGE = Path(polyai_messaging.__file__).parent
IO = {
    "anyio", "asyncio", "hypercorn", "httpx", "socket", "ssl", "threading", "time", "trio",
    "trio_websocket", "websockets",
}  # fmt: skip


def imports(path: Path) -> set[tuple[int, str]]:
    """(level, module) of every import in a file (module as written, first component)."""
    found: set[tuple[int, str]] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update((0, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add((node.level, (node.module or "").split(".")[0]))
    return found


@pytest.mark.parametrize("layer", ["core", "driver", "runtime"])
def test_the_pure_layers_import_no_io(layer: str) -> None:
    files = sorted((PACKAGE / layer).glob("*.py"))
    assert files
    for path in files:
        absolute = {module for level, module in imports(path) if level == 0}
        assert not absolute & IO, (path.name, absolute & IO)


def test_the_core_does_not_import_the_driver() -> None:
    for path in (PACKAGE / "core").glob("*.py"):
        relative = {module for level, module in imports(path) if level == 2}
        assert relative <= set(), (path.name, relative)


def test_importing_the_package_imports_no_io_library() -> None:
    code = (
        "import sys, polyai_messaging, polyai_messaging.core, polyai_messaging.driver;"
        f"print(sorted(m for m in {sorted(IO - {'socket', 'ssl', 'threading', 'time'})!r}"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
