"""pytest fixtures for tests of code that uses ``polyai_messaging`` (the ``polyai_messaging``
plugin, registered with pytest through a ``pytest11`` entry point).

- ``messaging_emulator``: a :class:`~polyai_messaging.testing.LocalEmulator` started for the
  test's event loop, trio (pytest-trio) or the backend the ``anyio_backend`` fixture names
  (anyio's pytest plugin, tests marked ``anyio``; its default is every installed backend, so an
  asyncio-only suite overrides it to return ``"asyncio"``), and stopped after the test;
- ``messaging_emulator_config``: the :class:`~polyai_messaging.emulator.EmulatorConfig` it
  starts with, ``EmulatorConfig.fast()``; override this fixture to change it;
- ``messaging_token_provider``: the emulator's token provider for its demo connector.

pytest imports this module in every run where the package is installed, with or without the
emulator extra, so it imports nothing heavy: the emulator and the HTTP client are imported when
a fixture starts an emulator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from ._emulator import LocalEmulator, open_emulator

if TYPE_CHECKING:
    from ..emulator import EmulatorConfig
    from ..runtime import TokenProvider

__all__ = ["messaging_emulator", "messaging_emulator_config", "messaging_token_provider"]


@pytest.fixture
def messaging_emulator_config() -> EmulatorConfig:
    """The configuration ``messaging_emulator`` starts with: ``EmulatorConfig.fast()``."""
    from ..emulator import EmulatorConfig  # noqa: PLC0415 - see the module docstring

    return EmulatorConfig.fast()


@pytest.fixture
async def messaging_emulator(
    messaging_emulator_config: EmulatorConfig,
) -> AsyncIterator[LocalEmulator]:
    """An emulator on a free loopback port for this test, on the test's event loop."""
    async with open_emulator(messaging_emulator_config) as emulator:
        yield emulator


@pytest.fixture
def messaging_token_provider(messaging_emulator: LocalEmulator) -> TokenProvider:
    """Mints access tokens for ``messaging_emulator``'s demo connector."""
    return messaging_emulator.token_provider
