from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from polyai_messaging.emulator import EmulatorConfig

from .helpers import Harness, start


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """The emulator serves whichever event loop runs it: tests marked ``anyio`` run on both."""
    backend: str = request.param
    return backend


@pytest.fixture
def config() -> EmulatorConfig:
    """The emulator configuration; override this fixture in a module to change it."""
    return EmulatorConfig.fast()


@pytest.fixture
async def harness(config: EmulatorConfig) -> AsyncIterator[Harness]:
    async with start(config) as harness:
        yield harness
