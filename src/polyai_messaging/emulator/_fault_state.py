"""The counters that go with the active faults: how many refusals, drops, failures are left.

Assigning new :class:`~polyai_messaging.emulator.Faults` starts them afresh, and a new
*generation* from which each socket counts its frames again.
"""

from __future__ import annotations

from typing import Literal

from ._faults import Faults

__all__ = ["FaultState"]

_Counter = Literal["refuse", "drop", "freeze", "fail_token", "fail_session", "close", "no_replay"]


class FaultState:
    """The active :class:`Faults` plus the runtime counters that go with them.

    Assigning :attr:`faults` resets the counters and starts a new *generation*, which sockets use
    to restart their frame counts.
    """

    def __init__(self, faults: Faults) -> None:
        self._faults = faults
        self.generation = 0
        """Incremented on every assignment of :attr:`faults`."""
        self._left: dict[_Counter, int | None] = {}
        self.faults = faults

    @property
    def faults(self) -> Faults:
        """The active faults; assigning resets every counter."""
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        if not isinstance(faults, Faults):
            raise TypeError(f"expected Faults, got {type(faults).__name__}")
        self._faults = faults
        self.generation += 1
        self._left = {
            "refuse": faults.refuse_count if faults.refuse_status is not None else 0,
            "drop": faults.drop_count,
            "freeze": faults.freeze_count,
            "fail_token": faults.fail_token,
            "fail_session": faults.fail_session,
            "close": faults.close_count if faults.close_code is not None else 0,
            "no_replay": faults.no_replay,
        }

    def _spend(self, counter: _Counter) -> bool:
        """Use up one occurrence of a fault (``None`` left: no limit); ``False`` if none is left."""
        left = self._left[counter]
        if left is None:
            return True
        if left <= 0:
            return False
        self._left[counter] = left - 1
        return True

    def take_refusal(self) -> int | None:
        """The status to refuse this handshake with, or ``None`` to let it through."""
        return self._faults.refuse_status if self._spend("refuse") else None

    def take_token_failure(self) -> bool:
        """Whether this access-token call must fail with a 500."""
        return self._spend("fail_token")

    def take_session_failure(self) -> bool:
        """Whether this create-session call must fail with a 500."""
        return self._spend("fail_session")

    def take_close(self) -> int | None:
        """The code to close a socket just opened with right after its replay, or ``None``."""
        return self._faults.close_code if self._spend("close") else None

    def take_no_replay(self) -> bool:
        """Whether a socket just opened must go without its replay."""
        return self._spend("no_replay")

    def take_drop(self, frames_sent: int) -> bool:
        """Whether a socket that has sent ``frames_sent`` frames must be aborted now."""
        threshold = self._faults.drop_after
        return threshold is not None and frames_sent >= threshold and self._spend("drop")

    def take_freeze(self, frames_sent: int) -> bool:
        """Whether a socket that has sent ``frames_sent`` frames must freeze now."""
        threshold = self._faults.freeze_after
        return threshold is not None and frames_sent >= threshold and self._spend("freeze")
