"""Helpers for testing an integration without a network.

- :func:`open_emulator` starts a local emulator of the Messaging API for an ``async with`` block,
  on the running event loop (trio or asyncio), and hands back a :class:`LocalEmulator`: its
  ``base_url``, a ``token_provider`` for its demo connector, fault control (``set_faults``) and
  its state (``journal(session_id)``, ``state``). Needs the ``emulator`` extra.
- pytest fixtures, available wherever the package is installed (the ``polyai_messaging``
  plugin): ``messaging_emulator`` (a :class:`LocalEmulator` for the test's loop, under
  pytest-trio, or anyio's plugin on the backend its ``anyio_backend`` fixture names: override
  that to return ``"asyncio"`` for asyncio-only tests), ``messaging_emulator_config``
  (override it to configure the emulator; ``EmulatorConfig.fast()`` by default) and
  ``messaging_token_provider``.
- :func:`run_script` runs a scripted conversation (JSON Lines) through the driver with a fake
  link and a virtual clock, and reports what the driver sent (:class:`ScriptResult`);
  :func:`is_script` tells a script from a plain frame log.

Importing this package imports neither an event loop, the emulator nor an HTTP client.
"""

from ._emulator import LocalEmulator, open_emulator
from ._scripted import ScriptResult, is_script, run_script

__all__ = ["LocalEmulator", "ScriptResult", "is_script", "open_emulator", "run_script"]
