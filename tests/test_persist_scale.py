"""Saved states at scale: the text is what it always was, any layout of it reads the same, and
neither saving nor restoring holds every frame's dicts at once (the garbage collector would walk
them all, several times over, at 100,000 events)."""

from __future__ import annotations

import gc
import json
from datetime import datetime
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyai_messaging.core import (
    Capabilities,
    Conversation,
    MessageRecord,
    UnknownEvent,
    apply,
    decode_object,
    fold,
)
from polyai_messaging.driver import (
    SessionState,
    StateFormatError,
    _persist,
    dump_state,
    event_to_wire,
    load_state,
)
from strategies import Expected, Journal, examples, journals

# --- the reference: how states were saved before encoding was made faster ---------------------


def _reference_plain(value: Any) -> Any:
    if isinstance(value, Capabilities):
        fields = {k: v for k, v in attrs.asdict(value).items() if k != "extra" and v is not None}
        return {**value.extra, **fields}
    if attrs.has(type(value)):
        return {
            field.name: _reference_plain(getattr(value, field.name))
            for field in attrs.fields(type(value))
            if getattr(value, field.name) is not None
        }
    if isinstance(value, tuple | list):
        return [_reference_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _reference_plain(item) for key, item in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _reference_wire(event: Any) -> dict[str, Any]:
    kind = event.type if isinstance(event, UnknownEvent) else type(event).TYPE
    frame: dict[str, Any] = {"type": kind}
    for name in ("id", "sequence", "timestamp", "metadata"):
        value = getattr(event, name)
        if value is not None:
            frame[name] = _reference_plain(value)
    frame["payload"] = _reference_plain(getattr(event, "payload", {}))
    return frame


def _reference_dump(state: SessionState) -> str:
    return json.dumps(
        {
            "format": 1,
            "session_id": state.session_id,
            "seed": state.seed,
            "draws": state.draws,
            "joins_sent": state.joins_sent,
            "join_retries": state.join_retries,
            "last_sent_wall": state.last_sent_wall,
            "cursor": state.conversation.cursor,
            "journal": [_reference_wire(event) for event in state.conversation.timeline],
            "outbox": [],
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


# --- conversations ------------------------------------------------------------------------------

TRICKY_TEXTS = (
    '},{"type":"',
    ',"journal":[{"type":"',
    '"}]}',
    "lone \ud800 surrogate",
    "café ☕",
    "\n\t\x00\x1f\x7f\u2028",
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from(TRICKY_TEXTS),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(max_size=4) | st.sampled_from(("type", "journal")), inner, max_size=3
        )
        | st.lists(
            st.fixed_dictionaries({"type": st.sampled_from(("EVENT_TYPE_X", "a"))}), max_size=3
        )
    ),
    max_leaves=8,
)
"""Anything a server may put where the library keeps raw JSON (an unknown event's payload)."""


def _state(journal: Journal, raw: list[dict[str, Any]], *, seed: int = 7) -> SessionState:
    frames = [frame for frame in journal.frames if frame.get("sequence") is not None]
    for payload in raw:
        frames.append(
            {"type": "EVENT_TYPE_FROM_THE_FUTURE", "sequence": len(frames) + 1, "payload": payload}
        )
    conversation = fold(decode_object(frame) for frame in frames)
    return attrs.evolve(SessionState.new("scale", seed=seed), conversation=conversation)


def _grown(size: int) -> SessionState:
    """A history like the benchmarks': user messages and agent replies, alternately."""
    conversation = fold(decode_object(frame) for frame in _frames(size))
    return attrs.evolve(SessionState.new("grown", seed=1), conversation=conversation)


def _frames(size: int) -> list[dict[str, Any]]:
    """The frames of :func:`_grown`'s history."""
    frames: list[dict[str, Any]] = []
    for sequence in range(1, size + 1):
        frame: dict[str, Any] = {
            "id": f"e{sequence}",
            "sequence": sequence,
            "timestamp": f"2026-01-01T00:00:{sequence % 60:02d}+00:00",
        }
        if sequence % 2:
            frame["type"] = "EVENT_TYPE_USER_MESSAGE"
            frame["payload"] = {"text": f"message {sequence}", "message_id": f"u{sequence}"}
            frame["metadata"] = {"custom": {"client_event_id": f"c{sequence}"}}
        else:
            frame["type"] = "EVENT_TYPE_POLY_AGENT_MESSAGE"
            frame["payload"] = {
                "text": f"reply {sequence}",
                "message_id": f"a{sequence}",
                "response_suggestions": [{"message_text": "No, thanks"}],
            }
        frames.append(frame)
    return frames


SETTINGS = settings(
    max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(journal=journals(), raw=st.lists(st.dictionaries(st.text(max_size=3), json_values)))
def test_saved_text_is_what_it_was_and_round_trips(
    journal: Journal, raw: list[dict[str, Any]]
) -> None:
    state = _state(journal, raw)
    text = dump_state(state)
    assert text == _reference_dump(state)
    restored = load_state(text)
    assert dump_state(restored) == text
    assert restored.conversation.cursor == state.conversation.cursor
    assert restored.conversation.transcript == state.conversation.transcript


@SETTINGS
@given(raw=st.lists(st.dictionaries(st.text(max_size=3), json_values), min_size=1))
def test_event_to_wire_is_what_it_was(raw: list[dict[str, Any]]) -> None:
    for event in _state(Journal([], Expected()), raw).conversation.timeline:
        wire = event_to_wire(event)
        assert json.dumps(wire) == json.dumps(_reference_wire(event))
        assert all(type(value) is not _persist._JsonFloat for value in _leaves(wire))


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _layouts(text: str) -> list[str]:
    """The same JSON object written other ways than :func:`dump_state` writes it."""
    data = json.loads(text)
    journal_first = {"journal": data["journal"], **{k: v for k, v in data.items()}}
    return [
        json.dumps(data, indent=1, ensure_ascii=False),
        json.dumps(data),  # spaces after separators, non-ASCII escaped
        json.dumps(journal_first, separators=(",", ":")),
        " " + text + "\n",
        text[:-1] + ',"journal":[]}',  # given twice: the last one counts (json.loads)
        text.replace(',"journal":[', ',"extra":{"journal":[]},"journal":[', 1),
    ]


@SETTINGS
@given(journal=journals(), raw=st.lists(st.dictionaries(st.text(max_size=3), json_values)))
def test_any_layout_of_the_text_reads_as_json_loads_reads_it(
    journal: Journal, raw: list[dict[str, Any]]
) -> None:
    text = dump_state(_state(journal, raw))
    for layout in _layouts(text):
        canonical = json.dumps(json.loads(layout), separators=(",", ":"), ensure_ascii=False)
        try:
            expected: str | type[Exception] = dump_state(load_state(canonical))
        except StateFormatError:
            expected = StateFormatError
        if expected is StateFormatError:
            with pytest.raises(StateFormatError):
                load_state(layout)
        else:
            assert dump_state(load_state(layout)) == expected


def test_a_frame_holding_objects_that_start_like_frames_is_read_whole() -> None:
    # The separator between frames occurs inside this one: the journal is then parsed whole.
    nested = {"items": [{"type": "a"}, {"type": "b"}, {"type": "c"}]}
    state = _state(Journal([], Expected()), [{"x": 1}, nested, {"y": 2}] * 300)
    text = dump_state(state)
    restored = load_state(text)
    assert dump_state(restored) == text
    assert restored.conversation.event_at(2).payload == nested  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{,"journal":[{"type":"EVENT_TYPE_HEARTBEAT","payload":{}}]}', "not valid JSON"),
        ('{"format":1,"journal":[{"type":"EVENT_TYPE_HEARTBEAT","payload":{}}]]}', "not valid"),
        ('{"format":1,"journal":[{"type":"A","payload":{}},{"type":"B","payload":{', "not valid"),
        ('{"format":1,"session_id":"s","journal":[{"type":"A"},{"type":5}]}', r"journal\[1\]"),
    ],
)
def test_malformed_texts_split_or_not_say_what_json_loads_says(text: str, message: str) -> None:
    with pytest.raises(StateFormatError, match=message):
        load_state(text)


# --- counting ------------------------------------------------------------------------------------


def _largest_parse(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records how many frames each parse made (a list of frames, or a saved object's journal)."""
    sizes: list[int] = []
    parse = _persist._orjson_loads

    def counted(data: Any) -> Any:
        value = parse(data)
        if isinstance(value, list):
            sizes.append(len(value))
        elif isinstance(value, dict):
            sizes.append(len(value.get("journal", ())))
        return value

    monkeypatch.setattr(_persist, "_orjson_loads", counted)
    return sizes


def test_load_state_parses_a_chunk_of_frames_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    text = dump_state(_grown(3 * _persist.CHUNK + 10))
    sizes = _largest_parse(monkeypatch)
    restored = load_state(text)
    assert restored.conversation.cursor == 3 * _persist.CHUNK + 10
    assert sizes
    assert max(sizes) <= _persist.CHUNK
    assert sum(sizes) == 3 * _persist.CHUNK + 10 - 1  # the last frame is read with the fields


def test_dump_state_builds_a_chunk_of_frames_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    state = _grown(3 * _persist.CHUNK + 10)
    sizes: list[int] = []
    encode = _persist._orjson_dumps

    def counted(frames: list[Any], **options: Any) -> bytes:
        sizes.append(len(frames))
        return encode(frames, **options)

    monkeypatch.setattr(_persist, "_orjson_dumps", counted)
    assert dump_state(state) == _reference_dump(state)
    assert sizes == [_persist.CHUNK] * 3 + [10]


def test_a_restored_state_holds_few_objects_per_event() -> None:
    # What the garbage collector walks in every full collection once a state is restored.
    size = 2_000
    text = dump_state(_grown(size))
    gc.collect()
    before = len(gc.get_objects())
    restored = load_state(text)
    gc.collect()
    held = len(gc.get_objects()) - before
    assert restored.conversation.cursor == size
    assert held <= 6 * size


def _upper_nodes(records: Any) -> list[Any]:
    """The nodes of a records map (``immutables.Map``) with more than 16 children."""
    found, todo = [], [records]
    while todo:
        node = todo.pop()
        children = gc.get_referents(node)
        if len(children) > 16:
            found.append(node)
        todo.extend(c for c in children if not isinstance(c, str | MessageRecord))
    return found


def test_a_long_fold_leaves_the_records_maps_upper_nodes_out_of_the_young_generations() -> None:
    # A young collection walks every object of the young generations and touches each child.
    # Set event by event, the records map's upper nodes (32 children each) are rebuilt for
    # every event, so after folding a long history (load_state) they are all young; fold
    # builds each once, and most are long promoted by the end.
    size = 40_000
    events = [decode_object(frame) for frame in _frames(size)]

    def young_upper_nodes(conversation: Conversation) -> tuple[int, int]:
        young = {id(item) for generation in (0, 1) for item in gc.get_objects(generation)}
        upper = _upper_nodes(conversation.records)
        return sum(id(node) in young for node in upper), len(upper)

    gc.collect()
    stepwise = Conversation()
    for event in events:
        stepwise = apply(stepwise, event)
    young, upper = young_upper_nodes(stepwise)
    assert upper > 1000
    assert young > upper * 0.9  # what fold avoids
    del stepwise
    gc.collect()
    folded = fold(events)
    young, upper = young_upper_nodes(folded)
    assert upper > 1000
    assert young < upper * 0.25
