"""The ``polyai-messaging`` command line.

Each subcommand lives in its own module, which exposes
``register(subparsers)``: it adds its parser(s) and sets ``func`` (``Namespace -> int``) as the
handler. To add a subcommand, write such a module and list it in :data:`SUBCOMMAND_MODULES`;
nothing else here changes. Modules are imported when the parser is built, so they should keep
heavy imports cheap or inside their handlers.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from importlib import metadata

__all__ = ["SUBCOMMAND_MODULES", "build_parser", "main"]

SUBCOMMAND_MODULES: tuple[str, ...] = (
    "polyai_messaging.cli._replay",  # replay
    "polyai_messaging.cli._live",  # demo, chat, emulator
)
"""Modules that each provide ``register(subparsers)``, in help order."""


def _version() -> str:
    try:
        return metadata.version("polyai-messaging")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The main parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="polyai-messaging",
        description="Client tools for the PolyAI Messaging API.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise  # the module exists but one of its own imports is missing: say so
            continue  # an optional subcommand that is not part of this installation
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "func", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        status: int = handler(args)
    except BrokenPipeError:
        # The reader went away (``| head``): silence the flush at exit, as a shell tool should.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
