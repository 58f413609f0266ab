"""A local emulator of the PolyAI Messaging API, for demos, tests and benchmarks.

It serves ``POST /api/v1/access-token``, ``POST /api/v1/sessions`` and the WebSocket at ``/ws``
on one loopback port, following the protocol reference, with a deterministic scripted agent
(trigger words in :data:`TRIGGERS`) and fault injection that can be switched at runtime. It runs
on whichever event loop starts it, trio or asyncio::

    async with run_emulator(EmulatorConfig.fast()) as emulator:
        # REST at emulator.base_url, WebSocket at emulator.ws_url; the demo connector is
        # DEMO_CONNECTOR_TOKEN registered for DEMO_HOST ("localhost").
        emulator.state.faults = parse_faults("drop-after=3:1")  # or state.set_faults("...")
        journal = emulator.state.session(session_id).journal      # what replays are cut from
        emulator.state.expire_session(session_id)                 # as the idle timeout would

Module map (the modules are private; their public names are exported here): ``_config``
(settings), ``_faults`` (fault spec and counters), ``_wire`` (event names, envelopes, cursors,
batches), ``_journal`` (per-session history), ``_auth`` (connectors, host matching, access
tokens), ``_sessions`` (sessions, sockets, fan-out), ``_agent`` (the scripted agent), ``_state``
(everything in memory), ``_rest`` and ``_websocket`` (the endpoints), ``_app`` (the ASGI app),
``_server`` (hypercorn, TLS, the accept loop) and ``_serve_trio`` / ``_serve_asyncio``
(accepting connections on each loop).

The emulator is independent of the client library: it imports nothing else from
``polyai_messaging``.
"""

from __future__ import annotations

from ._agent_catalogue import ERROR_TRIGGERS, TRIGGERS
from ._app import EmulatorApp
from ._config import DEMO_CONNECTOR_TOKEN, DEMO_HOST, EmulatorConfig
from ._faults import FAULT_HELP, REFUSAL_BODIES, Faults, parse_faults
from ._journal import Journal, JournalEntry
from ._server import DEFAULT_PORT, RunningEmulator, run_emulator, serve_forever
from ._sessions import AgentPhase, Session
from ._state import EmulatorState

__all__ = [
    "DEFAULT_PORT",
    "DEMO_CONNECTOR_TOKEN",
    "DEMO_HOST",
    "ERROR_TRIGGERS",
    "FAULT_HELP",
    "REFUSAL_BODIES",
    "TRIGGERS",
    "AgentPhase",
    "EmulatorApp",
    "EmulatorConfig",
    "EmulatorState",
    "Faults",
    "Journal",
    "JournalEntry",
    "RunningEmulator",
    "Session",
    "parse_faults",
    "run_emulator",
    "serve_forever",
]
