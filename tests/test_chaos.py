"""Exactly once under chaos: a few hundred conversations against the emulator while its faults
switch at random (see ``tests/chaos.py``, which also runs by hand for bigger figures)."""

from __future__ import annotations

import pytest

from chaos import run


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio", "asyncio"])
async def test_no_message_stored_twice_or_lost_and_every_transcript_matches_the_server(
    anyio_backend: str,
) -> None:
    figures = await run(300, 20.0, seed=1)
    assert {key: figures[key] for key in _ZERO} == dict.fromkeys(_ZERO, 0), figures
    assert (figures["conversations"], figures["messages"]) == (300, 900), figures


_ZERO = (
    "not_opened",
    "stored_twice",
    "lost",
    "failed",
    "not_caught_up",
    "finished_early",
    "transcripts_differ",
)
