"""Open a session against a local emulator on asyncio, greet the agent, send a message.

Run: ``python examples/quickstart_asyncio.py`` (needs the ``asyncio`` and ``emulator`` extras).
Nothing here imports trio.
"""

import asyncio

from polyai_messaging.asyncio import open_session
from polyai_messaging.testing import open_emulator


async def main() -> None:
    async with open_emulator() as emulator, open_session(
        emulator.base_url, emulator.token_provider
    ) as session:
        greeting = await session.wait_reply()
        print("Agent:", greeting.conversation.transcript[-1].text)
        sent = await session.send("I'd like to book a table")
        reply = await session.wait_reply(sent)
        print("Agent:", reply.conversation.transcript[-1].text)


if __name__ == "__main__":
    asyncio.run(main())
