"""``examples/asyncio_driver.py``: the sans-I/O driver runs under asyncio too."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from polyai_messaging.core import Role
from polyai_messaging.driver import FinishKind

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "asyncio_driver.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("asyncio_driver", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_asyncio_driver_runs_a_conversation_to_its_end() -> None:
    example = load_example()
    state = asyncio.run(example.run(["Hi there", "Thanks"]))
    assert state.finished is not None
    assert state.finished.kind is FinishKind.ENDED
    assert state.finished.reason == "REASON_USER_END"
    transcript = [(m.role, m.text) for m in state.conversation.transcript]
    assert transcript == [
        (Role.AGENT, "Hello!"),
        (Role.USER, "Hi there"),
        (Role.AGENT, "You said: Hi there"),
        (Role.USER, "Thanks"),
        (Role.AGENT, "You said: Thanks"),
    ]
    assert all(entry.status.value == "sent" for entry in state.outbox)


def test_asyncio_driver_script_prints_the_transcript() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=30, check=True
    )
    assert "agent: You said: Thanks" in result.stdout
    assert "REASON_USER_END" in result.stdout
