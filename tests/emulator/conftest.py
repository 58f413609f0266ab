from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from polyai_messaging.emulator import EmulatorConfig

from .helpers import Harness, start


@pytest.fixture
def config() -> EmulatorConfig:
    """The emulator configuration; override this fixture in a module to change it."""
    return EmulatorConfig.fast()


@pytest.fixture
async def harness(config: EmulatorConfig) -> AsyncIterator[Harness]:
    async with start(config) as harness:
        yield harness
