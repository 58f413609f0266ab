"""When and how long a failed REST call waits before it is repeated: :class:`RetryPolicy`."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Final

import anyio
import attrs

from ..driver import Backoff
from ._errors import RateLimitedError, RestError, ServerError, TransportError

__all__ = ["RetryPolicy", "Sleep"]

Sleep = Callable[[float], Awaitable[object]]
"""Waits the given number of seconds, like :func:`anyio.sleep`."""


def _check_attempts(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_attempts must be an integer >= 1, got {value!r}")


# attrs' comparisons are false for NaN, so these refuse it too.
_NON_NEGATIVE: Final = attrs.validators.ge(0.0)
_FRACTION: Final = attrs.validators.and_(attrs.validators.ge(0.0), attrs.validators.le(1.0))


@attrs.frozen
class RetryPolicy:
    """When and how long to wait before repeating a failed REST call.

    5xx answers (and, by default, transport failures) are retried with exponential backoff:
    :class:`~polyai_messaging.driver.Backoff` from ``base_delay`` to ``max_delay`` after failed
    attempt ``n``, its jitter drawn from ``rng``. A 5xx ``Retry-After`` is honoured instead,
    within the cap.
    429 waits for ``Retry-After`` (``rate_limit_default_delay`` if absent, capped at
    ``rate_limit_max_delay``). Other 4xx answers, and TLS handshake failures (a certificate that
    does not verify), are never retried. ``max_attempts`` counts the first try.
    """

    max_attempts: int = attrs.field(default=3, validator=_check_attempts)
    base_delay: float = attrs.field(default=1.0, validator=_NON_NEGATIVE)
    max_delay: float = attrs.field(default=30.0, validator=_NON_NEGATIVE)
    jitter: float = attrs.field(default=0.2, validator=_FRACTION)
    rate_limit_default_delay: float = attrs.field(default=5.0, validator=_NON_NEGATIVE)
    rate_limit_max_delay: float = attrs.field(default=30.0, validator=_NON_NEGATIVE)
    retry_transport_errors: bool = True
    rng: random.Random = attrs.field(factory=random.Random, eq=False, repr=False)
    """Source of jitter; inject a seeded one for reproducible delays."""
    sleep: Sleep = attrs.field(default=anyio.sleep, eq=False, repr=False)
    """Async sleep; the default works under trio and asyncio. Inject one to record delays."""
    on_retry: Callable[[RestError, int, float], None] | None = attrs.field(
        default=None, eq=False, repr=False
    )
    """Called before each wait with the error, the number of the attempt to come (2 for the
    first retry) and the delay in seconds: where a program shows progress (``connecting…
    retry 2 of 3 in 1.8 s``) instead of staying silent through the retries."""

    @classmethod
    def no_retry(cls) -> RetryPolicy:
        """A policy that makes exactly one attempt."""
        return cls(max_attempts=1)

    def backoff_delay(self, attempt: int) -> float:
        """Jittered delay after failed attempt number ``attempt`` (1-based); never above the cap."""
        backoff = Backoff(base=self.base_delay, cap=self.max_delay, jitter=self.jitter)
        return backoff.delay(max(attempt, 1), self.rng.random())

    def rate_limit_delay(self, retry_after: float | None) -> float:
        """Delay after a 429 carrying ``retry_after`` seconds (``None`` if absent or invalid)."""
        delay = self.rate_limit_default_delay if retry_after is None else retry_after
        return min(self.rate_limit_max_delay, max(0.0, delay))

    def delay_for(self, error: RestError, attempt: int) -> float | None:
        """Seconds to wait before retrying after ``error`` on attempt ``attempt``, or ``None``
        to give up and raise it."""
        if attempt >= self.max_attempts:
            return None
        if isinstance(error, RateLimitedError):
            return self.rate_limit_delay(error.retry_after)
        if isinstance(error, ServerError):
            if error.retry_after is not None:
                return min(self.max_delay, max(0.0, error.retry_after))
            return self.backoff_delay(attempt)
        if isinstance(error, TransportError) and self.retry_transport_errors and not error.tls:
            return self.backoff_delay(attempt)
        return None
