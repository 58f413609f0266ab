"""The trio adapter: sessions on trio and trio-websocket.

::

    from polyai_messaging.trio import open_session

    async with open_session(base_url, token_provider) as session:
        await session.wait_reply()              # the agent's greeting
        reply = await session.wait_reply(await session.send("Hello"))
        print(reply.conversation.transcript[-1].text)
"""

from ._session import Session, open_session

__all__ = ["Session", "open_session"]
