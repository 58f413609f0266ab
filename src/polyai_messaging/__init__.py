"""PolyAI Messaging API client: a pure, event-sourced core with a trio adapter and an emulator.

Layers, from the inside out:

- :mod:`.wire` decodes frames into :mod:`.events` and encodes :mod:`.commands`;
- :func:`.reducer.apply` folds events into an immutable :class:`.Conversation`, whose
  :class:`.Phase` follows the table in :mod:`.phases`;
- :func:`.session.step` is the sans-I/O driver: :mod:`.inputs` in, :mod:`.effects` out;
- the trio adapter (``polyai_messaging.trio_client``), REST calls (:mod:`.rest`) and the local
  emulator (``polyai_messaging.emulator``) are the I/O shells around it.
"""

from .backoff import Backoff
from .commands import Heartbeat, RequestPolyAgentJoin, UserEndSession, UserMessage, UserTyping
from .conversation import Agent, Conversation, Message, Notice, Role, SystemHint, hint_for
from .effects import (
    AbortSocket,
    Applied,
    CloseSocket,
    Delivery,
    DeliveryStatus,
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
from .errors import LocalProtocolError, MessagingError, RemoteProtocolError
from .event_log import EventLog
from .inputs import (
    ConnectFailed,
    EndSession,
    FrameReceived,
    HandshakeFailed,
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
from .persist import StateFormatError, dump_state, load_state
from .phases import Phase, UnexpectedPhaseEvent, next_phase
from .reducer import apply, fold
from .session import Counters, SessionConfig, SessionState, step
from .wire import decode, decode_object, encode, encoded_size

__all__ = [
    "AbortSocket",
    "Agent",
    "Applied",
    "Backoff",
    "CloseSocket",
    "ConnectFailed",
    "Conversation",
    "Counters",
    "Delivery",
    "DeliveryStatus",
    "EndSession",
    "EventLog",
    "FinishKind",
    "Finished",
    "FrameReceived",
    "HandshakeFailed",
    "Heartbeat",
    "LinkClosed",
    "LinkOpened",
    "LinkStatus",
    "LocalProtocolError",
    "Message",
    "MessagingError",
    "NeedNewSession",
    "NewSessionFailed",
    "NewSessionReason",
    "Notice",
    "Now",
    "OpenSocket",
    "Phase",
    "PickSuggestion",
    "ProtocolViolation",
    "RemoteProtocolError",
    "RequestPolyAgentJoin",
    "ResumeKind",
    "Resumed",
    "Role",
    "SendFrame",
    "SendText",
    "SessionConfig",
    "SessionState",
    "SetTyping",
    "Start",
    "StartNewSession",
    "StateFormatError",
    "StatusChanged",
    "SystemHint",
    "UnexpectedPhaseEvent",
    "UserEndSession",
    "UserMessage",
    "UserTyping",
    "WakeAt",
    "WakeUp",
    "apply",
    "decode",
    "decode_object",
    "dump_state",
    "encode",
    "encoded_size",
    "fold",
    "hint_for",
    "load_state",
    "next_phase",
    "step",
]
