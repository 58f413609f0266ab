"""``polyai-messaging demo`` in a pseudo-terminal, as a person would use it (pexpect)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pexpect
import pytest

TIMEOUT = 15


@pytest.fixture
def demo(request: pytest.FixtureRequest) -> Iterator[pexpect.spawn]:
    extra: list[str] = getattr(request, "param", [])
    child = pexpect.spawn(
        sys.executable,
        ["-m", "polyai_messaging.cli", "demo", *extra],
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(40, 160),
        env={**os.environ, "PYTHONIOENCODING": "utf-8", "TERM": "xterm"},
    )
    try:
        yield child
    finally:
        if child.isalive():
            child.terminate(force=True)
        child.close()


def test_demo_greeting_suggestions_typing_and_end(demo: pexpect.spawn) -> None:
    demo.expect_exact("Trigger words: human, callback")
    demo.expect_exact("Ada joined the conversation.")
    demo.expect_exact("Ada is typing…")
    demo.expect_exact("Ada: Hi, I'm Ada, the PolyAI demo agent. How can I help you today?")
    demo.expect_exact("(Our locations: https://example.com/locations)")
    demo.expect_exact("[1] I have a question about my order  [2] I need to make a booking")
    demo.sendline("1")
    demo.expect_exact("You: I have a question about my order")
    demo.expect_exact("Ada is typing…")
    demo.expect_exact('Ada: You said: "I have a question about my order" (7 words).')
    demo.expect_exact("[1] Tell me more  [2] Talk to a human")
    demo.sendline("/end")
    demo.expect_exact("Conversation ended: REASON_USER_END")
    demo.expect(pexpect.EOF)
    demo.close()
    assert demo.exitstatus == 0


@pytest.mark.parametrize("demo", [["--no-streaming"]], indirect=True)
def test_demo_handoff_to_a_live_agent_then_end_of_input(demo: pexpect.spawn) -> None:
    demo.expect_exact("[3] Talk to a human")
    demo.sendline("3")
    demo.expect_exact("Ada is transferring you to a human agent…")
    demo.expect_exact("You are #2 in the queue 'General Support'")
    demo.expect_exact("Sarah (live agent) joined the conversation.")
    demo.expect_exact("Sarah is typing…")
    demo.expect_exact("Sarah (live agent): Hi, I'm Sarah from the support team.")
    demo.sendeof()  # Ctrl-D leaves the conversation
    demo.expect_exact("Conversation ended: REASON_USER_END")
    demo.expect(pexpect.EOF)
    demo.close()
    assert demo.exitstatus == 0
