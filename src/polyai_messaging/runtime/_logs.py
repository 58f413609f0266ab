"""The library's loggers, which pass every line through one redaction rule.

A log line may quote what a server sent back (a refused handshake's body that echoes our request,
say), so it is not enough to be careful with the URLs we log ourselves: each record's final text
goes through :func:`~polyai_messaging.driver.redact_text`, and the access tokens a session
currently holds are replaced wherever they appear.

A session's records also carry its ``session_id`` and ``link`` (the socket generation) as record
attributes, and start with ``[<session id> #<link>]``, so a service running many conversations
can tell them apart. The library configures no logger: records go to the ``polyai_messaging``
logger hierarchy and the application decides where they end up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

from ..driver import redact_text

__all__ = ["RedactingLogger", "redacted"]

_REDACTED = "***"

Secrets = Callable[[], Iterable[str]]
"""Returns the secret strings to hide (the access tokens in use)."""

Context = Callable[[], dict[str, Any]]
"""Returns the attributes a record carries (``session_id``, ``link``)."""


def _none() -> tuple[str, ...]:
    return ()


def _no_context() -> dict[str, Any]:
    return {}


def redacted(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret and every sensitive ``name=value`` pair hidden."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return redact_text(text)


class RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger whose records carry already-formatted, redacted text (and the session)."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        context: Context = _no_context,
        secrets: Secrets = _none,
    ) -> None:
        super().__init__(logger, None)
        self._context = context
        self._secrets = secrets

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        context = self._context()
        if context:
            kwargs["extra"] = {**context, **kwargs.get("extra", {})}
            msg = f"[{context['session_id']} #{context['link']}] {msg}"
        return msg, kwargs

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        text = str(msg) % args if args else str(msg)
        final, options = self.process(redacted(text, self._secrets()), kwargs)
        options.setdefault("stacklevel", 3)  # the caller of debug()/info(), not this method
        self.logger.log(level, final, **options)
