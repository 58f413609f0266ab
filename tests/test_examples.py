"""The examples in ``examples/`` run, print what they promise, and import what they should."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from polyai_messaging.emulator import EmulatorConfig

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GREETING = "Agent: Hi, I'm Ada, the PolyAI demo agent. How can I help you today?"
REPLY = 'Agent: You said: "I\'d like to book a table" (6 words). What else can I do for you?'


_RUN = """
import runpy, sys
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""

# The same in a process where trio cannot be imported, recording who tried. httpcore (under
# httpx) probes for trio when it is imported and works without it; anything else that tries is
# a module that needs trio.
_WITHOUT_TRIO = (
    """
import importlib.abc, sys
OPTIONAL = {"httpcore", "httpcore._synchronization", "httpcore._backends.trio"}
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
    + _RUN
    + """
print("tried trio:", sorted(set(tried) - OPTIONAL))
print("trio imported:", "trio" in sys.modules)
"""
)


def run_example(name: str, *, without_trio: bool = False) -> tuple[str, list[str]]:
    """Run ``examples/<name>`` as a script: its output, and (without trio) the verdict lines."""
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_TRIO if without_trio else _RUN, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = result.stdout.splitlines()
    if not without_trio:
        return "\n".join(lines), []
    return "\n".join(lines[:-2]), lines[-2:]


@pytest.mark.parametrize("name", ["quickstart_trio.py", "quickstart_asyncio.py"])
def test_the_quickstarts_greet_and_get_a_reply(name: str) -> None:
    output, _ = run_example(name)
    assert output.splitlines() == [GREETING, REPLY]


def test_the_asyncio_quickstart_runs_without_trio() -> None:
    output, verdict = run_example("quickstart_asyncio.py", without_trio=True)
    assert output.splitlines() == [GREETING, REPLY]
    assert verdict == ["tried trio: []", "trio imported: False"]


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), EXAMPLES / name)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_many_chats_stream_every_reply_to_its_own_user() -> None:
    example = load("many_chats_asyncio.py")
    streamed = EmulatorConfig.fast(chunk_delay_seconds=0.01)
    received = asyncio.run(example.main(12, streamed))
    assert len(received) == 12
    for name, pieces in received.items():
        assert "".join(pieces).splitlines() == [
            "Hi, I'm Ada, the PolyAI demo agent. How can I help you today?",
            f'You said: "Hello, I am {name}" (4 words). What else can I do for you?',
            'You said: "Thanks!" (1 word). What else can I do for you?',
        ]
        assert len(pieces) > 6, "each reply arrives in pieces, as it streams"


def test_many_chats_runs_without_trio() -> None:
    output, verdict = run_example("many_chats_asyncio.py", without_trio=True)
    assert output.count("--- user-") == 20
    assert verdict == ["tried trio: []", "trio imported: False"]
