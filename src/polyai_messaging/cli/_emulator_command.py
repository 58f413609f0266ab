"""``polyai-messaging emulator``: serve the emulator until Ctrl-C, and say where it listens.

:func:`emulator_config` (the ``--fast``/``--faults`` options) and :func:`trigger_help` serve
``demo`` too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ._log_output import configure_logging
from ._status import ExitStatus, UsageError

if TYPE_CHECKING:
    from ..emulator import EmulatorConfig, RunningEmulator

# The loop, httpx, the emulator (hypercorn), prompt_toolkit and the chat are imported by the
# handlers only, so that building the parser (for any subcommand, or --help) stays cheap.

__all__ = ["emulator_config", "run_emulator_command", "trigger_help"]


def run_emulator_command(args: argparse.Namespace) -> int:
    """``polyai-messaging emulator``."""
    configure_logging(args)
    # It serves until Ctrl-C, which ends asyncio.run with KeyboardInterrupt, or (with
    # hypercorn releases that absorb the cancellation) by returning: either way, interrupted.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_emulator(args))
    print("\nEmulator stopped.", file=sys.stderr)
    return ExitStatus.INTERRUPTED


def trigger_help() -> str:
    """One line listing the emulator's trigger words."""
    from ..emulator import TRIGGERS  # noqa: PLC0415 - see the note on imports

    words = [word for word in TRIGGERS if not word.startswith("error:")]
    return "Trigger words: " + ", ".join(words) + ", error:<name>."


def emulator_config(args: argparse.Namespace, **timings: float | None) -> EmulatorConfig:
    """The emulator's settings from ``--fast`` and ``--faults``, with ``timings`` that are set."""
    from ..emulator import EmulatorConfig  # noqa: PLC0415 - see the note on imports

    config = EmulatorConfig.fast() if args.fast else EmulatorConfig()
    changes: dict[str, object] = {
        name: value for name, value in timings.items() if value is not None
    }
    if args.faults is not None:
        changes["faults"] = args.faults
    try:
        return config.replace(**changes)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


async def _emulator(args: argparse.Namespace) -> None:
    import anyio  # noqa: PLC0415 - see the note on imports

    from ..emulator import DEFAULT_PORT, run_emulator  # noqa: PLC0415

    config = emulator_config(
        args, heartbeat_interval_seconds=args.heartbeat_interval,
        idle_timeout_seconds=args.idle_timeout,
    )  # fmt: skip
    port = DEFAULT_PORT if args.port is None else args.port
    async with contextlib.AsyncExitStack() as stack:
        try:
            emulator = await stack.enter_async_context(
                run_emulator(config, host=args.bind, port=port, tls=args.tls)
            )
        except ValueError as exc:  # the address or the port
            raise UsageError(str(exc)) from None
        _announce(emulator, args.ca_file)
        await anyio.sleep_forever()


def _announce(emulator: RunningEmulator, ca_file: Path | None) -> None:
    """Print where the emulator listens: one JSON line first, for programs that started it (with
    ``--port 0``) and need to find it, then the same for people."""
    from ..emulator import DEMO_CONNECTOR_TOKEN, DEMO_HOST  # noqa: PLC0415

    if emulator.ca is not None:
        ca_file = ca_file or Path(tempfile.gettempdir()) / "polyai-emulator-ca.pem"
        emulator.ca.cert_pem.write_to_path(str(ca_file))
    else:
        ca_file = None
    announcement = {
        "base_url": emulator.base_url,
        "ws_url": emulator.ws_url,
        "connector_token": DEMO_CONNECTOR_TOKEN,
        "host": DEMO_HOST,
        "tls": emulator.tls,
        "ca_file": None if ca_file is None else str(ca_file),
    }
    print(json.dumps(announcement), flush=True)
    print(f"Emulator listening on {emulator.base_url} (WebSocket {emulator.ws_url})")
    print(f"Demo connector token: {DEMO_CONNECTOR_TOKEN}  host: {DEMO_HOST}")
    if ca_file is not None:
        print(f"CA certificate: {ca_file}")
    if emulator.config.faults.active:
        print(f"Faults: {emulator.config.faults.to_spec()}")
    print(trigger_help())
    print("Press Ctrl-C to stop.", flush=True)
