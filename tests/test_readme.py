"""The README's code runs as a reader would paste it: both quickstarts and the folding example."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout


def test_the_quickstart_greets_and_replies() -> None:
    quickstart = python_blocks()[0]
    assert "from polyai_messaging.asyncio import open_session" in quickstart
    assert len(quickstart.strip().splitlines()) <= 20
    assert run(quickstart).splitlines() == [
        "Agent: Hi, I'm Ada, the PolyAI demo agent. How can I help you today?",
        'Agent: You said: "I\'d like to book a table" (6 words). What else can I do for you?',
    ]


def test_the_trio_quickstart_replies() -> None:
    quickstart = python_blocks()[1]
    assert "from polyai_messaging.trio import open_session" in quickstart
    assert len(quickstart.strip().splitlines()) <= 20
    assert run(quickstart).splitlines() == [
        'Agent: You said: "I\'d like to book a table" (6 words). What else can I do for you?',
    ]


def test_the_folding_example_prints_what_its_comments_say() -> None:
    folding = python_blocks()[2]
    expected = [line.split("# ")[-1] for line in folding.splitlines() if "print(" in line]
    assert run(folding).splitlines() == expected
