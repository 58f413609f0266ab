"""``polyai-messaging emulator`` as the CLI tests run it: in a subprocess, read back from its
announcement line, and stopped with Ctrl-C, which it must report with status 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CLI = [sys.executable, "-m", "polyai_messaging.cli"]
ENV = {**os.environ, "PYTHONIOENCODING": "utf-8"}
TIMEOUT = 30.0


def start_interruptible(argv: list[str], **options: Any) -> subprocess.Popen[str]:
    """``argv`` started with Ctrl-C (SIGINT) at its default disposition, as a terminal gives it.

    A shell without job control starts a background job (``pytest &``, as scripts running
    suites side by side do) with SIGINT ignored, and a child inherits that: Python then
    installs no handler, and the program ignores the test's Ctrl-C for good. A signal that is
    handled, unlike one ignored, is reset to its default by exec, so SIGINT is handled here while
    the child starts. (Test functions run on the main thread, where a handler may be set.)
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(argv, text=True, **options)
    finally:
        signal.signal(signal.SIGINT, previous)


def read_line(process: subprocess.Popen[str], timeout: float = TIMEOUT) -> str:
    """The next line of the process's stdout; fails if none comes within ``timeout``."""
    stdout = process.stdout
    assert stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert lines, "no line on stdout in time"
    return lines[0]


def interrupt(process: subprocess.Popen[str], timeout: float = TIMEOUT) -> str:
    """Ctrl-C, then the process's stderr once it has exited. If it has not exited within
    ``timeout``, it is killed and reaped before the failure is raised, so that it does not
    outlive the test (its pipes and ``Popen`` would fail a later test with ResourceWarnings)."""
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return stderr


@contextmanager
def running_emulator(*options: str) -> Iterator[tuple[dict[str, Any], subprocess.Popen[str]]]:
    """``polyai-messaging emulator OPTIONS`` and its first line, parsed; stopped with Ctrl-C,
    which it reports with status 130 and one line, no traceback."""
    process = start_interruptible(
        [*CLI, "emulator", *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV
    )
    try:
        yield json.loads(read_line(process)), process
    finally:
        stderr = interrupt(process)
    assert process.returncode == 130, stderr
    assert "Emulator stopped." in stderr
    assert "Traceback" not in stderr
