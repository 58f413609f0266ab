"""Private: the library's loggers, which pass every line through one redaction rule.

A log line may quote what a server sent back (a refused handshake's body that echoes our request,
say), so it is not enough to be careful with the URLs we log ourselves: each record's final text
goes through :func:`~polyai_messaging.endpoints.redact_text`, and the access tokens a session
currently holds are replaced wherever they appear.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .endpoints import redact_text

__all__ = ["RedactingLogger", "redacted"]

_REDACTED = "***"

Secrets = Callable[[], Iterable[str]]
"""Returns the secret strings to hide (the access tokens in use)."""


def _no_secrets() -> Iterable[str]:
    return ()


def redacted(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret and every sensitive ``name=value`` pair hidden."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return redact_text(text)


class RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger whose records carry already-formatted, redacted text (and optional context)."""

    def __init__(
        self,
        logger: logging.Logger,
        extra: Mapping[str, object] | None = None,
        secrets: Secrets = _no_secrets,
    ) -> None:
        super().__init__(logger, extra)
        self._secrets = secrets

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        text = str(msg) % args if args else str(msg)
        final, options = self.process(redacted(text, self._secrets()), kwargs)
        options.setdefault("stacklevel", 3)  # the caller of debug()/info(), not this method
        self.logger.log(level, final, **options)
