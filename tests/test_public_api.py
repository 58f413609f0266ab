"""The public API is explicit and documented: every exported class and function of every
package has a docstring, and every name a package exports exists."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from importlib import metadata

import pytest

PACKAGES = [
    "polyai_messaging",
    "polyai_messaging.core",
    "polyai_messaging.driver",
    "polyai_messaging.runtime",
    "polyai_messaging.rest",
    "polyai_messaging.trio",
    "polyai_messaging.asyncio",
    "polyai_messaging.testing",
    "polyai_messaging.cli",
    "polyai_messaging.emulator",
]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_class_and_function_has_a_docstring(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__doc__, package
    undocumented = [
        name
        for name in module.__all__
        if (inspect.isclass(obj := getattr(module, name)) or inspect.isfunction(obj))
        and not (obj.__doc__ or "").strip()
    ]
    assert undocumented == []


def test_the_version_is_exported() -> None:
    import polyai_messaging

    assert polyai_messaging.__version__ == metadata.version("polyai-messaging")


def test_importing_the_library_configures_no_logger() -> None:
    """The application decides where records go: importing every package adds no handler or
    filter to any logger, and sets no level (checked in a fresh interpreter)."""
    code = f"""
import logging
before = {{name: (list(l.handlers), list(l.filters), l.level)
          for name, l in logging.root.manager.loggerDict.items() if isinstance(l, logging.Logger)}}
root = (list(logging.root.handlers), list(logging.root.filters), logging.root.level)
import importlib
for package in {PACKAGES!r}:
    importlib.import_module(package)
changed = []
for name, logger in logging.root.manager.loggerDict.items():
    if not isinstance(logger, logging.Logger) or name.startswith("transitions"):
        continue  # transitions adds a NullHandler to its own logger, as libraries should
    if (logger.handlers or logger.filters or logger.level) and before.get(name) != (
        list(logger.handlers), list(logger.filters), logger.level
    ):
        changed.append(name)
assert (list(logging.root.handlers), list(logging.root.filters), logging.root.level) == root
print(changed)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout
