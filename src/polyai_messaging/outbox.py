"""The outbox of user messages awaiting their echo (protocol §6.4), as pure values.

A message is sent, then checked 5 s later; without an echo it is resent, and after the k-th
resend the next check waits 5 s x k; after the last allowed resend's wait it is failed. Its
``client_event_id`` never changes, so resends that all reach the server fold into one message.
"""

from __future__ import annotations

import attrs

from .effects import DeliveryStatus

__all__ = ["OutboxEntry", "check_delay"]


@attrs.frozen
class OutboxEntry:
    """One user message and where its delivery stands."""

    client_event_id: str
    text: str
    status: DeliveryStatus = DeliveryStatus.PENDING
    transmissions: int = 0
    """How many times the frame was put on a socket (1 + resends)."""
    next_check: float | None = None
    """Monotonic time of the next echo check while the link is open."""
    message_id: str | None = None
    """Server ``message_id`` from the echo, once sent."""

    @property
    def awaiting_echo(self) -> bool:
        return self.status is DeliveryStatus.PENDING and self.transmissions > 0


def check_delay(transmissions: int, first_check: float) -> float:
    """Seconds from the ``transmissions``-th transmission to its echo check: 5, 5, 10, 15..."""
    return first_check * max(1, transmissions - 1)
