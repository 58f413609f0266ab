"""How a command of ``polyai-messaging`` ends: its exit status, and the errors that choose it.

Every subcommand follows one convention (:class:`ExitStatus`, listed in ``--help`` by
:data:`EXIT_STATUS_HELP`): 0 when it did its work, 1 when the conversation failed, 2 for a usage
error, 130 for Ctrl-C and 141 when the reader of its output went away (``| head``), as the shell
reports a command that a signal stopped. A handler raises :class:`UsageError` or
:class:`Interrupted`, or any error, and :func:`polyai_messaging.cli.main` turns it into the status
and one line on stderr; no traceback reaches a user.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["EXIT_STATUS_HELP", "ExitStatus", "Interrupted", "UsageError"]


class ExitStatus(enum.IntEnum):
    """The exit statuses of every subcommand."""

    OK = 0
    """The work was done: the conversation ended normally, or the script ran out."""
    FAILED = 1
    """The conversation failed: refused, unreachable, lost, or ended by the server's failure."""
    USAGE = 2
    """The command line cannot work: a bad option, an unreadable file, a missing setting."""
    INTERRUPTED = 130
    """Ctrl-C (128 + SIGINT, as a shell reports it)."""
    PIPE_CLOSED = 141
    """The reader of stdout went away (128 + SIGPIPE, as a shell reports it)."""


EXIT_STATUS_HELP: Final = """\
exit status:
  0    done: the conversation ended normally (or the script ran out)
  1    failed: the conversation (refused, unreachable, lost), or the emulator (port in use)
  2    usage error (bad option or file, missing setting)
  130  interrupted (Ctrl-C)
  141  the output was closed (e.g. by '| head')"""
"""The ``--help`` epilog that lists :class:`ExitStatus`."""


class UsageError(Exception):
    """The command line cannot work (exit status 2); the message says what to change."""


class Interrupted(Exception):
    """The user pressed Ctrl-C at the prompt (exit status 130)."""
