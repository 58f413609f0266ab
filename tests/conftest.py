"""Test-suite configuration: which loop runs an async test.

An async test marked ``anyio`` runs on every backend its ``anyio_backend`` fixture names (the
adapter contract suite runs on trio and asyncio). Every other async test runs on trio
(pytest-trio), as if ``trio_mode`` were on.
"""

from __future__ import annotations

from inspect import iscoroutinefunction

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        function = getattr(item, "obj", None)
        hypothesis = getattr(function, "hypothesis", None)
        if hypothesis is not None:  # a @given test: its inner test is the coroutine function
            function = hypothesis.inner_test
        if not iscoroutinefunction(function):
            continue
        if item.get_closest_marker("anyio") is None and item.get_closest_marker("trio") is None:
            item.add_marker(pytest.mark.trio)
