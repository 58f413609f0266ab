"""Open a session against a local emulator on trio, greet the agent, send a message.

Run: ``python examples/quickstart_trio.py`` (needs the ``emulator`` extra).
"""

import trio

from polyai_messaging.testing import open_emulator
from polyai_messaging.trio import open_session


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
    trio.run(main)
