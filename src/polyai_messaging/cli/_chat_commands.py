"""``polyai-messaging demo`` and ``chat``: a conversation, in a terminal or from a script.

``demo`` starts the emulator in-process; ``chat`` reaches a deployment with the connector token
of ``$POLYAI_CONNECTOR_TOKEN``. Both then run the same conversation (:func:`_converse`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ._emulator_command import emulator_config, trigger_help
from ._failures import CONNECTOR_TOKEN_ENV, reporting_retry
from ._log_output import configure_logging
from ._status import ExitStatus, UsageError

if TYPE_CHECKING:
    import httpx

    from ..runtime import TokenProvider

# The loop, httpx, the emulator (hypercorn), prompt_toolkit and the chat are imported by the
# handlers only, so that building the parser (for any subcommand, or --help) stays cheap.

__all__ = ["run_chat_command", "run_demo_command"]


def run_demo_command(args: argparse.Namespace) -> int:
    """``polyai-messaging demo``."""
    configure_logging(args)
    return asyncio.run(_demo(args))


def run_chat_command(args: argparse.Namespace) -> int:
    """``polyai-messaging chat``."""
    configure_logging(args)
    return asyncio.run(_chat(args))


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _token_provider(
    base_url: str, connector_token: str, host: str, http: httpx.AsyncClient
) -> TokenProvider:
    """Mints access tokens with the connector token, saying so while a call is retried."""
    from ..rest import connector_token_provider  # noqa: PLC0415 - see the note on imports

    retry = reporting_retry(_progress)
    return connector_token_provider(base_url, connector_token, host, client=http, retry=retry)


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
                print(_resume_hint(session.session_id), file=sys.stderr)
            output = PlainOutput(sys.stdout)
            lines = LineReader(script)
            finished = await run_script(session, output, lines, reply_timeout=args.reply_timeout)
        else:
            from ._prompt import run_interactive  # noqa: PLC0415 - see the note on imports

            if resumable:
                banner = [*banner, _resume_hint(session.session_id)]
            finished = await run_interactive(session, banner=banner)
    # A conversation left open (script without /end) or ended normally is a success.
    if finished is None or finished.kind is FinishKind.ENDED:
        return ExitStatus.OK
    return ExitStatus.FAILED


def _resume_hint(session_id: str) -> str:
    from ._safe import terminal_safe  # noqa: PLC0415 - see the note on imports

    sid = terminal_safe(session_id, multiline=False)  # the server chose it
    return f"Session {sid} (resume it with --session-id {sid})."


async def _demo(args: argparse.Namespace) -> int:
    from ..emulator import DEMO_CONNECTOR_TOKEN, DEMO_HOST, run_emulator  # noqa: PLC0415
    from ..rest import http_client  # noqa: PLC0415
    from ._chat import HELP_TEXT  # noqa: PLC0415 - see the note on imports

    async with run_emulator(emulator_config(args)) as emulator, http_client(None, None) as http:
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
