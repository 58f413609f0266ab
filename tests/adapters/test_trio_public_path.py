"""The trio link's public path: where a release of trio-websocket keeps its reader's state
other than as the link's own reading expects (``polyai_messaging.trio._inbox.HOOKS``), the link
reads through the public API instead, trio-websocket's reader in a task of its own. The link
contract's tests, run again on trio with that path forced, keep it working."""

from __future__ import annotations

from collections import Counter

import pytest
import trio
from trio_websocket import WebSocketConnection

from polyai_messaging.testing import LocalEmulator
from polyai_messaging.trio import _inbox, _socket

from .helpers import Adapter, client_tasks, replied, wait_for
from .test_conversations import *  # noqa: F403
from .test_intent_writes import *  # noqa: F403
from .test_link_failures import *  # noqa: F403
from .test_liveness import *  # noqa: F403
from .test_replacement_sessions import *  # noqa: F403
from .test_shutdown import *  # noqa: F403
from .test_trio_only import *  # noqa: F403 - and its ``anyio_backend``: only trio, here

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def public_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if trio-websocket's reader kept its state elsewhere."""
    monkeypatch.setattr(_socket, "HOOKS", False)


async def test_the_public_path_reads_in_trio_websockets_own_task(
    adapter: Adapter, emulator: LocalEmulator
) -> None:
    before = Counter(client_tasks())
    async with adapter.session(emulator) as session:
        await wait_for(session, replied(1))
        running = Counter(client_tasks()) - before
        assert running["WebSocketConnection._reader_task"] == 1


class _Elsewhere(WebSocketConnection):
    """A release whose reader and handlers use none of the attributes an inbox stands in for."""

    async def _reader_task(self) -> None:
        pass  # pragma: no cover

    async def _handle_message_event(self, event: object) -> None:
        pass  # pragma: no cover


def test_a_release_that_reads_otherwise_is_not_read_in_the_links_task() -> None:
    assert _inbox.HOOKS
    assert not _inbox.uses_hooks(_Elsewhere)


def test_a_connection_that_keeps_its_channel_otherwise_is_left_as_it_is() -> None:
    class Connection:
        _send_channel = None
        _recv_channel = None
        _open_handshake = trio.Event()

    connection = Connection()
    assert not _inbox.attach(connection, _inbox.Inbox())  # type: ignore[arg-type]
    assert connection._send_channel is None
    assert isinstance(connection._open_handshake, trio.Event)
