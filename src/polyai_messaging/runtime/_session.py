"""The session an application holds, the same on every adapter.

:class:`SessionRuntime` is the :class:`~._engine.Engine` plus the public API: the intents
(:meth:`~SessionRuntime.send`, :meth:`~SessionRuntime.pick`, :meth:`~SessionRuntime.typing`,
:meth:`~SessionRuntime.end`), what to wait for (:meth:`~SessionRuntime.updates`,
:meth:`~SessionRuntime.wait_reply`, :meth:`~SessionRuntime.wait_finished`) and what to read. An
adapter's ``Session`` subclasses it and adds only its loop.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..core import Conversation, LocalProtocolError
from ..driver import (
    Delivery,
    DeliveryStatus,
    Effect,
    EndSession,
    Finished,
    Input,
    PickSuggestion,
    SendText,
    SetTyping,
    StatusChanged,
)
from ._engine import Engine
from ._feed import EventStream, Update, Updates

__all__ = ["SessionRuntime"]


class SessionRuntime(Engine):
    """A running session: valid inside the ``async with open_session(...)`` that made it."""

    # --- what the application sees ---------------------------------------------------------

    @property
    def conversation(self) -> Conversation:
        """The latest conversation."""
        return self._state.conversation

    @property
    def session_id(self) -> str:
        """The current session id (it changes when a replacement session is created)."""
        return self._state.session_id

    @property
    def status(self) -> StatusChanged | None:
        """The latest link status."""
        return self._status

    @property
    def finished(self) -> Finished | None:
        """How the session finished, once it is over for good (no replacement coming)."""
        return self._finished

    @property
    def latest(self) -> Update:
        """The latest published snapshot."""
        return self._feed_updates.latest

    @property
    def token_requests(self) -> int:
        """How many times the token provider was called."""
        return self._tokens.calls

    @property
    def events_dropped(self) -> int:
        """Applied events discarded because the :meth:`events` stream was full."""
        return self._events.dropped

    async def wait_finished(self) -> Finished:
        """Wait until the session is over; return how it finished."""
        while self._finished is None and not self._closed:
            await self._over.wait()
        finished = self._finished
        if finished is None:
            raise LocalProtocolError("the session was closed before it finished")
        return finished

    def updates(self) -> Updates:
        """Iterate over snapshots, conflated: a slow reader only sees the latest one.

        The iteration ends after the snapshot carrying :attr:`Update.finished`, or when the
        session is closed. Each call returns an independent iterator.
        """
        return Updates(self._feed_updates)

    async def next_update(self, after_version: int) -> Update | None:
        """Wait for a snapshot newer than ``after_version``; ``None`` once the session is closed."""
        feed = self._feed_updates
        if feed.version <= after_version and not feed.closed:
            # Waiting is the checkpoint: one more would cost the caller a scheduler round.
            return await feed.next(after_version)
        await self.checkpoint()
        return feed.latest if feed.version > after_version else None

    def events(self) -> EventStream:
        """Every newly applied server event, in order (see :class:`EventStream`)."""
        return self._events

    async def wait_reply(self, client_event_id: str | None = None) -> Update:
        """Wait until the reply to the message ``client_event_id`` (``None``: the agent's
        greeting) is complete (see :meth:`~polyai_messaging.core.Conversation.reply_complete`),
        or the session is over; return that snapshot."""
        update = self.latest
        while update.finished is None and not update.conversation.reply_complete(client_event_id):
            following = await self.next_update(update.version)
            if following is None:
                raise LocalProtocolError("the session was closed before the reply came")
            update = following
        return update

    def delivery_status(self, client_event_id: str) -> DeliveryStatus | None:
        """Where a sent message stands (``None`` if unknown)."""
        entry = self._state.delivery(client_event_id)
        return None if entry is None else entry.status

    # --- intents ---------------------------------------------------------------------------

    async def send(
        self,
        text: str,
        *,
        custom: Mapping[str, str] | None = None,
        client_event_id: str | None = None,
    ) -> str:
        """Send a user message; return its ``client_event_id``.

        ``custom`` goes out as the message's ``metadata.custom`` (string values; the server
        echoes them). Raises :class:`~polyai_messaging.core.LocalProtocolError` for blank or
        oversized text or after the end.
        """
        return await self._send_message(SendText(text, client_event_id, custom or {}))

    async def pick(self, index: int, *, custom: Mapping[str, str] | None = None) -> str:
        """Send the ``index``-th (0-based) current suggestion; return its ``client_event_id``."""
        return await self._send_message(PickSuggestion(index, custom=custom or {}))

    async def typing(self, started: bool) -> None:
        """Tell the server the user started (``True``) or stopped typing (throttled)."""
        await self._intent(SetTyping(started))

    async def end(self) -> None:
        """Leave: send ``USER_END_SESSION``; :meth:`wait_finished` then returns the end."""
        await self._intent(EndSession())

    async def _send_message(self, intent: SendText | PickSuggestion) -> str:
        # An accepted message is reported as a PENDING delivery in the same step.
        for effect in await self._intent(intent):
            if isinstance(effect, Delivery) and effect.status is DeliveryStatus.PENDING:
                return effect.client_event_id
        raise LocalProtocolError("the message was not accepted")  # pragma: no cover

    async def _intent(self, event: Input) -> list[Effect]:
        """Execute an intent, with one checkpoint in all.

        A cancellation is delivered only before the intent (:meth:`cancel_point`, or waiting
        for a replacement session being created): the intent itself executes without
        awaiting, so a cancelled call has sent nothing. Other tasks run after it
        (:meth:`schedule_point`): on trio, the caller then writes the intent's frames itself on
        an idle link (shielded: a cancellation waits until they are written), or the link's
        writer writes them while the caller yields.
        """
        renewal = self._renewal
        if renewal is not None:
            await renewal.wait()
        else:
            await self.cancel_point()
        try:
            if self._closed:
                raise LocalProtocolError("the session is closed")
            return self.feed(event)
        finally:
            if renewal is None:
                await self.schedule_point()
