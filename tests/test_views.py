"""The views of a conversation's end (streams, suggestions, replies) match its transcript, and
cost the same at any length of history.

``transcript`` builds and sorts every message; :attr:`Conversation.streams`,
:attr:`Conversation.streaming`, :attr:`Conversation.busy`, :attr:`Conversation.suggestions` and
:meth:`Conversation.reply_complete` are asked after every update by applications waiting for a
reply, so they read marks the reducer keeps instead. The reference definitions below are the
transcript-based ones; the property checks them after every frame of every delivery order,
including copies of messages that arrive again at a lower rank (which move a mark back).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from immutables import Map

from polyai_messaging.core import Conversation, Message, Role, Suggestion
from polyai_messaging.core import _reducer as reducer
from polyai_messaging.core import _wire as wire
from strategies import deliveries, dumps, examples, journals

E = "EVENT_TYPE_"
MESSAGE_TYPES = {
    E + "POLY_AGENT_MESSAGE",
    E + "POLY_AGENT_MESSAGE_CHUNK",
    E + "LIVE_AGENT_MESSAGE",
    E + "USER_MESSAGE",
    E + "SYSTEM_MESSAGE",
}


def reference_streams(conversation: Conversation) -> tuple[Message, ...]:
    return tuple(message for message in conversation.transcript if not message.complete)


def reference_suggestions(conversation: Conversation) -> tuple[Suggestion, ...]:
    transcript = conversation.transcript
    if not transcript or transcript[-1].role not in (Role.AGENT, Role.LIVE_AGENT):
        return ()
    return transcript[-1].suggestions


def reference_reply_complete(conversation: Conversation, client_event_id: str | None) -> bool:
    streaming = any(not m.interrupted for m in reference_streams(conversation))
    if conversation.agent_thinking or conversation.live_agent_typing or streaming:
        return False
    after = -1
    if client_event_id is not None:
        mine = conversation.delivered(client_event_id)
        if mine is None or mine.sequence is None:
            return False
        after = mine.sequence
    return any(
        message.role is not Role.USER and message.complete and (message.sequence or 0) > after
        for message in conversation.transcript
    )


def assert_views_match(conversation: Conversation, client_event_ids: list[str | None]) -> None:
    streams = reference_streams(conversation)
    assert conversation.streams == streams
    assert conversation.streaming == tuple(m for m in streams if not m.interrupted)
    assert conversation.suggestions == reference_suggestions(conversation)
    for client_event_id in client_event_ids:
        assert conversation.reply_complete(client_event_id) == reference_reply_complete(
            conversation, client_event_id
        )


def live_copy(frame: dict[str, Any]) -> dict[str, Any]:
    """The same message as a live event without id or sequence: it ranks above the cursor."""
    twin = copy.deepcopy(frame)
    twin.pop("id", None)
    twin["sequence"] = None
    return twin


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_views_match_the_transcript_after_every_frame(data: st.DataObject) -> None:
    journal = data.draw(journals())
    frames = data.draw(deliveries(journal.frames))
    messages = [frame for frame in journal.frames if frame.get("type") in MESSAGE_TYPES]
    if messages:
        # Live copies delivered early, so that their sequenced originals arrive later, lower.
        twins = data.draw(st.lists(st.sampled_from(messages), max_size=4))
        for twin in twins:
            frames.insert(data.draw(st.integers(0, len(frames))), live_copy(twin))
    ids: list[str | None] = [None]
    for frame in journal.frames:
        custom = (frame.get("metadata") or {}).get("custom") or {}
        if frame.get("type") == E + "USER_MESSAGE":
            ids.extend(
                custom.get(name) for name in ("client_event_id", "local_id") if name in custom
            )
    conversation = Conversation()
    for frame in frames:
        conversation = reducer.apply(conversation, wire.decode(dumps(frame)))
        assert_views_match(conversation, ids)
    assert conversation.marks == reducer._recount(conversation.fields())


class _NoIteration:
    """A stand-in for the records map that answers lookups but refuses to be walked."""

    def __init__(self, inner: Map[str, Any]) -> None:
        self._inner = inner

    def get(self, key: str, default: Any = None) -> Any:
        return self._inner.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._inner

    def __len__(self) -> int:
        return len(self._inner)

    def values(self) -> Iterator[Any]:
        raise AssertionError("a view walked every message of the history")

    __iter__ = items = keys = values


def long_conversation(turns: int) -> Conversation:
    frames: list[dict[str, Any]] = [
        {"type": E + "SESSION_START", "id": "e0", "sequence": 1, "payload": {}},
        {"type": E + "POLY_AGENT_JOINED", "id": "e1", "sequence": 2, "payload": {}},
    ]
    sequence = 2
    for turn in range(turns):
        sequence += 1
        frames.append(
            {
                "type": E + "USER_MESSAGE",
                "id": f"u{turn}",
                "sequence": sequence,
                "payload": {"text": "hi"},
                "metadata": {"custom": {"client_event_id": f"c{turn}"}},
            }
        )
        sequence += 1
        frames.append(
            {
                "type": E + "POLY_AGENT_MESSAGE",
                "id": f"a{turn}",
                "sequence": sequence,
                "payload": {
                    "message_id": f"m{turn}",
                    "text": "hello",
                    "response_suggestions": [{"message_text": "more"}],
                },
            }
        )
    frames.append(
        {
            "type": E + "POLY_AGENT_MESSAGE_CHUNK",
            "id": "s1",
            "sequence": sequence + 1,
            "payload": {
                "message_id": "open",
                "chunk_index": 1,
                "text": "stream",
                "is_complete": False,
            },
        }
    )
    return reducer.fold(wire.decode(dumps(frame)) for frame in frames)


@pytest.mark.parametrize("turns", [1, 300])
def test_views_of_the_end_do_not_walk_the_history(turns: int) -> None:
    conversation = long_conversation(turns)
    fields = conversation.fields()
    fields["records"] = _NoIteration(fields["records"])
    guarded = Conversation.from_fields(fields)
    assert [m.text for m in guarded.streams] == ["stream"]
    assert [m.text for m in guarded.streaming] == ["stream"]
    assert guarded.busy
    assert not guarded.reply_complete(f"c{turns - 1}")  # the stream is still arriving
    assert guarded.suggestions == ()  # the last message is the open stream
    assert guarded.delivered(f"c{turns - 1}") is not None
    with pytest.raises(AssertionError, match="walked"):
        guarded.transcript  # noqa: B018 - the full view does walk it, as it must


def test_reply_and_suggestions_of_a_finished_turn_without_walking() -> None:
    conversation = long_conversation(50)
    finished = reducer.apply(
        conversation,
        wire.decode(
            dumps(
                {
                    "type": E + "POLY_AGENT_MESSAGE_CHUNK",
                    "id": "s2",
                    "sequence": conversation.cursor + 1,
                    "payload": {
                        "message_id": "open",
                        "chunk_index": 2,
                        "text": " done",
                        "is_complete": True,
                        "response_suggestions": [{"message_text": "again"}],
                    },
                }
            )
        ),
    )
    fields = finished.fields()
    fields["records"] = _NoIteration(fields["records"])
    guarded = Conversation.from_fields(fields)
    assert guarded.streams == ()
    assert guarded.reply_complete("c49")
    assert guarded.reply_complete(None)
    assert [s.message_text for s in guarded.suggestions] == ["again"]


ranks = st.none() | st.integers(1, 5).map(float)


@given(agent=ranks, requested=ranks, rejoin=ranks)
def test_join_needed_reads_the_ranks_of_its_three_facts(
    agent: float | None, requested: float | None, rejoin: float | None
) -> None:
    """``join_needed`` reads the facts in place: as the ranks ``_rank`` gives them say."""
    facts = {
        name: (rank, None)
        for name, rank in (("agent", agent), ("join_requested", requested), ("rejoin", rejoin))
        if rank is not None
    }
    conversation = Conversation(facts=Map(facts))
    latest = max(conversation._rank("agent"), conversation._rank("join_requested"))
    expected = latest == float("-inf") or conversation._rank("rejoin") > latest
    assert conversation.join_needed is expected
