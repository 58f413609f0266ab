"""The live subcommands of ``polyai-messaging``: ``demo``, ``chat`` and ``emulator``.

:func:`register` adds them to the main parser's subparsers; each sets ``func`` to a handler that
takes the parsed :class:`argparse.Namespace` and returns the exit status.

- ``demo``: start the emulator in-process on a free loopback port and chat with its agent.
- ``chat``: chat with a real deployment; the connector token comes from the environment
  variable ``POLYAI_CONNECTOR_TOKEN`` (never from a flag, which would leak into shell history).
- ``emulator``: serve the emulator until Ctrl-C; the first line of stdout is a JSON object
  saying where it listens (``--port 0`` picks a free port).

``--script FILE`` (``demo``, ``chat``) sends the file's lines one reply at a time and prints the
transcript, without a terminal. ``--log-level debug`` logs every frame (tokens redacted) to
stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import ssl
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO, TypeVar

from ..core import MessagingError

if TYPE_CHECKING:
    import httpx

    from ..emulator import EmulatorConfig, RunningEmulator
    from ..runtime import TokenProvider
    from ._chat import Terminal

# trio, httpx, the emulator (hypercorn) and the chat are imported by the handlers only, so that
# building the parser (for any subcommand, or --help) stays cheap.

__all__ = [
    "CONNECTOR_TOKEN_ENV",
    "PLATFORMS",
    "register",
    "run_chat_command",
    "run_demo_command",
    "run_emulator_command",
    "trigger_help",
]

CONNECTOR_TOKEN_ENV: Final = "POLYAI_CONNECTOR_TOKEN"  # noqa: S105 (a variable name)
"""The environment variable ``chat`` reads the connector token from."""

PLATFORMS: Final = ("android", "android-web", "custom", "ios", "ios-web", "web")
"""The ``--platform`` values (those of :data:`polyai_messaging.rest.PLATFORMS`)."""

_LOG_LEVELS: Final = ("debug", "info", "warning", "error")
_T = TypeVar("_T")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo``, ``chat`` and ``emulator`` subcommands (each sets ``func``)."""
    demo = subparsers.add_parser(
        "demo",
        help="chat with the local emulator (started in-process)",
        description="Start the emulator on a free loopback port and chat with its agent.",
    )
    demo.add_argument(
        "--no-streaming",
        dest="streaming",
        action="store_false",
        help="ask for whole messages instead of streamed chunks",
    )
    demo.add_argument("--fast", action="store_true", help="no scripted delays in the agent")
    demo.add_argument("--faults", default="", metavar="SPEC", help="emulator faults to inject")
    _add_chat_options(demo)
    demo.set_defaults(func=run_demo_command)

    chat = subparsers.add_parser(
        "chat",
        help="chat with a deployment (connector token from $" + CONNECTOR_TOKEN_ENV + ")",
        description=(
            f"Chat with a Messaging API deployment. The connector token is read from the "
            f"environment variable {CONNECTOR_TOKEN_ENV}."
        ),
    )
    chat.add_argument("--base-url", required=True, help="e.g. https://messaging.us-1.poly.ai")
    chat.add_argument("--host", required=True, help="the host identifier registered (X-Host)")
    chat.add_argument("--streaming", action="store_true", help="ask for streamed replies")
    chat.add_argument("--platform", default="custom", choices=PLATFORMS, help="default: custom")
    chat.add_argument("--ca-file", type=Path, help="extra CA certificate to trust (PEM)")
    _add_chat_options(chat)
    chat.set_defaults(func=run_chat_command)

    emulator = subparsers.add_parser(
        "emulator",
        help="run the local emulator until Ctrl-C",
        description=(
            "Serve the Messaging API emulator on a loopback address until Ctrl-C. The first line"
            " of stdout is a JSON object: base_url, ws_url, connector_token, host, tls, ca_file."
        ),
    )
    emulator.add_argument("--port", type=int, help="default: 8765 (0 picks a free port)")
    emulator.add_argument("--host", default="127.0.0.1", help="a loopback address")
    emulator.add_argument("--tls", action="store_true", help="serve https/wss (trustme CA)")
    emulator.add_argument("--ca-file", type=Path, help="with --tls: where to write the CA (PEM)")
    emulator.add_argument("--faults", default="", metavar="SPEC", help="e.g. drop-after=5:1")
    emulator.add_argument("--fast", action="store_true", help="no scripted delays in the agent")
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


def _add_chat_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--script",
        type=Path,
        metavar="FILE",
        help="send the file's lines (one per reply, '/end' leaves) and print the transcript",
    )
    parser.add_argument(
        "--reply-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="with --script: longest wait for each reply (default: %(default)s)",
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


def trigger_help() -> str:
    """One line listing the emulator's trigger words."""
    from ..emulator import TRIGGERS  # noqa: PLC0415 - see the note on imports

    words = [word for word in TRIGGERS if not word.startswith("error:")]
    return "Trigger words: " + ", ".join(words) + ", error:<name>."


# --- command handlers -------------------------------------------------------------------------


def run_demo_command(args: argparse.Namespace) -> int:
    """``polyai-messaging demo``."""
    return _run(_demo, args)


def run_chat_command(args: argparse.Namespace) -> int:
    """``polyai-messaging chat``."""
    return _run(_chat, args)


def run_emulator_command(args: argparse.Namespace) -> int:
    """``polyai-messaging emulator``."""
    import trio  # noqa: PLC0415 - see the note on imports

    _configure_logging(args)
    try:
        _unwrapped(trio.run, _emulator, args)
    except KeyboardInterrupt:
        print("\nEmulator stopped.", file=sys.stderr)
    except (ValueError, OSError) as exc:
        print(f"polyai-messaging emulator: {exc}", file=sys.stderr)
        return 2
    return 0


def _run(main: Callable[[argparse.Namespace], Awaitable[int]], args: argparse.Namespace) -> int:
    import trio  # noqa: PLC0415 - see the note on imports

    _configure_logging(args)
    try:
        result: int = _unwrapped(trio.run, main, args)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    except (MessagingError, OSError, ValueError) as exc:
        print(f"polyai-messaging: {exc}", file=sys.stderr)
        return 1
    return result


def _unwrapped(function: Callable[..., _T], *args: object) -> _T:
    """Call ``function``; an exception group holding one exception (or a Ctrl-C among
    cancellations) is raised as that exception, so the handlers above see what happened."""
    try:
        return function(*args)
    except BaseExceptionGroup as group:
        if group.subgroup(KeyboardInterrupt) is not None:
            raise KeyboardInterrupt from None
        leaves = list(_leaves(group))
        if len(leaves) == 1:
            raise leaves[0] from None
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def _configure_logging(args: argparse.Namespace) -> None:
    level = getattr(args, "log_level", None)
    if level is None:
        return
    # The library's own records only: a dependency's debug output (HTTP, the server) is noise
    # here, and ours already says what happened on the wire.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    library = logging.getLogger("polyai_messaging")
    library.addHandler(handler)
    library.setLevel(level.upper())


def _script_lines(path: Path | None) -> list[str] | None:
    if path is None:
        return None
    text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    return text.splitlines()


def _terminal(out: TextIO, script: list[str] | None) -> Terminal:
    from ._chat import Terminal  # noqa: PLC0415 - see the note on imports

    interactive = script is None and out.isatty()
    return Terminal(out, interactive=interactive, width=lambda: shutil.get_terminal_size().columns)


async def _converse(
    args: argparse.Namespace,
    base_url: str,
    provider: TokenProvider,
    *,
    streaming: bool,
    platform: str = "custom",
    ssl_context: ssl.SSLContext | None = None,
    http: httpx.AsyncClient | None = None,
    banner: tuple[str, ...] = (),
) -> int:
    from ..driver import FinishKind, SessionConfig  # noqa: PLC0415
    from ..trio import open_session  # noqa: PLC0415
    from ._chat import run_chat  # noqa: PLC0415 - see the note on imports

    script = _script_lines(args.script)
    terminal = _terminal(sys.stdout, script)
    async with open_session(
        base_url,
        provider,
        streaming=streaming,
        platform=platform,
        user_agent="polyai-messaging-cli",
        ssl_context=ssl_context,
        http_client=http,
        config=SessionConfig(replay_quiet_seconds=0.2),
    ) as session:
        if script is None:
            for line in banner:
                terminal.note(line)
        finished = await run_chat(
            session, terminal, script=script, reply_timeout=args.reply_timeout
        )
    # A conversation left open (script without /end) or ended normally is a success.
    return 0 if finished is None or finished.kind is FinishKind.ENDED else 1


def _emulator_config(args: argparse.Namespace) -> EmulatorConfig:
    from ..emulator import EmulatorConfig, parse_faults  # noqa: PLC0415 - see the note on imports

    config = EmulatorConfig.fast() if args.fast else EmulatorConfig()
    if args.faults:
        config = config.replace(faults=parse_faults(args.faults))
    return config


async def _demo(args: argparse.Namespace) -> int:
    from ..emulator import DEMO_CONNECTOR_TOKEN, DEMO_HOST, run_emulator  # noqa: PLC0415
    from ..rest import connector_token_provider  # noqa: PLC0415
    from ._chat import HELP_TEXT  # noqa: PLC0415 - see the note on imports

    async with run_emulator(_emulator_config(args)) as emulator:
        provider = connector_token_provider(emulator.base_url, DEMO_CONNECTOR_TOKEN, DEMO_HOST)
        mode = "streaming" if args.streaming else "whole messages"
        banner = (
            f"PolyAI Messaging demo: emulator at {emulator.base_url} ({mode}).",
            trigger_help(),
            HELP_TEXT,
        )
        return await _converse(
            args, emulator.base_url, provider, streaming=args.streaming, banner=banner
        )


async def _chat(args: argparse.Namespace) -> int:
    from ..rest import connector_token_provider, http_client  # noqa: PLC0415
    from ._chat import HELP_TEXT  # noqa: PLC0415 - see the note on imports

    connector_token = os.environ.get(CONNECTOR_TOKEN_ENV, "").strip()
    if not connector_token:
        print(
            f"polyai-messaging chat: set the connector token in ${CONNECTOR_TOKEN_ENV}",
            file=sys.stderr,
        )
        return 2
    context = ssl.create_default_context(cafile=str(args.ca_file)) if args.ca_file else None
    async with http_client(None, context) as http:
        provider = connector_token_provider(args.base_url, connector_token, args.host, client=http)
        return await _converse(
            args,
            args.base_url,
            provider,
            streaming=args.streaming,
            platform=args.platform,
            ssl_context=context,
            http=http,
            banner=(f"Connected to {args.base_url}.", HELP_TEXT),
        )


async def _emulator(args: argparse.Namespace) -> None:
    import trio  # noqa: PLC0415 - see the note on imports

    from ..emulator import DEFAULT_PORT, serve_forever  # noqa: PLC0415

    config = _emulator_config(args)
    timings = {
        "heartbeat_interval_seconds": args.heartbeat_interval,
        "idle_timeout_seconds": args.idle_timeout,
    }
    config = config.replace(**{name: value for name, value in timings.items() if value is not None})
    port = DEFAULT_PORT if args.port is None else args.port
    async with trio.open_nursery() as nursery:
        emulator: RunningEmulator = await nursery.start(
            serve_forever, config, args.host, port, args.tls
        )
        _announce(emulator, args.ca_file)


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
