"""The ``polyai-messaging`` command line: ``demo``, ``chat``, ``emulator``, ``replay``."""

from ._main import main

__all__ = ["main"]
