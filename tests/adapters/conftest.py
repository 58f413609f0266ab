"""The adapter contract: every test here runs once per event loop, against the emulator (or a
raw test server) on real loopback sockets in the test's own loop. A test's id names its loop
(``[trio]``, ``[asyncio]``), so a failure says which adapter broke the contract."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from polyai_messaging.emulator import EmulatorConfig
from polyai_messaging.testing import LocalEmulator, open_emulator

from .helpers import ADAPTERS, Adapter


@pytest.fixture(params=sorted(ADAPTERS))
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """The loop a test runs on (anyio's plugin runs tests marked ``anyio`` on it)."""
    backend: str = request.param
    return backend


@pytest.fixture
def adapter(anyio_backend: str) -> Adapter:
    """The adapter of the test's loop."""
    return ADAPTERS[anyio_backend]


@pytest.fixture
async def emulator() -> AsyncIterator[LocalEmulator]:
    """The emulator (``EmulatorConfig.fast()``) on the test's loop; tests that need another
    configuration start their own with ``open_emulator``."""
    async with open_emulator(EmulatorConfig.fast()) as running:
        yield running
