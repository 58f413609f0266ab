"""The examples in ``examples/`` run, print what they promise, and import what they should."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from no_trio import run_without_trio
from polyai_messaging.emulator import EmulatorConfig

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GREETING = "Agent: Hi, I'm Ada, the PolyAI demo agent. How can I help you today?"
REPLY = 'Agent: You said: "I\'d like to book a table" (6 words). What else can I do for you?'


_RUN = """
import runpy, sys
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_example(name: str) -> str:
    """Run ``examples/<name>`` as a script; its output."""
    result = subprocess.run(
        [sys.executable, "-c", _RUN, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


@pytest.mark.parametrize("name", ["quickstart_trio.py", "quickstart_asyncio.py"])
def test_the_quickstarts_greet_and_get_a_reply(name: str) -> None:
    assert run_example(name).splitlines() == [GREETING, REPLY]


def test_the_asyncio_quickstart_runs_without_trio() -> None:
    output, needed_trio = run_without_trio(_RUN, str(EXAMPLES / "quickstart_asyncio.py"))
    assert output.splitlines() == [GREETING, REPLY]
    assert needed_trio == set()


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
    output, needed_trio = run_without_trio(_RUN, str(EXAMPLES / "many_chats_asyncio.py"))
    assert output.count("--- user-") == 20
    assert needed_trio == set()
