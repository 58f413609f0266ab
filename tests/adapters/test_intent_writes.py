"""How an intent reaches the socket on an idle link, on each loop: its frame is written before
the call returns, without a task (asyncio writes it at once, without yielding first; on trio the
caller writes it), and a call cancelled before it executes sends nothing."""

from __future__ import annotations

import asyncio

import pytest
import trio
import trio_websocket

from polyai_messaging.testing import LocalEmulator

from .helpers import Adapter, client_tasks, replied, started_client_tasks, until, wait_for

pytestmark = pytest.mark.anyio


async def test_a_message_on_an_idle_link_is_written_before_send_returns_without_a_task(
    adapter: Adapter, emulator: LocalEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        await until(lambda: "Link._write" not in client_tasks())
        written: list[str] = []  # each frame's text, once the socket has been handed it
        if adapter.name == "trio":
            send_message = trio_websocket.WebSocketConnection.send_message

            async def recording(ws: trio_websocket.WebSocketConnection, text: str) -> None:
                await send_message(ws, text)
                written.append(text)

            monkeypatch.setattr(trio_websocket.WebSocketConnection, "send_message", recording)
        else:
            ws = session.links[session.state.generation]._open  # type: ignore[attr-defined]
            send_text, write = ws.protocol.send_text, ws.transport.write
            texts: list[bytes] = []

            def writing(data: bytes) -> None:
                write(data)
                written.extend(text.decode() for text in texts)
                texts.clear()

            def encoding(data: bytes) -> None:
                texts.append(data)
                send_text(data)

            monkeypatch.setattr(ws.protocol, "send_text", encoding)
            monkeypatch.setattr(ws.transport, "write", writing)
        with started_client_tasks() as started:
            await session.send("hello", client_event_id="c-1")
        assert len(written) == 1
        assert '"c-1"' in written[0]
        assert started == []


async def test_a_message_on_asyncio_is_sent_without_yielding_to_the_loop(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    if adapter.name != "asyncio":
        pytest.skip("trio's send yields as it writes (trio-websocket's lock and socket)")
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        ran: list[str] = []
        asyncio.get_running_loop().call_soon(ran.append, "another callback")
        await session.send("hello")
        assert ran == []


async def test_a_send_cancelled_before_it_executes_sends_nothing(
    adapter: Adapter, emulator: LocalEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        sent: list[str] = []
        send_frame = session.send_frame

        def counting(generation: int, text: str) -> bool:
            sent.append(text)
            return send_frame(generation, text)

        monkeypatch.setattr(session, "send_frame", counting)
        if adapter.name == "trio":
            with trio.CancelScope() as scope:
                scope.cancel()
                await session.send("hello", client_event_id="c-1")
            assert scope.cancelled_caught
        else:
            # Requested of the task (as a timeout's expiry or another task's cancel does); a
            # scope cancelled by its own task (anyio's) is delivered at the next wait instead.
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await session.send("hello", client_event_id="c-1")
            task.uncancel()
        assert session.delivery_status("c-1") is None
        assert sent == []
        await session.send("hello", client_event_id="c-2")  # not cancelled: sent
        assert len(sent) == 1
