"""The runtime both adapters share: everything about a running session that is not the loop.

An adapter (``polyai_messaging.trio``, ``polyai_messaging.asyncio``) supplies an event loop,
sockets and one timer; the :class:`SessionRuntime` it subclasses decides the rest: stepping the
driver, dispatching its effects, logging (redacted, tagged with session and link), snapshots
(:class:`Update`), the bounded :class:`EventStream`, replacement sessions and the single-flight
:class:`TokenCache`. To run sessions on another loop, subclass :class:`SessionRuntime` and
implement the :class:`Adapter` methods; the socket ones come for free when each running link, a
:class:`LinkHandle`, is kept in ``Engine.links``.
"""

from ._engine import MIN_REWAKE_SECONDS, Clock, Engine, EngineOptions, LinkTarget, SessionFactory
from ._feed import EventStream, Update, Updates
from ._logs import RedactingLogger, redacted
from ._loop import MAX_INBOUND_MESSAGE, Adapter, Event, LinkHandle, QueuedClose, raise_unwrapped
from ._retry_after import parse_http_date, parse_retry_after
from ._session import SessionRuntime
from ._tokens import Token, TokenCache, TokenProvider, TokenUnavailableError

__all__ = [
    "MAX_INBOUND_MESSAGE",
    "MIN_REWAKE_SECONDS",
    "Adapter",
    "Clock",
    "Engine",
    "EngineOptions",
    "Event",
    "EventStream",
    "LinkHandle",
    "LinkTarget",
    "QueuedClose",
    "RedactingLogger",
    "SessionFactory",
    "SessionRuntime",
    "Token",
    "TokenCache",
    "TokenProvider",
    "TokenUnavailableError",
    "Update",
    "Updates",
    "parse_http_date",
    "parse_retry_after",
    "raise_unwrapped",
    "redacted",
]
