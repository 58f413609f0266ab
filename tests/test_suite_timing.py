"""The suite does not depend on the machine's speed: hypothesis times no example.

A run beside other work (CI's shared cores, suites side by side) can stall the process for
longer than hypothesis's default 200 ms deadline, which then fails a correct test as flaky.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def test_no_example_has_a_deadline_and_slow_generation_is_no_failure() -> None:
    default = settings.default
    assert default is not None
    assert default.deadline is None
    assert HealthCheck.too_slow in default.suppress_health_check


def test_settings_a_test_chooses_keep_that() -> None:
    chosen = settings(max_examples=3)  # as ``@settings(max_examples=...)`` over a test builds it
    assert chosen.deadline is None
    assert HealthCheck.too_slow in chosen.suppress_health_check
