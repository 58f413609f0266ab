"""The ``polyai-messaging`` command line.

Each subcommand lives in its own module, which exposes
``register(subparsers)``: it adds its parser(s) and sets ``func`` (``Namespace -> int``) as the
handler. To add a subcommand, write such a module and list it in :data:`SUBCOMMAND_MODULES`;
nothing else here changes. Modules are imported when the parser is built, so they should keep
heavy imports cheap or inside their handlers. A handler returns an exit status or raises, and
:func:`main` turns what it raised into one (see ``_status``).
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Final, TypeVar

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

from ..core import MessagingError
from ._status import EXIT_STATUS_HELP, ExitStatus, Interrupted, UsageError

__all__ = ["SUBCOMMAND_MODULES", "ExitStatus", "UsageError", "build_parser", "main"]

_T = TypeVar("_T")

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


class _Parser(argparse.ArgumentParser):
    """A parser whose help lets a closed stdout be seen (argparse swallows the error), so
    that ``--help | head -1`` ends as quietly as any other command into a closed pipe."""

    def print_help(self, file: SupportsWrite[str] | None = None) -> None:
        if file is not None:
            super().print_help(file)
            return
        sys.stdout.write(self.format_help())
        sys.stdout.flush()


def build_parser() -> argparse.ArgumentParser:
    """The main parser with every available subcommand registered."""
    parser = _Parser(
        prog="polyai-messaging",
        description="Client tools for the PolyAI Messaging API.",
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise  # the module exists but one of its own imports is missing: say so
            continue  # an optional subcommand that is not part of this installation
        module.register(subparsers)
    for command in subparsers.choices.values():
        # So that an option a command does not know is reported with that command's usage.
        command.set_defaults(command_parser=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see :class:`ExitStatus`).

    Whatever a command raises ends as a status and one line on stderr, never a traceback: a
    usage error (2), Ctrl-C (130), a closed stdout (141, silently), a failure of the
    conversation or the network (1, with its cause and what to do).
    """
    for stream in (sys.stdout, sys.stderr):
        # A terminal or pipe that cannot show a character ("…" in ASCII) gets a "?", not a crash.
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)  # --help prints here
        if unknown:
            command_parser = getattr(args, "command_parser", parser)
            command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    except BrokenPipeError:
        return _pipe_closed()
    handler = getattr(args, "func", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return ExitStatus.USAGE
    try:
        return int(_unwrapped(handler, args))
    except UsageError as exc:
        _say(f"{parser.prog} {args.command}: {exc}")
        return ExitStatus.USAGE
    except (KeyboardInterrupt, Interrupted):
        _say("\nInterrupted.")
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        return _pipe_closed()
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        _say(f"{parser.prog}: this command needs pip install 'polyai-messaging[{extra}]'")
        return ExitStatus.FAILED
    except (MessagingError, OSError) as exc:
        from ._failures import describe  # noqa: PLC0415 - only when something failed

        _say(f"{parser.prog}: {describe(exc)}")
        return ExitStatus.FAILED


_EXTRAS: Final = {
    "websockets": "cli",
    "hypercorn": "cli",
    "trustme": "cli",
    "prompt_toolkit": "cli",
}
"""The modules of the optional extras, and the extra each comes with."""


def _pipe_closed() -> ExitStatus:
    # The reader went away (``| head``): silence the flush at exit, as a shell tool should.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return ExitStatus.PIPE_CLOSED


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _unwrapped(function: Callable[..., _T], *args: object) -> _T:
    """Call ``function``; an exception group holding one exception (or a Ctrl-C among
    cancellations) is raised as that exception, so that :func:`main` sees what happened."""
    try:
        return function(*args)
    except BaseExceptionGroup as group:
        if group.subgroup(KeyboardInterrupt) is not None:
            raise KeyboardInterrupt from None
        leaves = list(_leaves(group))
        if len(leaves) == 1:
            # Keep the leaf's own cause (``from None`` would erase it: a TokenUnavailableError
            # says why there is no token only through its cause).
            raise leaves[0] from leaves[0].__cause__
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
