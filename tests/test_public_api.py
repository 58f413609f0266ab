"""The public API is explicit and documented: every exported class and function of every
package has a docstring, and every name a package exports exists."""

from __future__ import annotations

import importlib
import inspect
from importlib import metadata

import pytest

PACKAGES = [
    "polyai_messaging",
    "polyai_messaging.core",
    "polyai_messaging.driver",
    "polyai_messaging.runtime",
    "polyai_messaging.rest",
    "polyai_messaging.trio",
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
