"""``polyai-messaging replay FILE [--json]``: fold a captured log of server frames.

The file is JSON Lines, one server frame per line, as received (batches, duplicates and
reconnect overlaps included). Lines without a ``type`` key are annotations and are skipped;
blank lines are ignored. A malformed line (invalid JSON, or a frame the decoder rejects) is
reported on stderr as ``FILE:LINE: reason`` and the rest is still folded; so are the rejected
elements of a batch (the batch's good elements are kept). The exit status is 0 unless the
file cannot be read (2). What the log's frames say is server text: it is printed made safe for a
terminal (``_safe``), in the text and in the JSON output.

A file that is a *scripted conversation* (see :mod:`polyai_messaging.testing`) is also run
through the session driver, and the driver's report is added to the output.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import attrs

from ..core import Conversation, RemoteProtocolError, render_text, to_json
from ..core import _reducer as reducer
from ..core import _wire as wire
from ..testing import _scripted as scripted
from ._safe import json_safe, terminal_safe
from ._status import EXIT_STATUS_HELP

__all__ = ["Problem", "Replay", "read_lines", "register", "replay_lines", "run"]


@attrs.frozen
class Problem:
    """A line that could not be folded (or folded only in part)."""

    line: int
    """1-based line number; 0 when the problem is not one line's (a failed scripted run)."""
    reason: str


@attrs.frozen
class Replay:
    """The outcome of folding a log."""

    conversation: Conversation
    problems: tuple[Problem, ...] = ()
    frames: int = 0
    """Frames decoded and folded (a batch counts once)."""
    skipped: int = 0
    """Lines without a ``type`` key (annotations)."""
    script: scripted.ScriptResult | None = None
    """The driver's run, when the file is a scripted conversation."""


def read_lines(path: str) -> list[bytes]:
    """The file's lines, undecoded (``-`` reads stdin). Raises :class:`OSError`."""
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    return data.removeprefix(b"\xef\xbb\xbf").split(b"\n")


def replay_lines(lines: Iterable[str | bytes], *, run_script: bool = True) -> Replay:
    """Fold the frames of ``lines`` (line numbers count from 1).

    A line given as bytes that is not UTF-8 is reported, not fatal.
    """
    conversation = Conversation()
    problems: list[Problem] = []
    parsed: list[dict[str, Any]] = []
    frames = skipped = 0
    for number, value in _json_values(lines, problems):
        if type(value) is dict:
            if "type" not in value:
                skipped += 1
                if "client_sends" in value and type(value["client_sends"]) is not dict:
                    problems.append(Problem(number, "client_sends: expected object"))
                    continue
            parsed.append(value)
            if "type" not in value:
                continue
        try:
            event = wire.decode_object(value)
        except RemoteProtocolError as exc:
            problems.append(Problem(number, str(exc)))
            continue
        problems.extend(Problem(number, str(error)) for error in event.rejected)
        conversation = reducer.apply(conversation, event)
        frames += 1
    script = None
    if run_script and scripted.is_script(parsed):
        try:
            script = scripted.run_script(parsed)
        except Exception as exc:  # the log is still folded and shown without the driver part
            problems.append(Problem(0, f"the scripted run failed: {type(exc).__name__}: {exc}"))
    return Replay(conversation, tuple(problems), frames, skipped, script)


def _json_values(
    lines: Iterable[str | bytes], problems: list[Problem]
) -> Iterator[tuple[int, object]]:
    """(line number, decoded JSON) of every line that is not blank; a line that is not UTF-8 or
    not JSON is added to ``problems`` instead."""
    for number, line in enumerate(lines, start=1):
        if isinstance(line, bytes):
            try:
                text = line.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                problems.append(Problem(number, f"not UTF-8 text (byte {exc.start})"))
                continue
        else:
            text = line.strip()
        if not text:
            continue
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as exc:
            problems.append(Problem(number, f"invalid JSON ({exc})"))
            continue
        yield number, value


# --- the subcommand ----------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``replay`` subcommand (sets ``func``)."""
    parser = subparsers.add_parser(
        "replay",
        help="fold a JSON Lines log of server frames and print the conversation",
        description=(
            "Fold a JSON Lines file of server frames, as received, into the conversation\n"
            "and print its transcript. Lines without a 'type' key are skipped; malformed\n"
            "lines are reported on stderr and the rest is still folded. A file that also\n"
            "holds 'client_sends' lines is a scripted conversation: it is run through the\n"
            "session driver, and what the driver sent is checked against those lines."
        ),
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", help="the log ('-' reads stdin)")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object instead of the transcript"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``polyai-messaging replay``."""
    stdout = out if out is not None else sys.stdout
    stderr = err if err is not None else sys.stderr
    path: str = args.file
    try:
        lines = read_lines(path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(f"polyai-messaging replay: cannot read {path}: {reason}", file=stderr)
        return 2
    result = replay_lines(lines)
    # The log holds server text: it reaches the terminal only made safe.
    for problem in result.problems:
        where = f"{path}:{problem.line}" if problem.line else path
        print(terminal_safe(f"{where}: {problem.reason}", multiline=False), file=stderr)
    if args.json:
        document = to_json(result.conversation)
        if result.script is not None:
            document.update(result.script.report())
        print(json_safe(json.dumps(document, ensure_ascii=False, indent=2)), file=stdout)
    else:
        stdout.write(terminal_safe(render_text(result.conversation)))
        if result.script is not None:
            stdout.write(terminal_safe(_script_text(result.script)))
    return 0


def _script_text(script: scripted.ScriptResult) -> str:
    report = script.report()
    lines = ["", "Scripted conversation (driver):"]
    lines.append(f"  frames sent: {len(report['sent'])}")
    if report["reconnect_cursors"]:
        cursors = ", ".join(str(c) for c in report["reconnect_cursors"])
        lines.append(f"  reconnect cursors: {cursors}")
    for delivery in report["delivery"]:
        lines.append(f"  delivery {delivery['client_event_id']}: {delivery['status']}")
    mismatches = report["mismatches"]
    lines.append(f"  mismatches: {len(mismatches) or 'none'}")
    lines.extend(f"    - {m}" for m in mismatches)
    return "\n".join(lines) + "\n"
