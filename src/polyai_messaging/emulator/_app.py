"""The emulator as a raw ASGI 3 application: REST and WebSocket on one port."""

from __future__ import annotations

from ._asgi import Receive, Scope, Send
from ._rest import serve_http
from ._state import EmulatorState
from ._websocket import reject_handshake, serve_websocket

__all__ = ["WS_PATH", "EmulatorApp"]

WS_PATH = "/ws"
"""Where the WebSocket endpoint lives (:ref:`protocol-endpoints`)."""


class EmulatorApp:
    """ASGI application serving ``POST /api/v1/access-token``, ``POST /api/v1/sessions`` and
    the WebSocket at ``/ws``, all backed by one :class:`EmulatorState`.

    The state's :meth:`~EmulatorState.run` must be running (it hosts the agents and the idle
    reaper); :func:`~polyai_messaging.emulator.run_emulator` takes care of that.
    """

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await serve_http(self.state, scope, receive, send)
        elif kind == "websocket":
            if scope["path"] == WS_PATH:
                await serve_websocket(self.state, scope, receive, send)
            else:
                await receive()  # websocket.connect
                await reject_handshake(scope, send, 404, "not found")
        elif kind == "lifespan":
            await _lifespan(receive, send)


async def _lifespan(receive: Receive, send: Send) -> None:
    # Nothing to set up: the state is started by whoever serves the app.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
