"""Emulator configuration: one frozen value, documented field by field."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._faults import Faults

__all__ = ["DEMO_CONNECTOR_TOKEN", "DEMO_HOST", "EmulatorConfig"]

DEMO_CONNECTOR_TOKEN = "demo-connector-token"  # noqa: S105 - a public demo value
"""The connector token the default configuration registers (it is not a secret)."""

DEMO_HOST = "localhost"
"""The host the demo connector is registered for; ``http://localhost:8080`` and
``app.localhost`` match it too (scheme, path and port are ignored; subdomains match)."""


def _default_connectors() -> Mapping[str, str | None]:
    return MappingProxyType({DEMO_CONNECTOR_TOKEN: DEMO_HOST})


@dataclass(frozen=True, kw_only=True)
class EmulatorConfig:
    """Everything that shapes the emulator's behaviour.

    The defaults match the documented production values (:ref:`protocol-limits`) and give a
    human-paced agent for demos. Tests usually want :meth:`fast`.
    """

    connectors: Mapping[str, str | None] = field(default_factory=_default_connectors, hash=False)
    """Connector token -> registered host identifier: a domain (``yourcompany.com`` or
    ``https://www.yourcompany.com``) or an app namespace (``com.yourcompany.app``). An ``X-Host``
    is accepted if, scheme, path and port aside, it equals the registered host or adds whole
    labels on its left (a subdomain, ``app.yourcompany.com``); so an app namespace, whose
    children add labels on the right, in effect matches exactly (:ref:`protocol-emulator`).
    ``None`` or ``""`` registers a
    connector with no host, which answers ``Connector missing host domain``. Default: the demo
    connector only."""
    expires_in: int = 86400
    """Access-token lifetime in seconds, returned as ``expires_in``."""
    idle_timeout_seconds: float = 600.0
    """A session with no client frame (heartbeats count) for this long is ended with
    ``REASON_USER_ABANDONED``, its sockets are closed and later handshakes get 404."""
    max_connections_per_session: int = 10
    """Simultaneous sockets per session; one more is refused with 429."""
    max_frame_bytes: int = 131072
    """Largest WebSocket message, in UTF-8 bytes, in either direction. Advertised as
    ``max_message_size_bytes``; larger client frames get ``Message too large``; replay batches
    are split to stay within it."""
    reply_delay_seconds: float = 0.3
    """Pause between the agent's steps (after THINKING, between handoff events)."""
    chunk_delay_seconds: float = 0.05
    """Pause between the chunks of a streamed reply."""
    close_grace_seconds: float = 0.2
    """Pause between ``SESSION_END`` and the server's close (code 1000) of each socket."""
    always_prepend_session_start: bool = False
    """When true, a replay after a cursor past ``SESSION_START`` still starts with it (the API
    says both; :ref:`protocol-emulator`)."""
    heartbeat_interval_seconds: int = 30
    """Advertised in ``SESSION_START.capabilities``."""
    max_reconnect_attempts: int = 5
    """Advertised in ``SESSION_START.capabilities``."""
    http_rate_limit_per_second: float | None = None
    """Optional REST rate limit (per connector token for access tokens, per access token for
    sessions); excess requests get 429 with ``Retry-After``. ``None`` (default) disables it."""
    ws_rate_limit_per_second: float | None = None
    """Optional per-session WebSocket frame rate limit; excess frames are silently dropped.
    ``None`` (default) disables it."""
    faults: Faults = field(default_factory=Faults)
    """The faults active at start-up; see :class:`Faults` and :doc:`/reference/faults`."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "connectors", MappingProxyType(dict(self.connectors)))
        positive = {
            "expires_in": self.expires_in,
            "idle_timeout_seconds": self.idle_timeout_seconds,
            "max_connections_per_session": self.max_connections_per_session,
            "max_frame_bytes": self.max_frame_bytes,
        }
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value}")
        non_negative = {
            "reply_delay_seconds": self.reply_delay_seconds,
            "chunk_delay_seconds": self.chunk_delay_seconds,
            "close_grace_seconds": self.close_grace_seconds,
            "heartbeat_interval_seconds": self.heartbeat_interval_seconds,
            "max_reconnect_attempts": self.max_reconnect_attempts,
        }
        for name, value in non_negative.items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {value}")
        for name in ("http_rate_limit_per_second", "ws_rate_limit_per_second"):
            rate = getattr(self, name)
            if rate is not None and not (math.isfinite(rate) and rate > 0):
                raise ValueError(f"{name} must be positive or None, got {rate}")

    @classmethod
    def fast(cls, **changes: Any) -> EmulatorConfig:
        """A configuration with every scripted delay set to zero, for tests and benchmarks.

        ``changes`` override any field, e.g. ``EmulatorConfig.fast(idle_timeout_seconds=0.5)``.
        """
        zero: dict[str, Any] = {
            "reply_delay_seconds": 0.0,
            "chunk_delay_seconds": 0.0,
            "close_grace_seconds": 0.0,
        }
        return cls(**(zero | changes))

    def replace(self, **changes: Any) -> EmulatorConfig:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)
