"""The live subcommands of ``polyai-messaging``: ``demo``, ``chat`` and ``emulator``, on asyncio.

:func:`register` adds them to the main parser's subparsers; each sets ``func`` to a handler that
takes the parsed :class:`argparse.Namespace` and returns the exit status (or raises one of the
errors :func:`polyai_messaging.cli.main` turns into a status; see ``_status``).

- ``demo``: start the emulator in-process on a free loopback port and chat with its agent.
- ``chat``: chat with a real deployment; the connector token comes from the environment
  variable ``POLYAI_CONNECTOR_TOKEN`` (never from a flag, which would leak into shell history).
  ``--session-id`` resumes a conversation.
- ``emulator``: serve the emulator until Ctrl-C; the first line of stdout is a JSON object
  saying where it listens (``--port 0`` picks a free port).

In a terminal, ``demo`` and ``chat`` are a line editor under the conversation (``_prompt``).
With ``--script FILE``, or when stdin is not a terminal (``--script -``), they send the lines
one reply at a time and print the transcript. ``--log-level debug`` logs every frame (tokens
redacted) to stderr.

This module builds the parsers; the handlers are in ``_chat_commands`` (``demo``, ``chat``)
and ``_emulator_command``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ._chat_commands import run_chat_command, run_demo_command
from ._emulator_command import run_emulator_command
from ._failures import CONNECTOR_TOKEN_ENV
from ._status import EXIT_STATUS_HELP

if TYPE_CHECKING:
    from ..emulator import Faults

    _Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

# The loop, httpx, the emulator (hypercorn), prompt_toolkit and the chat are imported by the
# handlers only, so that building the parser (for any subcommand, or --help) stays cheap.

__all__ = ["PLATFORMS", "fault_help", "register"]

PLATFORMS: Final = ("android", "android-web", "custom", "ios", "ios-web", "web")
"""The ``--platform`` values (those of :data:`polyai_messaging.rest.PLATFORMS`)."""

_LOG_LEVELS: Final = ("debug", "info", "warning", "error")


def register(subparsers: _Subparsers) -> None:
    """Add the ``demo``, ``chat`` and ``emulator`` subcommands (each sets ``func``)."""
    _add_demo(subparsers)
    _add_chat(subparsers)
    _add_emulator(subparsers)


def _add_demo(subparsers: _Subparsers) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="chat with the local emulator (started in-process)",
        description="Start the emulator on a free loopback port and chat with its agent.",
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    _add_help_with_faults(demo)
    _add_streaming(demo)
    _add_emulator_behaviour(demo)
    _add_chat_options(demo)
    demo.set_defaults(func=run_demo_command)


def _add_chat(subparsers: _Subparsers) -> None:
    chat = subparsers.add_parser(
        "chat",
        help="chat with a deployment (connector token from $" + CONNECTOR_TOKEN_ENV + ")",
        description=(
            "Chat with a Messaging API deployment. The connector token is read from the\n"
            f"environment variable {CONNECTOR_TOKEN_ENV}."
        ),
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    chat.add_argument("--base-url", required=True, help="e.g. https://messaging.us-1.poly.ai")
    chat.add_argument("--host", required=True, help="the host identifier registered (X-Host)")
    chat.add_argument("--session-id", metavar="ID", help="resume this conversation")
    _add_streaming(chat)
    chat.add_argument("--platform", default="custom", choices=PLATFORMS, help="default: custom")
    chat.add_argument("--ca-file", type=Path, help="extra CA certificate to trust (PEM)")
    _add_chat_options(chat)
    chat.set_defaults(func=run_chat_command)


def _add_emulator(subparsers: _Subparsers) -> None:
    emulator = subparsers.add_parser(
        "emulator",
        help="run the local emulator until Ctrl-C",
        description=(
            "Serve the Messaging API emulator on a loopback address until Ctrl-C. The first\n"
            "line of stdout is a JSON object: base_url, ws_url, connector_token, host, tls,\n"
            "ca_file."
        ),
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    _add_help_with_faults(emulator)
    emulator.add_argument("--port", type=int, help="default: 8765 (0 picks a free port)")
    emulator.add_argument(
        "--bind", default="127.0.0.1", metavar="ADDRESS", help="a loopback address to listen on"
    )
    emulator.add_argument("--tls", action="store_true", help="serve https/wss (trustme CA)")
    emulator.add_argument("--ca-file", type=Path, help="with --tls: where to write the CA (PEM)")
    _add_emulator_behaviour(emulator)
    emulator.add_argument(
        "--heartbeat-interval",
        type=int,
        metavar="SECONDS",
        help="advertised in SESSION_START (default: 30)",
    )
    emulator.add_argument(
        "--idle-timeout",
        type=float,
        metavar="SECONDS",
        help="end sessions without client frames for this long (default: 600)",
    )
    _add_log_level(emulator)
    emulator.set_defaults(func=run_emulator_command)


def _add_streaming(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--streaming",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ask for replies streamed as they are written (default: on)",
    )


def _add_emulator_behaviour(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--faults",
        type=_faults,
        metavar="SPEC",
        help="faults to inject, comma-separated (listed below)",
    )
    parser.add_argument("--fast", action="store_true", help="no scripted delays in the agent")


def _add_chat_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--script",
        metavar="FILE",
        help=(
            "send the file's lines (one per reply, '/end' leaves) and print the transcript;"
            " '-' reads stdin, the default when stdin or stdout is not a terminal"
        ),
    )
    parser.add_argument(
        "--reply-timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="with a script: longest wait for each reply (default: %(default)s)",
    )
    _add_log_level(parser)


def _add_log_level(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a global --log-level of the main parser, if any, is not overwritten.
    parser.add_argument(
        "--log-level",
        choices=_LOG_LEVELS,
        default=argparse.SUPPRESS,
        help="log to stderr at this level (debug: every frame, tokens redacted)",
    )


class _HelpWithFaults(argparse.Action):
    """``-h/--help`` that also lists the fault specs. The list is read from the emulator only
    when the help is asked for, so that building the parser imports no server."""

    def __init__(self, option_strings: Sequence[str], dest: str, **_: Any) -> None:
        super().__init__(
            option_strings,
            dest,
            nargs=0,
            default=argparse.SUPPRESS,
            help="show this help message and exit",
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        parser.print_help()
        print("\n" + fault_help())
        parser.exit()


def _add_help_with_faults(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-h", "--help", action=_HelpWithFaults)


def fault_help() -> str:
    """The fault specs ``--faults`` takes, one per line."""
    from ..emulator import FAULT_HELP  # noqa: PLC0415 - see the note on imports

    width = max(map(len, FAULT_HELP))
    lines = [f"  {spec:<{width}}  {meaning}" for spec, meaning in FAULT_HELP.items()]
    return "\n".join(["faults (--faults SPEC,SPEC...):", *lines])


def _faults(spec: str) -> Faults:
    from ..emulator import parse_faults  # noqa: PLC0415 - see the note on imports

    try:
        return parse_faults(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return seconds
