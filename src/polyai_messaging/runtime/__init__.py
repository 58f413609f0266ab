"""The runtime both adapters share: everything about a running session that is not the loop.

An adapter (``polyai_messaging.trio``, ``polyai_messaging.asyncio``) supplies an event loop,
sockets and one timer; the :class:`SessionRuntime` it subclasses decides the rest: stepping the
driver, dispatching its effects, logging (redacted, tagged with session and link), snapshots
(:class:`Update`), the bounded :class:`EventStream`, replacement sessions and the single-flight
:class:`TokenCache`. To run sessions on another loop, subclass :class:`SessionRuntime` and
implement the :class:`Adapter` methods.
"""

from ._engine import Clock, Engine, LinkTarget, SessionFactory
from ._feed import EventStream, Update, Updates
from ._logs import RedactingLogger, redacted
from ._loop import Adapter, Event
from ._retry_after import parse_http_date, parse_retry_after
from ._session import SessionRuntime
from ._tokens import Token, TokenCache, TokenProvider, TokenUnavailableError

__all__ = [
    "Adapter",
    "Clock",
    "Engine",
    "Event",
    "EventStream",
    "LinkTarget",
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
    "redacted",
]
