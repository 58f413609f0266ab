"""Test-suite configuration: which loop runs an async test; hypothesis times nothing.

An async test marked ``anyio`` runs on every backend its ``anyio_backend`` fixture names (the
adapter contract suite runs on trio and asyncio). Every other async test runs on trio
(pytest-trio), as if ``trio_mode`` were on.

Hypothesis runs without its per-example deadline and its too-slow health check: both time the
test, and a machine running other work (CI's shared cores, suites side by side) stalls a process
for longer than the 200 ms deadline, which hypothesis then reports as a flaky failure.
"""

from __future__ import annotations

from inspect import iscoroutinefunction

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("untimed", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("untimed")


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
