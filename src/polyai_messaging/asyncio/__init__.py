"""The asyncio adapter: sessions on asyncio and ``websockets`` (the ``asyncio`` extra).

::

    from polyai_messaging.asyncio import open_session

    async with open_session(base_url, token_provider) as session:
        await session.wait_reply()              # the agent's greeting
        reply = await session.wait_reply(await session.send("Hello"))
        print(reply.conversation.transcript[-1].text)
"""

from ..runtime import MAX_INBOUND_MESSAGE
from ._session import Session, open_session

__all__ = ["MAX_INBOUND_MESSAGE", "Session", "open_session"]
