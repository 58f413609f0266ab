"""Serve many chats from one asyncio process: a session per end user, replies streamed back.

A :class:`ChatService` keeps one Messaging session per end user and streams each reply back to
that user as it grows (here, each user is a task that prints what it receives). All sessions
share one event loop, one emulator and the token provider.

Run: ``python examples/many_chats_asyncio.py [USERS]`` (needs the ``asyncio`` and ``emulator``
extras).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

from polyai_messaging import Conversation, Role
from polyai_messaging.asyncio import Session, open_session
from polyai_messaging.emulator import EmulatorConfig
from polyai_messaging.runtime import TokenProvider
from polyai_messaging.testing import open_emulator

Deliver = Callable[[str], Awaitable[None]]
"""Sends a piece of the agent's reply to the end user (a websocket of your web app, say)."""


class ChatService:
    """Chats with the agent on behalf of end users, one session each."""

    def __init__(self, base_url: str, token_provider: TokenProvider) -> None:
        self._base_url = base_url
        self._token_provider = token_provider

    async def chat(self, user: str, lines: list[str], deliver: Deliver) -> Conversation:
        """Send the user's ``lines`` one after the other; stream every reply to ``deliver``."""
        async with open_session(self._base_url, self._token_provider, streaming=True) as session:
            await self._stream_reply(session, None, deliver)
            for line in lines:
                await self._stream_reply(session, await session.send(line), deliver)
            await session.end()
            await session.wait_finished()
            return session.conversation

    async def _stream_reply(self, session: Session, sent: str | None, deliver: Deliver) -> None:
        """Deliver the reply to message ``sent`` (``None``: the greeting) as it streams in."""
        shown = 0
        async for update in session.updates():
            conversation = update.conversation
            text = _reply_text(conversation, sent)
            if len(text) > shown:
                await deliver(text[shown:])
                shown = len(text)
            if update.finished is not None or conversation.reply_complete(sent):
                await deliver("\n")
                return


def _reply_text(conversation: Conversation, sent: str | None) -> str:
    """The text of the reply to message ``sent`` so far (a stream still arriving included)."""
    after = -1
    if sent is not None:
        mine = conversation.delivered(sent)
        if mine is None or mine.sequence is None:
            return ""  # the message's echo has not come yet
        after = mine.sequence
    replies = [
        message.text
        for message in conversation.transcript
        if message.role in (Role.AGENT, Role.LIVE_AGENT) and (message.sequence or 0) > after
    ]
    return "".join(replies)


async def main(users: int = 20, config: EmulatorConfig | None = None) -> dict[str, list[str]]:
    """Run ``users`` chats at once; return the pieces each user received."""
    received: dict[str, list[str]] = {}

    async def user(service: ChatService, name: str) -> None:
        pieces = received[name] = []

        async def deliver(piece: str) -> None:
            pieces.append(piece)

        await service.chat(name, [f"Hello, I am {name}", "Thanks!"], deliver)

    async with open_emulator(config) as emulator:
        service = ChatService(emulator.base_url, emulator.token_provider)
        async with asyncio.TaskGroup() as tasks:
            for number in range(users):
                tasks.create_task(user(service, f"user-{number}"))
    return received


if __name__ == "__main__":
    # The emulator's agent streams each reply in chunks 20 ms apart, as a person would see it.
    streamed = EmulatorConfig.fast(chunk_delay_seconds=0.02)
    users = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    for name, pieces in asyncio.run(main(users, streamed)).items():
        print(f"--- {name} ({len(pieces)} pieces)\n{''.join(pieces)}", end="")
