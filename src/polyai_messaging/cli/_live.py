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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import ssl
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ._failures import CONNECTOR_TOKEN_ENV, reporting_retry
from ._status import EXIT_STATUS_HELP, ExitStatus, UsageError

if TYPE_CHECKING:
    import httpx

    from ..emulator import EmulatorConfig, Faults, RunningEmulator
    from ..rest import AccessToken
    from ..runtime import TokenProvider

# The loop, httpx, the emulator (hypercorn), prompt_toolkit and the chat are imported by the
# handlers only, so that building the parser (for any subcommand, or --help) stays cheap.

__all__ = [
    "CONNECTOR_TOKEN_ENV",
    "PLATFORMS",
    "register",
    "run_chat_command",
    "run_demo_command",
    "run_emulator_command",
    "trigger_help",
]

PLATFORMS: Final = ("android", "android-web", "custom", "ios", "ios-web", "web")
"""The ``--platform`` values (those of :data:`polyai_messaging.rest.PLATFORMS`)."""

_LOG_LEVELS: Final = ("debug", "info", "warning", "error")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo``, ``chat`` and ``emulator`` subcommands (each sets ``func``)."""
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


def trigger_help() -> str:
    """One line listing the emulator's trigger words."""
    from ..emulator import TRIGGERS  # noqa: PLC0415 - see the note on imports

    words = [word for word in TRIGGERS if not word.startswith("error:")]
    return "Trigger words: " + ", ".join(words) + ", error:<name>."


# --- command handlers -------------------------------------------------------------------------


def run_demo_command(args: argparse.Namespace) -> int:
    """``polyai-messaging demo``."""
    _configure_logging(args)
    return asyncio.run(_demo(args))


def run_chat_command(args: argparse.Namespace) -> int:
    """``polyai-messaging chat``."""
    _configure_logging(args)
    return asyncio.run(_chat(args))


def run_emulator_command(args: argparse.Namespace) -> int:
    """``polyai-messaging emulator``."""
    _configure_logging(args)
    # It serves until Ctrl-C, which ends asyncio.run with KeyboardInterrupt, or (with
    # hypercorn releases that absorb the cancellation) by returning: either way, interrupted.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_emulator(args))
    print("\nEmulator stopped.", file=sys.stderr)
    return ExitStatus.INTERRUPTED


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time: above the prompt while the terminal
    chat runs (it patches stderr), instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record`` to the current stderr."""
        self.stream = sys.stderr  # emit runs under the handler's lock
        super().emit(record)


def _configure_logging(args: argparse.Namespace) -> None:
    level = getattr(args, "log_level", None)
    if level is None:
        return
    # The library's own records only: a dependency's debug output (HTTP, the server) is noise
    # here, and ours already says what happened on the wire. Stderr redirected away from the
    # terminal keeps every record.
    handler = _CurrentStderr() if sys.stderr.isatty() else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    library = logging.getLogger("polyai_messaging")
    library.addHandler(handler)
    library.setLevel(level.upper())


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _token_provider(
    base_url: str, connector_token: str, host: str, http: httpx.AsyncClient
) -> TokenProvider:
    """Mints access tokens with the connector token, saying so while a call is retried."""
    from ..rest import mint_access_token  # noqa: PLC0415 - see the note on imports

    retry = reporting_retry(_progress)

    async def provide() -> AccessToken:
        return await mint_access_token(base_url, connector_token, host, client=http, retry=retry)

    return provide


def _script(args: argparse.Namespace) -> Iterable[str] | None:
    """The lines to send, or ``None`` for the terminal chat (stdin and stdout are terminals)."""
    stdin = sys.stdin
    if args.script is None and stdin is not None and stdin.isatty() and sys.stdout.isatty():
        return None
    if args.script in (None, "-"):
        return stdin if stdin is not None else ()
    try:
        return Path(args.script).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UsageError(f"cannot read --script {args.script}: {reason or exc}") from None


async def _converse(
    args: argparse.Namespace,
    base_url: str,
    provider: TokenProvider,
    *,
    platform: str = "custom",
    session_id: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    http: httpx.AsyncClient | None = None,
    banner: Sequence[str] = (),
    resumable: bool = False,
) -> int:
    from ..asyncio import open_session  # noqa: PLC0415 - see the note on imports
    from ..driver import FinishKind, SessionConfig  # noqa: PLC0415
    from ._chat import LineReader, PlainOutput, run_script  # noqa: PLC0415
    from ._safe import terminal_safe  # noqa: PLC0415

    script = _script(args)  # a usage error shows before any connection
    async with open_session(
        base_url,
        provider,
        session_id=session_id,
        streaming=args.streaming,
        platform=platform,
        user_agent="polyai-messaging-cli",
        ssl_context=ssl_context,
        http_client=http,
        config=SessionConfig(replay_quiet_seconds=0.2),
        retry=reporting_retry(_progress),  # creating the session (and any replacement)
    ) as session:
        if script is not None:
            if resumable:  # stdout is the transcript: the id goes with the diagnostics
                sid = terminal_safe(session.session_id, multiline=False)
                print(f"Session {sid} (resume it with --session-id {sid}).", file=sys.stderr)
            output = PlainOutput(sys.stdout)
            lines = LineReader(script)
            finished = await run_script(session, output, lines, reply_timeout=args.reply_timeout)
        else:
            from ._prompt import run_interactive  # noqa: PLC0415 - see the note on imports

            if resumable:
                sid = terminal_safe(session.session_id, multiline=False)
                banner = [*banner, f"Session {sid} (resume it with --session-id {sid})."]
            finished = await run_interactive(session, banner=banner)
    # A conversation left open (script without /end) or ended normally is a success.
    if finished is None or finished.kind is FinishKind.ENDED:
        return ExitStatus.OK
    return ExitStatus.FAILED


def _emulator_config(args: argparse.Namespace, **timings: float | None) -> EmulatorConfig:
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


async def _demo(args: argparse.Namespace) -> int:
    from ..emulator import DEMO_CONNECTOR_TOKEN, DEMO_HOST, run_emulator  # noqa: PLC0415
    from ..rest import http_client  # noqa: PLC0415
    from ._chat import HELP_TEXT  # noqa: PLC0415 - see the note on imports

    async with run_emulator(_emulator_config(args)) as emulator, http_client(None, None) as http:
        provider = _token_provider(emulator.base_url, DEMO_CONNECTOR_TOKEN, DEMO_HOST, http)
        mode = "streaming" if args.streaming else "whole messages"
        banner = (
            f"PolyAI Messaging demo: emulator at {emulator.base_url} ({mode}).",
            trigger_help(),
            HELP_TEXT,
        )
        return await _converse(args, emulator.base_url, provider, http=http, banner=banner)


async def _chat(args: argparse.Namespace) -> int:
    from ..core import LocalProtocolError  # noqa: PLC0415 - see the note on imports
    from ..driver import check_transport_security  # noqa: PLC0415
    from ..rest import http_client  # noqa: PLC0415
    from ._chat import HELP_TEXT  # noqa: PLC0415

    connector_token = os.environ.get(CONNECTOR_TOKEN_ENV, "").strip()
    if not connector_token:
        raise UsageError(f"set the connector token in ${CONNECTOR_TOKEN_ENV}")
    if not args.base_url.startswith(("https://", "http://")):
        raise UsageError(
            "--base-url is the REST base URL (https://..., or http:// on loopback); the WebSocket"
            " URL is derived from it"
        )
    try:
        check_transport_security(args.base_url)
    except LocalProtocolError as exc:
        raise UsageError(f"--base-url: {exc}") from None
    context = _ssl_context(args.ca_file)
    async with http_client(None, context) as http:
        provider = _token_provider(args.base_url, connector_token, args.host, http)
        return await _converse(
            args,
            args.base_url,
            provider,
            platform=args.platform,
            session_id=args.session_id,
            ssl_context=context,
            http=http,
            banner=(f"Connected to {args.base_url}.", HELP_TEXT),
            resumable=True,
        )


def _ssl_context(ca_file: Path | None) -> ssl.SSLContext | None:
    if ca_file is None:
        return None
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot use --ca-file {ca_file}: {exc.strerror or exc}") from None


async def _emulator(args: argparse.Namespace) -> None:
    import anyio  # noqa: PLC0415 - see the note on imports

    from ..emulator import DEFAULT_PORT, run_emulator  # noqa: PLC0415

    config = _emulator_config(
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
