"""Run Python code in a process where trio cannot be imported, recording which modules tried.

httpcore (under httpx) probes for trio when it is imported and works without it; any other
module that tries to import trio needs it.
"""

from __future__ import annotations

import subprocess
import sys

OPTIONAL = frozenset({"httpcore", "httpcore._synchronization", "httpcore._backends.trio"})
"""Modules that try trio only to use it if it is there."""

_PRELUDE = """
import importlib.abc, sys
tried = []
class NoTrio(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "trio" or name.startswith(("trio.", "trio_websocket")):
            frame = sys._getframe(1)
            while frame.f_globals.get("__name__", "").startswith(("importlib", "_frozen")):
                frame = frame.f_back
            tried.append(frame.f_globals.get("__name__", "?"))
            raise ImportError(name)
        return None
sys.meta_path.insert(0, NoTrio())
"""
_VERDICT = """
print(sorted(set(tried)))
print("trio" in sys.modules)
"""


def run_without_trio(code: str, *args: str) -> tuple[str, set[str]]:
    """Run ``code`` (with ``args`` in ``sys.argv[1:]``) without trio; return its output and the
    modules that needed trio (those in :data:`OPTIONAL` left out)."""
    result = subprocess.run(
        [sys.executable, "-c", _PRELUDE + code + _VERDICT, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    *lines, tried, imported = result.stdout.splitlines()
    assert imported == "False"
    return "\n".join(lines), set(eval(tried)) - OPTIONAL
