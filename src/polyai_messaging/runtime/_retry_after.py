"""Reading an HTTP ``Retry-After`` header (from a refused handshake or a REST answer)."""

from __future__ import annotations

import email.utils
import re
from datetime import UTC
from typing import Final

__all__ = ["parse_http_date", "parse_retry_after"]

_DECIMAL_SECONDS: Final = re.compile(r"[0-9]+(\.[0-9]+)?")


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value (delay-seconds or an HTTP-date).

    ``now`` is the current time in epoch seconds, used for HTTP-dates (a past date gives 0).
    Returns ``None`` for a missing or unparseable value.
    """
    if value is None:
        return None
    text = value.strip()
    if _DECIMAL_SECONDS.fullmatch(text):
        return float(text)
    when = parse_http_date(text)
    return None if when is None else max(0.0, when - now)


def parse_http_date(text: str) -> float | None:
    """An HTTP-date as epoch seconds, or ``None`` if it is not one."""
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
