"""Replacement sessions: when the server no longer knows the session (a handshake refused with
401 or 404, a close with 4001), the client carries on in a new one, a bounded number of times."""

from __future__ import annotations

import anyio
import attrs
import pytest

from polyai_messaging.driver import Backoff, DeliveryStatus, FinishKind, LinkStatus
from polyai_messaging.rest import RetryPolicy, ServerError
from polyai_messaging.testing import LocalEmulator

from .helpers import FAST, TIMEOUT, Adapter, CountingProvider, replied, wait_for

pytestmark = pytest.mark.anyio


async def test_handshake_401_creates_a_new_session_with_a_fresh_token(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    provider = CountingProvider(emulator.token_provider)
    async with adapter.session(emulator, provider) as session:
        await wait_for(session, replied(1))
        first_id = session.session_id
        emulator.set_faults("refuse=401:1")
        emulator.state.drop_sockets(first_id)
        update = await wait_for(
            session, lambda u: u.state.session_id != first_id and replied(1)(u), timeout=8
        )
        assert len(provider.tokens) == 2
        assert provider.tokens[0].secret != provider.tokens[1].secret
        assert update.conversation.transcript[-1].text.startswith("Hi, I'm Ada")
        assert session.finished is None
        await session.send("still there?")
        await wait_for(session, replied(2))


@pytest.mark.parametrize("when", ["first-socket", "reconnect"])
async def test_close_4001_moves_to_a_new_session_that_delivers(
    adapter: Adapter, emulator: LocalEmulator, when: str
) -> None:
    """The server closes a socket with 4001 ("session unknown") right after its replay: the
    client carries on in a new session, where a message is delivered exactly once."""
    if when == "first-socket":
        emulator.set_faults("close=4001")
    config = attrs.evolve(FAST, backoff=Backoff(base=0.05))
    async with adapter.session(emulator, config=config) as session:
        first_id = next(iter(emulator.state.sessions))
        if when == "reconnect":
            await wait_for(session, replied(1))
            emulator.set_faults("close=4001")
            emulator.state.drop_sockets(first_id)
        update = await wait_for(
            session,
            lambda u: (
                u.state.session_id != first_id
                and u.status is not None
                and u.status.status is LinkStatus.OPEN
                and replied(1)(u)
            ),
        )
        new_id = update.state.session_id
        assert session.session_id == new_id
        assert set(emulator.state.sessions) == {first_id, new_id}
        assert session.finished is None

        sent = await session.send("are you still there?")
        update = await wait_for(session, lambda u: u.conversation.delivered(sent) is not None)
        assert session.delivery_status(sent) is DeliveryStatus.SENT
        assert update.state.session_id == new_id
        copies = {
            session_id: [
                entry
                for entry in emulator.journal(session_id)
                if entry.type == "EVENT_TYPE_USER_MESSAGE" and sent in entry.text
            ]
            for session_id in (first_id, new_id)
        }
        assert len(copies[new_id]) == 1
        assert copies[first_id] == []
        assert copies[new_id][0].event["payload"]["text"] == "are you still there?"


async def test_replacement_sessions_are_bounded(adapter: Adapter, emulator: LocalEmulator) -> None:
    provider = CountingProvider(emulator.token_provider)
    config = attrs.evolve(FAST, max_new_sessions=2)
    async with adapter.session(emulator, provider, config=config) as session:
        await wait_for(session, replied(1))
        emulator.set_faults("refuse=404:10")
        emulator.state.drop_sockets(session.session_id)
        with anyio.fail_after(2 * TIMEOUT):
            finished = await session.wait_finished()
        assert finished.kind is FinishKind.NEW_SESSION_REQUIRED
        assert finished.reason is not None
        assert finished.reason.startswith("session_not_found")
        # One token for the first session, one fresh token per replacement.
        assert len(provider.tokens) == 3
        assert len(emulator.state.sessions) == 3


async def test_a_replacement_that_cannot_be_created_finishes_the_session(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    """Creating the replacement answers 500 every time: the REST call's own retries run out
    (about three seconds), and the session finishes with the error."""
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        emulator.set_faults("refuse=401:1,fail-session=5")
        emulator.state.drop_sockets(session.session_id)
        with anyio.fail_after(3 * TIMEOUT):
            finished = await session.wait_finished()
        assert finished.kind is FinishKind.NEW_SESSION_REQUIRED
        assert isinstance(session.error, ServerError)
        assert session.latest.finished == finished
        assert len(emulator.state.sessions) == 1


async def test_creating_sessions_retries_as_the_retry_policy_says(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    """``open_session(retry=...)``: creating the first session and a replacement both follow
    the policy, whose ``on_retry`` sees every retry (so a program can show progress)."""
    notices: list[tuple[int, int, float]] = []
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)  # the policy's waits, not made: the test needs no real time

    def on_retry(error: Exception, attempt: int, delay: float) -> None:
        assert isinstance(error, ServerError)
        notices.append((error.status or 0, attempt, delay))

    retry = RetryPolicy(max_attempts=4, sleep=sleep, on_retry=on_retry)
    emulator.set_faults("fail-session=2")
    async with adapter.session(emulator, retry=retry) as session:
        await wait_for(session, replied(1))
        assert [(status, attempt) for status, attempt, _ in notices] == [(500, 2), (500, 3)]
        assert [delay for *_, delay in notices] == slept
        first_id = session.session_id
        emulator.set_faults("refuse=401:1,fail-session=1")
        emulator.state.drop_sockets(first_id)
        await wait_for(
            session, lambda u: u.state.session_id != first_id and replied(1)(u), timeout=8
        )
    assert [attempt for _, attempt, _ in notices] == [2, 3, 2]
    assert len(slept) == 3
