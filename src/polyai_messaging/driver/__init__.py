"""The sans-I/O session driver: ``step(state, input, now) -> (state, effects)``.

Everything a client does on a connection is decided here, without I/O: when to join, when to
heartbeat, when a silent link is dead, when and where to reconnect, what to resend, when the
session is over. An adapter feeds the inputs below and executes the effects; the state answers
one question about time, :attr:`SessionState.deadline`. The URL helpers build endpoints
(``wss://`` enforced off loopback) and redacts secrets; :func:`dump_state` and
:func:`load_state` save and restore a session.
"""

from ._backoff import Backoff
from ._checks import EchoChecks
from ._effects import (
    AbortSocket,
    Applied,
    CloseSocket,
    Delivery,
    DeliveryStatus,
    Effect,
    Finished,
    FinishKind,
    LinkStatus,
    NeedNewSession,
    NewSessionReason,
    OpenSocket,
    ProtocolViolation,
    Resumed,
    ResumeKind,
    SendFrame,
    StatusChanged,
    WakeAt,
)
from ._endpoints import (
    API_PREFIX,
    DEFAULT_BASE_URL,
    WEBSOCKET_PATH,
    Cluster,
    access_token_url,
    base_url_for,
    check_transport_security,
    is_loopback_host,
    redact_text,
    redact_url,
    sessions_url,
    websocket_url,
)
from ._inputs import (
    ConnectFailed,
    EndSession,
    FrameReceived,
    HandshakeFailed,
    Input,
    LinkClosed,
    LinkOpened,
    NewSessionFailed,
    Now,
    PickSuggestion,
    SendText,
    SetTyping,
    Start,
    StartNewSession,
    WakeUp,
)
from ._outbox import RECENT_DELIVERIES, Outbox, OutboxEntry
from ._persist import StateFormatError, dump_state, event_to_wire, load_state
from ._state import Counters, SessionConfig, SessionState
from ._step import step

__all__ = [
    "API_PREFIX",
    "DEFAULT_BASE_URL",
    "RECENT_DELIVERIES",
    "WEBSOCKET_PATH",
    "AbortSocket",
    "Applied",
    "Backoff",
    "CloseSocket",
    "Cluster",
    "ConnectFailed",
    "Counters",
    "Delivery",
    "DeliveryStatus",
    "EchoChecks",
    "Effect",
    "EndSession",
    "FinishKind",
    "Finished",
    "FrameReceived",
    "HandshakeFailed",
    "Input",
    "LinkClosed",
    "LinkOpened",
    "LinkStatus",
    "NeedNewSession",
    "NewSessionFailed",
    "NewSessionReason",
    "Now",
    "OpenSocket",
    "Outbox",
    "OutboxEntry",
    "PickSuggestion",
    "ProtocolViolation",
    "ResumeKind",
    "Resumed",
    "SendFrame",
    "SendText",
    "SessionConfig",
    "SessionState",
    "SetTyping",
    "Start",
    "StartNewSession",
    "StateFormatError",
    "StatusChanged",
    "WakeAt",
    "WakeUp",
    "access_token_url",
    "base_url_for",
    "check_transport_security",
    "dump_state",
    "event_to_wire",
    "is_loopback_host",
    "load_state",
    "redact_text",
    "redact_url",
    "sessions_url",
    "step",
    "websocket_url",
]
