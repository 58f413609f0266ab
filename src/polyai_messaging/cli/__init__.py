"""The ``polyai-messaging`` command line: ``demo``, ``chat``, ``emulator``, ``replay``."""

from ._main import main
from ._status import ExitStatus

__all__ = ["ExitStatus", "main"]
