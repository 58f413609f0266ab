"""What one message costs the driver: counted, not timed.

A round trip is two steps: the send (``SendText`` on a settled link, out comes ``SendFrame``)
and its echo (``FrameReceived``, out comes ``Delivery(SENT)``). Run after a pause, with the
processor's caches cold, a step costs several times what it does warm, in proportion to the
Python it runs and the objects it makes, so both are bounded here: lines of driver code run (a
count that, unlike a time, is the same on any machine), copies of the state and the outbox, and
the deadline worked out. The bounds hold however long the conversation already is.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import model_server
from model_server import Link, ModelServer, agent_message, batch, dumps, joined, session_start
from model_server import event as server_event
from polyai_messaging.driver import (
    Delivery,
    DeliveryStatus,
    Effect,
    FrameReceived,
    LinkOpened,
    Now,
    SendFrame,
    SendText,
    SessionState,
    Start,
    WakeAt,
    WakeUp,
    step,
)
from polyai_messaging.driver import _intents as intents_module
from polyai_messaging.driver import _outbox as outbox_module
from polyai_messaging.driver import _turn as turn_module
from polyai_messaging.driver._backoff import random_bits, random_uuid4

DRIVER = "polyai_messaging/driver/"
TEXT = "I'd like a table for four tomorrow at 7pm, please"

SEND_DRIVER_LINES = 135
"""Lines of driver code a send runs at most (118 when written; 260 when it copied the outbox
three times and the state three times, and worked the deadline out)."""
ECHO_DRIVER_LINES = 180
"""Lines of driver code an echo runs at most (156 when written; 214 when it copied the outbox
three times and the state five times)."""


class Conversation:
    """A settled session fed by hand, and the frames of its round trips."""

    def __init__(self) -> None:
        self.state = SessionState.new("cost", seed=11)
        self.t = 10.0
        self.sequence = 4
        self.sent = 0
        history = (
            session_start(1),
            server_event("REQUEST_POLY_AGENT_JOIN", 2),
            joined(3),
            agent_message(4),
        )
        self.feed(Start())
        self.feed(LinkOpened(self.state.generation))
        self.feed(FrameReceived(self.state.generation, dumps(batch(*history))))
        self.t += 1.0
        self.feed(WakeUp())
        assert self.state.settled

    @property
    def now(self) -> Now:
        return Now(self.t, 1_700_000_000.0 + self.t)

    def feed(self, event: Any) -> list[Effect]:
        self.t += 0.001
        self.state, effects = step(self.state, event, self.now)
        return effects

    def send(self) -> str:
        """A message sent: its generated ``client_event_id``."""
        self.sent += 1
        (delivery,) = [e for e in self.feed(SendText(TEXT)) if isinstance(e, Delivery)]
        return delivery.client_event_id

    def echo(self, client_event_id: str) -> FrameReceived:
        """The echo of a message sent, as the next frame."""
        self.sequence += 1
        frame = model_server.user_echo(self.sequence, client_event_id, TEXT)
        return FrameReceived(self.state.generation, dumps(frame))

    def reply(self) -> None:
        self.sequence += 1
        self.feed(FrameReceived(self.state.generation, dumps(agent_message(self.sequence))))

    def exchange(self) -> None:
        self.feed(self.echo(self.send()))
        self.reply()


def lines_run(work: Callable[[], Any]) -> tuple[int, Any]:
    """Lines of driver code ``work`` runs, and its result."""
    count = 0

    def trace(frame: FrameType, event: str, arg: object) -> Callable[..., object] | None:
        nonlocal count
        if event == "line" and DRIVER in frame.f_code.co_filename:
            count += 1
        return trace

    sys.settrace(trace)
    try:
        result = work()
    finally:
        sys.settrace(None)
    return count, result


@contextmanager
def counting(owner: Any, name: str) -> Iterator[list[int]]:
    """Count calls of ``owner.name`` while in the block."""
    calls = [0]
    original = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    setattr(owner, name, counted)
    try:
        yield calls
    finally:
        setattr(owner, name, original)


@pytest.mark.parametrize("history", [5, 200])
def test_a_send_runs_little_driver_code_and_copies_the_state_and_the_outbox_once(
    history: int,
) -> None:
    c = Conversation()
    for _ in range(history):
        c.exchange()
    with (
        counting(turn_module.Turn, "update") as state_copies,
        counting(outbox_module.Outbox, "__init__") as outbox_copies,
        counting(SessionState, "_deadline") as deadlines,
    ):
        lines, effects = lines_run(lambda: c.feed(SendText(TEXT)))
    assert [type(e) for e in effects] == [Delivery, SendFrame, WakeAt]
    assert lines <= SEND_DRIVER_LINES
    assert state_copies[0] == 1
    assert outbox_copies[0] == 1
    # The deadline is known (the earlier of the one before and the new echo check), and right.
    assert deadlines[0] == 0
    assert c.state.deadline == attrs.evolve(c.state).deadline == effects[-1].deadline


@pytest.mark.parametrize("history", [5, 200])
def test_an_echo_runs_little_driver_code_and_copies_the_state_and_the_outbox_once(
    history: int,
) -> None:
    c = Conversation()
    for _ in range(history):
        c.exchange()
    echo = c.echo(c.send())
    with (
        counting(turn_module.Turn, "update") as state_copies,
        counting(outbox_module.Outbox, "__init__") as outbox_copies,
        counting(SessionState, "_deadline") as deadlines,
    ):
        lines, effects = lines_run(lambda: c.feed(echo))
    delivery = [e for e in effects if isinstance(e, Delivery)]
    assert [(d.status, d.message_id) for d in delivery] == [(DeliveryStatus.SENT, f"u{c.sequence}")]
    assert lines <= ECHO_DRIVER_LINES
    assert state_copies[0] == 1  # the conversation and the outbox together
    assert outbox_copies[0] == 1
    assert deadlines[0] == 1


def test_an_agent_message_copies_the_state_once_and_the_outbox_never() -> None:
    c = Conversation()
    c.exchange()
    with (
        counting(turn_module.Turn, "update") as state_copies,
        counting(outbox_module.Outbox, "__init__") as outbox_copies,
    ):
        c.reply()
    assert state_copies[0] == 1  # the arrival time and the clock go into the copy made
    assert outbox_copies[0] == 0


def test_a_send_hashes_one_id_and_encodes_one_frame() -> None:
    c = Conversation()
    with (
        counting(intents_module, "random_uuid4") as hashed,
        counting(intents_module, "encode_user_message") as encoded,
    ):
        c.send()
    assert hashed[0] == 1
    assert encoded[0] == 1


@given(st.integers(0, 1 << 64), st.integers(0, 1 << 32))
def test_generated_ids_are_the_uuid4_strings_of_their_random_bits(seed: int, counter: int) -> None:
    """An id written from the digest's hex is the UUID the stream's 128 bits make."""
    bits = random_bits(seed, counter, 128)
    assert random_uuid4(seed, counter) == str(uuid.UUID(int=bits, version=4))


ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("deliver"), st.integers(1, 4)),
        st.tuples(st.just("drop"), st.sampled_from([1006, 4001])),
        st.tuples(st.just("half_open"), st.just(0)),
        st.tuples(st.just("advance"), st.sampled_from([0.2, 1.0, 5.5, 12.0, 31.0])),
        st.tuples(st.just("send"), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(ACTIONS)
# A link closing (to resume) on a half-open socket: its liveness deadline fell before the close
# timeout, and waking the driver then did nothing, so the deadline never moved.
@example([("advance", 12.0), ("advance", 12.0), ("advance", 31.0), ("half_open", 0),
          ("send", 0), ("advance", 12.0)])  # fmt: skip
def test_every_state_a_step_returns_has_the_deadline_a_fresh_copy_works_out(
    actions: list[tuple[str, Any]],
) -> None:
    """The deadline a step leaves in the state's cache (known or worked out) is the one its
    fields give."""
    checked = [0]
    original = model_server.step

    def checking(state: SessionState, event: Any, now: Now) -> tuple[SessionState, list[Effect]]:
        after, effects = original(state, event, now)
        assert after.deadline == attrs.evolve(after).deadline
        checked[0] += 1
        return after, effects

    model_server.step = checking
    try:
        server = ModelServer(heartbeat_interval_seconds=10, batch_size=2)
        link = Link(SessionState.new("fresh", seed=3), server)
        link.feed(Start())
        link.settle()
        for number, (action, argument) in enumerate(actions):
            if action == "deliver":
                link.deliver(argument)
            elif action == "drop":
                link.drop(argument)
            elif action == "half_open":
                link.half_open = True
            elif action == "advance":
                link.advance(argument)
            elif link.state.finished is None:
                link.feed(SendText(f"message {number}"))
    finally:
        model_server.step = original
    assert checked[0] > 0


def test_the_states_of_a_long_session_keep_their_fields_in_the_smallest_table() -> None:
    """Each state is a copy of the one before: a table that grows once stays grown in every
    state that follows, and an idle session holds one for its whole life."""
    c = Conversation()
    for _ in range(60):
        c.exchange()
        c.t += 3.0
        c.feed(WakeUp())  # a heartbeat
    fields = c.state.__dict__
    assert sys.getsizeof(fields) == sys.getsizeof(dict(fields))
    assert sys.getsizeof(SessionState.new("fresh").__dict__) == sys.getsizeof(dict(fields))
