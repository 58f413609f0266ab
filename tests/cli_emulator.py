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


@contextmanager
def running_emulator(*options: str) -> Iterator[tuple[dict[str, Any], subprocess.Popen[str]]]:
    """``polyai-messaging emulator OPTIONS`` and its first line, parsed; stopped with Ctrl-C,
    which it reports with status 130 and one line, no traceback."""
    process = subprocess.Popen(
        [*CLI, "emulator", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        yield json.loads(read_line(process)), process
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 130, stderr
    assert "Emulator stopped." in stderr
    assert "Traceback" not in stderr
