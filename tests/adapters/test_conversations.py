"""Conversations and handoffs end to end, and what the application reads: snapshots, events."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from polyai_messaging.core import (
    ClientHandoffRequired,
    HandoffAccepted,
    HandoffFailed,
    HandoffQueueStatus,
    HandoffTimeout,
    LiveAgentJoined,
    LiveAgentLeft,
    LiveAgentMessage,
    LocalProtocolError,
    Phase,
    PolyAgentLeft,
    PolyAgentTriggeredHandoff,
    Role,
    SessionEnd,
    UserMessageEcho,
)
from polyai_messaging.driver import DeliveryStatus, FinishKind
from polyai_messaging.testing import LocalEmulator

from .helpers import TIMEOUT, Adapter, has_event, replied, stored_copies, until, wait_for

pytestmark = pytest.mark.anyio


# --- conversations --------------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "whole"])
async def test_full_conversation(
    adapter: Adapter, emulator: LocalEmulator, streaming: bool
) -> None:
    async with adapter.session(emulator, streaming=streaming) as session:
        update = await wait_for(session, replied(1))
        greeting = update.conversation.transcript[-1]
        assert greeting.text.startswith("Hi, I'm Ada")
        assert update.conversation.agent is not None
        assert update.conversation.agent.name == "Ada"
        first_suggestion = update.conversation.suggestions[0].message_text
        assert first_suggestion == "I have a question about my order"
        assert greeting.attachments[0].content_url == "https://example.com/locations"

        sent = await session.send("hello there")
        update = await wait_for(session, replied(2))
        assert session.delivery_status(sent) is DeliveryStatus.SENT
        assert update.conversation.transcript[-1].text == (
            'You said: "hello there" (2 words). What else can I do for you?'
        )
        picked = await session.pick(0)
        update = await wait_for(session, replied(3))
        delivered = update.conversation.delivered(picked)
        assert delivered is not None
        assert delivered.text == "Tell me more"

        await session.end()
        with anyio.fail_after(TIMEOUT):
            finished = await session.wait_finished()
        assert finished.kind is FinishKind.ENDED
        assert finished.reason == "REASON_USER_END"
        with pytest.raises(LocalProtocolError):
            await session.send("too late")
        roles = [m.role for m in session.conversation.transcript]
        assert roles == [Role.AGENT, Role.USER, Role.AGENT, Role.USER, Role.AGENT]
        assert type(session.events().drain()[-1]) is SessionEnd
        assert session.state.counters.duplicates_dropped == 0
        assert session.latest.finished == finished
    await until(lambda: emulator.state.open_socket_count(session.session_id) == 0)


async def test_illegal_intents_raise_and_change_nothing(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        before = session.state
        with pytest.raises(LocalProtocolError):
            await session.send("   ")
        with pytest.raises(LocalProtocolError):
            await session.send("x" * 200_000)
        with pytest.raises(LocalProtocolError):
            await session.pick(99)
        assert session.state is before


async def test_frames_go_out_in_order(adapter: Adapter, emulator: LocalEmulator) -> None:
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        sent = [await session.send(f"message {n}") for n in range(20)]
        await wait_for(
            session, lambda u: all(u.state.delivery(c).status is DeliveryStatus.SENT for c in sent)
        )
        assert stored_copies(emulator, session.session_id) == sent


async def test_custom_metadata_reaches_the_server_and_comes_back(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    """``send(custom=...)`` and ``pick(custom=...)``: the pairs go out with the generated
    ``client_event_id``, the server journals them, and the echoes carry them back."""
    async with adapter.session(emulator) as session:
        greeting = await wait_for(session, replied(1))
        assert greeting.conversation.suggestions  # the greeting offers some
        typed = await session.send("order 42?", custom={"order": "42", "channel": "web"})
        picked = await session.pick(0, custom={"source": "suggestion"})
        await wait_for(
            session,
            lambda u: all(
                u.state.delivery(c).status is DeliveryStatus.SENT for c in (typed, picked)
            ),
        )
        stored = {
            entry.event["metadata"]["custom"]["client_event_id"]: entry.event["metadata"]["custom"]
            for entry in emulator.journal(session.session_id)
            if entry.type == "EVENT_TYPE_USER_MESSAGE"
        }
        assert stored[typed] == {"client_event_id": typed, "order": "42", "channel": "web"}
        assert stored[picked] == {"client_event_id": picked, "source": "suggestion"}
        echoes = {
            event.metadata.custom["client_event_id"]: dict(event.metadata.custom)
            for event in session.conversation.timeline
            if type(event) is UserMessageEcho and event.metadata is not None
        }
        assert echoes[typed] == stored[typed]
        assert echoes[picked] == stored[picked]


# --- handoffs -------------------------------------------------------------------------------

HANDOFF_EVENTS = (
    PolyAgentTriggeredHandoff,
    PolyAgentLeft,
    HandoffAccepted,
    HandoffQueueStatus,
    LiveAgentJoined,
    LiveAgentMessage,
    LiveAgentLeft,
    SessionEnd,
)


async def test_server_managed_handoff_with_queue_and_live_agent(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    async with adapter.session(emulator) as session:
        events = session.events()
        await wait_for(session, replied(1))
        await session.send("Talk to a human")
        update = await wait_for(session, lambda u: replied(2)(u) and has_event(LiveAgentJoined)(u))
        conversation = update.conversation
        assert conversation.live_agent is not None
        assert conversation.live_agent.name == "Sarah"
        assert conversation.phase is Phase.ACTIVE
        live = conversation.transcript[-1]
        assert live.role is Role.LIVE_AGENT
        assert live.text.startswith("Hi, I'm Sarah")
        assert conversation.queue is not None
        assert conversation.queue.queue_position == 1

        await session.send("bye")
        with anyio.fail_after(TIMEOUT):
            finished = await session.wait_finished()
        assert finished.reason == "REASON_NATURAL_END"
        handoff = [type(e) for e in events.drain() if type(e) in HANDOFF_EVENTS]
        assert handoff == [
            PolyAgentTriggeredHandoff,
            PolyAgentLeft,
            HandoffAccepted,
            HandoffQueueStatus,
            HandoffQueueStatus,
            LiveAgentJoined,
            LiveAgentMessage,
            LiveAgentLeft,
            SessionEnd,
        ]


async def test_client_managed_handoff(adapter: Adapter, emulator: LocalEmulator) -> None:
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        await session.send("please call me back: callback")
        update = await wait_for(
            session,
            lambda u: has_event(ClientHandoffRequired)(u) and has_event(PolyAgentLeft)(u),
        )
        required = update.conversation.client_handoff
        assert required is not None
        assert required.reason == "COMPLEX_QUERY"
        assert required.queue_name == "Support Queue"
        assert update.conversation.phase is Phase.HANDOFF
        assert session.finished is None


@pytest.mark.parametrize(
    ("text", "outcome"),
    [("handoff fail please", HandoffFailed), ("handoff timeout please", HandoffTimeout)],
    ids=["failed", "timed-out"],
)
async def test_failed_handoffs_are_recoverable(
    adapter: Adapter, emulator: LocalEmulator, text: str, outcome: type[Any]
) -> None:
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        await session.send(text)
        update = await wait_for(session, has_event(outcome))
        assert update.conversation.phase is Phase.ACTIVE
        assert not update.conversation.ended
        assert session.finished is None
        if outcome is HandoffTimeout:
            assert has_event(HandoffQueueStatus)(update)
        await session.send("still there?")  # the conversation goes on with the agent
        update = await wait_for(session, lambda u: replied(3)(u) and u.conversation.agent_joined)
        assert update.conversation.transcript[-1].role is Role.AGENT


# --- what the application reads -------------------------------------------------------------


async def test_slow_consumer_sees_only_the_latest_snapshot(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    async with adapter.session(emulator) as session:
        seen: list[int] = []
        with anyio.fail_after(TIMEOUT):
            async for update in session.updates():
                seen.append(update.version)
                if replied(1)(update):
                    break
                await anyio.sleep(0.2)  # much slower than the server
        assert seen == sorted(set(seen))
        assert len(seen) < session.latest.version  # snapshots were skipped, never queued


async def test_events_channel_drops_oldest_when_full(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    async with adapter.session(emulator, events_capacity=2) as session:
        await wait_for(session, replied(1))
        events = session.events().drain()
        assert len(events) == 2
        assert session.events_dropped > 0
        # The newest survive: the greeting is last.
        assert events[-1].TYPE == "EVENT_TYPE_POLY_AGENT_MESSAGE"
