"""The outbox of user messages awaiting their echo, as pure values.

A message is sent, then its echo is checked for 5 s later. A check that finds no echo does not
resend on the same link (the message may only be slow); the driver resumes the link and resends
only what the replay proves lost. Each later check waits longer (5 s, 5 s, 10 s, 15 s), and a
check after the last allowed resend fails the message. Its ``client_event_id`` never changes, so
copies that do reach the server fold into one message.

Only what is still pending is kept where the driver looks on every step: the earliest echo check
is cached, so asking for the next deadline costs the same after 5,000 messages as after one.
Finished messages (sent or failed) move to a bounded memory that still answers "where does this
message stand?" for the most recent :data:`RECENT_DELIVERIES` to twice as many of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

import attrs
from attrs import AttrsInstance
from immutables import Map

from ._checks import NO_CHECKS, Check, EchoChecks
from ._effects import DeliveryStatus

__all__ = ["RECENT_DELIVERIES", "Outbox", "OutboxEntry", "check_delay", "replace"]

RECENT_DELIVERIES = 1024
"""Finished messages are remembered in two generations of this many (2,048 at most)."""

_NO_ENTRIES: Map[str, Any] = Map()
_NO_TEXTS: Map[str, tuple[str, ...]] = Map()


_T = TypeVar("_T", bound=AttrsInstance)
_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}


def replace(value: _T, **changes: Any) -> _T:
    """``attrs.evolve`` for the outbox's values, which have no validators and no private
    fields: a positional call of the class, without ``evolve``'s generic work, which was the
    most of the outbox's cost on every message sent and confirmed."""
    cls = type(value)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(field.name for field in attrs.fields(cls))
    return cls(*[changes[name] if name in changes else getattr(value, name) for name in names])


@attrs.frozen
class OutboxEntry:
    """One user message and where its delivery stands."""

    client_event_id: str
    text: str
    custom: Mapping[str, str] = attrs.field(factory=dict)
    """The application's ``metadata.custom`` pairs, sent with every transmission (the
    ``client_event_id`` is added to them on the wire)."""
    status: DeliveryStatus = DeliveryStatus.PENDING
    transmissions: int = 0
    """How many times the frame was put on a socket (1 + resends)."""
    checks: int = 0
    """Echo checks that found no echo so far."""
    next_check: float | None = None
    """Monotonic time of the next echo check while the link is open (``None`` while a check's
    verification is under way)."""
    message_id: str | None = None
    """Server ``message_id`` from the echo, once sent."""
    serial: int = 0
    """Order in which the application sent the message (resends keep that order)."""

    @property
    def awaiting_echo(self) -> bool:
        return self.status is DeliveryStatus.PENDING and self.transmissions > 0


def check_delay(checks: int, first_check: float) -> float:
    """Seconds to wait for an echo after ``checks`` checks found none: 5, 5, 10, 15..."""
    return first_check * max(1, checks)


@attrs.frozen
class Outbox:
    """Pending messages (by ``client_event_id``) and a bounded memory of finished ones.

    Immutable: every change returns a new outbox. Create with ``Outbox()`` or
    :meth:`from_entries`.
    """

    pending: Map[str, OutboxEntry] = _NO_ENTRIES
    """Messages still waiting for their echo (or for a link to be sent on)."""
    by_text: Map[str, tuple[str, ...]] = _NO_TEXTS
    """Pending ``client_event_id`` per text, oldest first: an echo that carries no id we issued
    confirms the oldest pending message with the same text."""
    checks: EchoChecks = attrs.field(default=NO_CHECKS, eq=False, repr=False)
    """The echo checks of pending messages (a heap whose top is always current): the index the
    deadline is read from. Derived from :attr:`pending`, so it takes no part in equality."""
    recent: Map[str, OutboxEntry] = _NO_ENTRIES
    older: Map[str, OutboxEntry] = _NO_ENTRIES
    accepted: int = 0
    """Messages accepted so far: the next one's :attr:`OutboxEntry.serial`."""

    @classmethod
    def from_entries(cls, entries: Iterable[OutboxEntry]) -> Outbox:
        """An outbox holding ``entries`` (pending or finished), e.g. restored from storage."""
        outbox = cls()
        for entry in sorted(entries, key=_serial):
            outbox = outbox._put(entry)
        return replace(outbox, accepted=max((e.serial + 1 for e in outbox), default=0))

    # --- queries --------------------------------------------------------------------------------

    def get(self, client_event_id: str) -> OutboxEntry | None:
        """The message with this id, pending or recently finished."""
        return (
            self.pending.get(client_event_id)
            or self.recent.get(client_event_id)
            or self.older.get(client_event_id)
        )

    def in_order(self) -> list[OutboxEntry]:
        """The pending messages, in the order the application sent them."""
        return sorted(self.pending.values(), key=_serial)

    @property
    def next_check(self) -> float | None:
        """The earliest echo check among pending messages."""
        first = self.checks.first
        return None if first is None else first[0]

    def due(self, t: float) -> list[OutboxEntry]:
        """Pending messages whose echo check is at or before ``t``, in sending order."""
        due = [self.pending[c[2]] for c in _distinct(self.checks.until(t)) if self._current(c)]
        return sorted(due, key=_serial)

    def check_times(self) -> list[float]:
        """The time of every pending message's echo check, earliest first (O(n log n): for
        inspection, not for the deadline)."""
        return [check[0] for check in _distinct(self.checks) if self._current(check)]

    def _current(self, check: Check) -> bool:
        """Whether ``check`` is still the check of a pending message (not superseded)."""
        entry = self.pending.get(check[2])
        return entry is not None and entry.next_check == check[0] and entry.serial == check[1]

    def oldest_with_text(self, text: str) -> OutboxEntry | None:
        """The oldest pending message whose text is exactly ``text``."""
        ids = self.by_text.get(text)
        return None if not ids else self.pending[ids[0]]

    def __iter__(self) -> Iterator[OutboxEntry]:
        """Every message it knows (recently finished and pending), in sending order."""
        seen = {**self.older, **self.recent, **self.pending}
        return iter(sorted(seen.values(), key=_serial))

    def __len__(self) -> int:
        return len({*self.older.keys(), *self.recent.keys(), *self.pending.keys()})

    # --- changes --------------------------------------------------------------------------------
    # Each change builds one new outbox (positionally: no ``evolve``), and cleans the checks'
    # top only when it may have gone stale: a send and an echo are each one outbox copy.

    def accept(
        self,
        client_event_id: str,
        text: str,
        custom: Mapping[str, str],
        *,
        check_at: float | None = None,
    ) -> Outbox:
        """A new pending message: not yet transmitted, or (``check_at``) transmitted once just
        now, its echo to be checked at ``check_at``."""
        key = client_event_id
        entry = OutboxEntry(
            key, text, dict(custom), _PENDING, 0 if check_at is None else 1, 0, check_at, None,
            self.accepted,
        )  # fmt: skip
        checks = self.checks
        if check_at is not None:
            # The top stays current: it was, and the check pushed is.
            checks = checks.pushed((check_at, entry.serial, key))
        ids = self.by_text.get(text)
        return Outbox(
            self.pending.set(key, entry),
            self.by_text.set(text, (key,) if ids is None else (*ids, key)),
            checks,
            self.recent,
            self.older,
            self.accepted + 1,
        )

    def update(self, entry: OutboxEntry) -> Outbox:
        """Replace the entry with ``entry.client_event_id`` by ``entry`` (a new status moves it
        between pending and finished)."""
        key = entry.client_event_id
        pending, by_text, checks = self.pending, self.by_text, self.checks
        old = pending.get(key)
        if old is not None:
            pending = pending.delete(key)
            ids = () if by_text[old.text] == (key,) else _without(by_text[old.text], key)
            if ids:
                by_text = by_text.set(old.text, ids)
            elif not (entry.status is _PENDING and entry.text == old.text):
                by_text = by_text.delete(old.text)
            # else: its text keeps ``(key,)``, as it would be set again below.
            # Its check, if any, stays in the heap until it reaches the top (see _checks).
            checks = _cleaned(checks, pending)
        if entry.status is not _PENDING:
            recent, older = self.recent, self.older
            if key not in recent and len(recent) >= RECENT_DELIVERIES:
                recent, older = _NO_ENTRIES, recent
            return Outbox(pending, by_text, checks, recent.set(key, entry), older, self.accepted)
        pending = pending.set(key, entry)
        if by_text is not self.by_text or old is None or old.text != entry.text:
            by_text = by_text.set(entry.text, (*by_text.get(entry.text, ()), key))
        if entry.next_check is not None:
            checks = checks.pushed((entry.next_check, entry.serial, key))
        return Outbox(
            pending, by_text, _cleaned(checks, pending), self.recent, self.older, self.accepted
        )

    def fail_pending(self) -> tuple[Outbox, list[OutboxEntry]]:
        """Every pending message failed, and the failed entries in sending order."""
        failed = [
            replace(e, status=DeliveryStatus.FAILED, next_check=None) for e in self.in_order()
        ]
        outbox = replace(self, pending=_NO_ENTRIES, by_text=_NO_TEXTS, checks=NO_CHECKS)
        for entry in failed:
            outbox = outbox._put(entry)
        return outbox, failed

    def _put(self, entry: OutboxEntry) -> Outbox:
        key = entry.client_event_id
        if entry.status is not DeliveryStatus.PENDING:
            recent, older = self.recent, self.older
            if key not in recent and len(recent) >= RECENT_DELIVERIES:
                recent, older = _NO_ENTRIES, recent
            return replace(self, recent=recent.set(key, entry), older=older)
        ids = self.by_text.get(entry.text, ())
        checks = self.checks
        if entry.next_check is not None:
            checks = checks.pushed((entry.next_check, entry.serial, key))
        pending = self.pending.set(key, entry)
        return replace(
            self,
            pending=pending,
            by_text=self.by_text.set(entry.text, (*ids, key)),
            checks=_cleaned(checks, pending),
        )


_PENDING = DeliveryStatus.PENDING


def _without(ids: tuple[str, ...], key: str) -> tuple[str, ...]:
    return tuple(i for i in ids if i != key)


def _cleaned(checks: EchoChecks, pending: Map[str, OutboxEntry]) -> EchoChecks:
    """``checks`` without the superseded ones at the top, so that the first is the check of a
    pending message (``_current``, inlined: it runs on every send and every echo)."""
    while (first := checks.first) is not None:
        entry = pending.get(first[2])
        if entry is not None and entry.next_check == first[0] and entry.serial == first[1]:
            return checks
        checks = checks.without_first()
    return checks


def _serial(entry: OutboxEntry) -> int:
    return entry.serial


def _distinct(checks: Iterable[Check]) -> Iterator[Check]:
    """``checks`` (in heap order) without repeats: a message updated with its check unchanged
    pushes the same check again, and equal checks come out of the heap together."""
    previous = None
    for check in checks:
        if check != previous:
            yield check
        previous = check
