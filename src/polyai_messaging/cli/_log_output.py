"""Where ``--log-level`` sends the library's log records: stderr, above the prompt."""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["configure_logging"]


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time: above the prompt while the terminal
    chat runs (it patches stderr), instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record`` to the current stderr."""
        self.stream = sys.stderr  # emit runs under the handler's lock
        super().emit(record)


def configure_logging(args: argparse.Namespace) -> None:
    """Log the library's records to stderr at ``args.log_level``, if it was given."""
    level = getattr(args, "log_level", None)
    if level is None:
        return
    # The library's own records only: a dependency's debug output (HTTP, the server) is noise
    # here, and ours already says what happened on the wire. Stderr redirected away from the
    # terminal keeps every record.
    handler = _CurrentStderr() if sys.stderr.isatty() else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    library = logging.getLogger("polyai_messaging")
    library.addHandler(handler)
    library.setLevel(level.upper())
