"""Property: whatever the link does, every user message is stored once or FAILED.

Random link-failure schedules (drops at random points, half-open links that silently lose
outbound and inbound frames until the driver notices, links that break mid-delivery, duplicated
inbound frames, random time advances) run the driver against the model server while
the app sends N user messages. Then the link is left stable and the driver runs its deadlines.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model_server import Link, ModelServer
from polyai_messaging.driver import DeliveryStatus, LinkStatus, SendText, SessionState, Start

ACTIONS = st.one_of(
    st.tuples(st.just("deliver"), st.integers(1, 6)),
    st.tuples(st.just("duplicate"), st.integers(1, 3)),
    st.tuples(st.just("lose_inbound"), st.integers(1, 3)),
    st.tuples(st.just("half_open"), st.just(0)),
    st.tuples(st.just("drop"), st.sampled_from([1006, 1001, 1011])),
    st.tuples(st.just("advance"), st.sampled_from([0.1, 0.5, 1.0, 3.0, 5.0, 12.0, 31.0])),
    st.tuples(st.just("send"), st.just(0)),
)


def run(schedule: list[tuple[str, Any]], messages: int, seed: int) -> tuple[Link, ModelServer]:
    # max_reconnect_attempts 0: no cap, so the only way to fail is to exhaust resends
    server = ModelServer(heartbeat_interval_seconds=10, max_reconnect_attempts=0, batch_size=3)
    link = Link(SessionState.new("prop", seed=seed), server)
    link.feed(Start())
    sent = 0

    def send() -> None:
        nonlocal sent
        if sent < messages:
            link.feed(SendText(f"message {sent}", f"c{sent}"))
            sent += 1

    for action, arg in schedule:
        if action == "deliver":
            link.deliver(arg)
        elif action == "duplicate":
            link.deliver(arg, duplicate=True)
        elif action == "lose_inbound":
            # frames are only lost when a link breaks: some get through, the rest are lost
            link.deliver(arg)
            link.drop()
        elif action == "half_open":
            # the link dies silently: frames in both directions are lost until it is noticed
            link.half_open = True
        elif action == "drop":
            link.drop(arg)
        elif action == "advance":
            link.advance(arg)
        else:
            send()
    while sent < messages:
        send()
    # a stable link from here on: deliver everything and let the deadlines run
    for _ in range(400):
        link.deliver()
        done = all(e.status is not DeliveryStatus.PENDING for e in link.state.outbox)
        if done and not link.inbound and link.state.link is LinkStatus.OPEN:
            break
        link.advance(1.0)
    link.advance(1.0)  # one more quiet period: a replay in flight settles
    link.deliver()
    return link, server


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    schedule=st.lists(ACTIONS, max_size=40),
    messages=st.integers(1, 4),
    seed=st.integers(0, 3),
)
def test_every_message_delivered_once_or_failed(
    schedule: list[tuple[str, Any]], messages: int, seed: int
) -> None:
    link, server = run(schedule, messages, seed)
    state = link.state
    assert state.finished is None
    assert state.link is LinkStatus.OPEN
    config = state.config

    # the client has the whole server history: nothing the server journaled is lost
    assert state.conversation.cursor == len(server.journal)
    assert not state.conversation.gaps
    transcript = state.conversation.transcript
    stored = [f["metadata"]["custom"]["client_event_id"] for f in server.user_messages()]
    assert len(stored) == len(set(stored)), "a message was stored twice"
    on_server = set(stored)
    in_transcript = [m.client_event_id for m in transcript if m.client_event_id]
    assert len(in_transcript) == len(set(in_transcript)), "a message is shown twice"
    assert set(in_transcript) == on_server

    assert len(state.outbox) == messages
    for entry in state.outbox:
        assert entry.status is not DeliveryStatus.PENDING
        shown = [m for m in transcript if m.client_event_id == entry.client_event_id]
        if entry.status is DeliveryStatus.SENT:
            assert len(shown) == 1
            assert shown[0].text == entry.text
            assert entry.message_id == shown[0].message_id
        else:  # FAILED only when every allowed resend went out without a timely echo
            assert entry.transmissions == 1 + config.max_resends, entry
            assert len(shown) <= 1  # an echo may still arrive after the budget ran out
    # the join was requested exactly when needed: once, by the first settled connection
    joins = [f for f in server.received if f["type"] == "EVENT_TYPE_REQUEST_POLY_AGENT_JOIN"]
    assert len(joins) >= 1
    assert state.conversation.agent_joined


def test_smoke_no_failures() -> None:
    link, server = run([("send", 0), ("deliver", 6), ("send", 0)], 3, 0)
    assert [e.status for e in link.state.outbox] == [DeliveryStatus.SENT] * 3
    assert len(server.user_messages()) == 3
    assert link.state.counters.resends == 0
