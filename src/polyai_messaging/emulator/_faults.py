"""Fault injection: what can go wrong on purpose, and how to ask for it.

A :class:`Faults` value says which faults are active. It is immutable; the emulator keeps the
*counters* (how many refusals are left, how many sockets may still be dropped) in a
``FaultState`` (``_fault_state``), so assigning a new :class:`Faults` value at runtime starts
those counters afresh::

    emulator.state.faults = parse_faults("drop-after=3:1,delay=0.05")
    emulator.state.faults = Faults()          # back to normal

The CLI spelling, parsed by :func:`parse_faults`, is a comma-separated list:

==========================  ========================================================================
``drop-after=N[:K]``        Abort a socket (TCP shut down, no WebSocket closing handshake) once it
                            has sent N frames. ``K`` limits how many sockets are dropped (default:
                            every socket).
``freeze-after=N[:K]``      After N frames the socket goes silent: nothing more is sent and incoming
                            frames are discarded unprocessed, but the TCP connection stays open.
``duplicate``               Every frame is sent twice.
``overlap[=N]``             After the replay, the last N (default 3) journaled events are re-sent as
                            live frames, so replay and live delivery overlap.
``reorder``                 The events inside every replay batch are sent in reverse order.
``delay=SECONDS``           Wait this long before sending each frame.
``refuse=STATUS[:K]``       Refuse the next K (default 1) WebSocket handshakes with STATUS 401, 404
                            or 429 and the documented body string.
``fail-token[=K]``          The next K access-token calls answer 500 ``Failed to create access
                            token``.
``fail-session[=K]``        The next K create-session calls answer 500 ``Failed to create session``.
``close=CODE[:K]``          The next K (default 1) sockets are closed by the server with WebSocket
                            close code CODE right after their replay, before any live event (e.g.
                            ``close=4001``, which the vendor SDKs read as "session unknown"). CODE
                            must be one a close frame may carry: 1000-1003, 1007-1014 or 3000-4999.
``no-replay[=K]``           The next K (default 1) sockets get no replay (nor overlap) after the
                            handshake: nothing is sent until something live happens.
``none``                    No faults (the same as an empty string).
==========================  ========================================================================

``close`` and ``no-replay`` pick the sockets that open after the faults were assigned, in the order
their handshakes complete.

Frame counts (``drop-after``, ``freeze-after``) are per socket and count frames actually written
(a duplicated frame counts twice), from the moment the socket opened or the faults were last
assigned, whichever is later.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["FAULT_HELP", "REFUSAL_BODIES", "Faults", "parse_faults"]

FAULT_HELP: Mapping[str, str] = MappingProxyType(
    {
        "drop-after=N[:K]": "abort each socket (no close frame) after N frames; at most K sockets",
        "freeze-after=N[:K]": "each socket goes silent after N frames but stays open; at most K",
        "duplicate": "send every frame twice",
        "overlap[=N]": "re-send the last N (3) journaled events live after each replay",
        "reorder": "reverse the events inside each replay batch",
        "delay=SECONDS": "wait before sending each frame",
        "refuse=STATUS[:K]": "refuse the next K (1) handshakes with 401, 404 or 429",
        "fail-token[=K]": "the next K (1) access-token calls answer 500",
        "fail-session[=K]": "the next K (1) create-session calls answer 500",
        "close=CODE[:K]": "close the next K (1) sockets with CODE right after their replay",
        "no-replay[=K]": "the next K (1) sockets get no replay, only live events",
        "none": "no faults",
    }
)
"""Fault spelling -> one-line description, for CLI help."""

REFUSAL_BODIES: Mapping[int, str] = MappingProxyType(
    {
        401: "authentication failed",
        404: "session not found",
        429: "connection limit exceeded for session",
    }
)
"""The documented handshake error string sent for each status ``refuse`` may use."""

_DEFAULT_OVERLAP = 3
_COUNT_FIELDS = (
    "overlap",
    "refuse_count",
    "fail_token",
    "fail_session",
    "close_count",
    "no_replay",
)


def _sendable_close_code(code: int) -> bool:
    """Whether a close frame may carry ``code``: the registered codes an endpoint may send, or
    one of the ranges for libraries and applications. 1004 is reserved; 1005, 1006 and 1015 only
    describe a close locally and never go on the wire."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


@dataclass(frozen=True, kw_only=True)
class Faults:
    """Which faults are active. The default value has none."""

    drop_after: int | None = None
    """Abort each socket after this many frames; ``None`` disables the fault."""
    drop_count: int | None = None
    """How many sockets ``drop_after`` may abort; ``None`` means no limit."""
    freeze_after: int | None = None
    """Freeze each socket after this many frames; ``None`` disables the fault."""
    freeze_count: int | None = None
    """How many sockets ``freeze_after`` may freeze; ``None`` means no limit."""
    duplicate: bool = False
    """Send every frame twice."""
    overlap: int = 0
    """Re-send this many of the latest journaled events live after each replay (0: off)."""
    reorder: bool = False
    """Reverse the order of the events inside each replay batch."""
    delay: float = 0.0
    """Seconds to wait before sending each frame."""
    refuse_status: int | None = None
    """HTTP status used to refuse handshakes (401, 404 or 429); ``None`` disables the fault."""
    refuse_count: int = 0
    """How many handshakes to refuse with ``refuse_status``."""
    fail_token: int = 0
    """How many access-token calls answer 500."""
    fail_session: int = 0
    """How many create-session calls answer 500."""
    close_code: int | None = None
    """WebSocket close code for the ``close`` fault; ``None`` disables the fault."""
    close_count: int = 0
    """How many sockets to close with ``close_code`` right after their replay."""
    no_replay: int = 0
    """How many sockets get no replay after the handshake."""

    def __post_init__(self) -> None:
        for name in ("drop_after", "drop_count", "freeze_after", "freeze_count"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        for name in _COUNT_FIELDS:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not math.isfinite(self.delay) or self.delay < 0:
            raise ValueError(f"delay must be a finite number >= 0, got {self.delay}")
        if self.refuse_status is not None and self.refuse_status not in REFUSAL_BODIES:
            allowed = ", ".join(str(status) for status in REFUSAL_BODIES)
            raise ValueError(f"refuse status must be one of {allowed}, got {self.refuse_status}")
        if self.close_code is not None and not _sendable_close_code(self.close_code):
            raise ValueError(
                f"close code {self.close_code} cannot be sent in a close frame; "
                "use 1000-1003, 1007-1014 or 3000-4999"
            )

    @property
    def active(self) -> bool:
        """Whether any fault is switched on."""
        return self != Faults()

    def to_spec(self) -> str:
        """The :func:`parse_faults` spelling of this value (``""`` when nothing is active)."""
        parts: list[str] = []
        if self.drop_after is not None:
            parts.append(_with_count(f"drop-after={self.drop_after}", self.drop_count))
        if self.freeze_after is not None:
            parts.append(_with_count(f"freeze-after={self.freeze_after}", self.freeze_count))
        if self.duplicate:
            parts.append("duplicate")
        if self.overlap:
            parts.append(f"overlap={self.overlap}")
        if self.reorder:
            parts.append("reorder")
        if self.delay:
            parts.append(f"delay={self.delay!r}")
        if self.refuse_status is not None:
            parts.append(f"refuse={self.refuse_status}:{self.refuse_count}")
        if self.fail_token:
            parts.append(f"fail-token={self.fail_token}")
        if self.fail_session:
            parts.append(f"fail-session={self.fail_session}")
        if self.close_code is not None:
            parts.append(f"close={self.close_code}:{self.close_count}")
        if self.no_replay:
            parts.append(f"no-replay={self.no_replay}")
        return ",".join(parts)


def _with_count(text: str, count: int | None) -> str:
    return text if count is None else f"{text}:{count}"


_KNOWN = (
    "drop-after",
    "freeze-after",
    "duplicate",
    "overlap",
    "reorder",
    "delay",
    "refuse",
    "fail-token",
    "fail-session",
    "close",
    "no-replay",
    "none",
)


def parse_faults(spec: str) -> Faults:
    """Parse a comma-separated fault list such as ``"drop-after=5,duplicate,refuse=429:2"``.

    Raises :class:`ValueError`, naming the offending item, for an unknown fault name, a missing,
    superfluous or malformed value, or a fault given twice.
    """
    changes: dict[str, object] = {}
    seen: set[str] = set()
    for raw_item in spec.split(","):
        item = raw_item.strip()
        if not item:
            continue
        name, has_value, value = (part.strip() for part in item.partition("="))
        name = name.lower()
        if name not in _KNOWN:
            raise ValueError(
                f"unknown fault {name!r} in {item!r}; known faults: {', '.join(_KNOWN)}"
            )
        if name in seen:
            raise ValueError(f"fault {name!r} given more than once")
        seen.add(name)
        item_changes = _parse_item(name, value if has_value else None, item)
        _faults_with(item_changes, item)  # every item sets its own fields: check it alone
        changes.update(item_changes)
    return _faults_with(changes, spec)


def _faults_with(changes: dict[str, object], text: str) -> Faults:
    try:
        return dataclasses.replace(Faults(), **changes)  # type: ignore[arg-type]
    except ValueError as error:
        raise ValueError(f"invalid fault {text!r}: {error}") from None


def _parse_item(name: str, value: str | None, item: str) -> dict[str, object]:
    """Translate one ``name[=value]`` item into :class:`Faults` field values."""
    if name in ("duplicate", "reorder", "none"):
        if value is not None:
            raise ValueError(f"fault {name!r} takes no value, got {item!r}")
        return {} if name == "none" else {name: True}
    if name in ("drop-after", "freeze-after"):
        first, count = _split_count(_required(name, value, "N[:K]"), item)
        prefix = name.split("-", maxsplit=1)[0]
        return {f"{prefix}_after": _int(first, item), f"{prefix}_count": count}
    if name in _WITH_COUNT:
        field, shape = _WITH_COUNT[name]
        first, count = _split_count(_required(name, value, shape), item)
        return {field: _int(first, item), f"{name}_count": _or_one(count)}
    if name == "delay":
        text = _required(name, value, "SECONDS")
        try:
            return {"delay": float(text)}
        except ValueError:
            raise ValueError(f"delay needs a number of seconds, got {item!r}") from None
    if name == "overlap":
        return {"overlap": _DEFAULT_OVERLAP if value is None else _int(value, item)}
    # fail-token / fail-session / no-replay
    return {name.replace("-", "_"): 1 if value is None else _int(value, item)}


_WITH_COUNT = {"refuse": ("refuse_status", "STATUS[:K]"), "close": ("close_code", "CODE[:K]")}
"""Faults spelt ``name=VALUE[:K]`` with K defaulting to 1: the field VALUE sets, and the shape."""


def _or_one(count: int | None) -> int:
    return 1 if count is None else count


def _required(name: str, value: str | None, shape: str) -> str:
    if not value:
        raise ValueError(f"fault {name!r} needs a value: {name}={shape}")
    return value


def _split_count(value: str, item: str) -> tuple[str, int | None]:
    first, has_count, count = value.partition(":")
    return first, (_int(count, item) if has_count else None)


def _int(text: str, item: str) -> int:
    text = text.strip()
    if not text.isdigit():
        raise ValueError(f"expected a non-negative integer in {item!r}, got {text!r}")
    return int(text)
