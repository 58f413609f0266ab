"""The library's exception hierarchy.

Two families, in the spirit of h11: :class:`LocalProtocolError` when *our* side asked for
something the protocol forbids, and :class:`RemoteProtocolError` when the *server* sent something
we cannot accept. Neither message ever includes a token.
"""

from __future__ import annotations

__all__ = [
    "LocalProtocolError",
    "MessagingError",
    "RemoteProtocolError",
]


class MessagingError(Exception):
    """Base class of every error raised by this library."""


class LocalProtocolError(MessagingError):
    """The application asked for something illegal (send after end, oversized message, ...)."""


class RemoteProtocolError(MessagingError):
    """The server sent something malformed or unacceptable.

    ``path`` names where in the frame the problem is (``payload.chunk_index``), or ``""`` when
    the frame as a whole is at fault.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.reason = message
