"""What the contract tests share: the adapters, waiting on a session, and raw test servers.

Network-test policy (after trio-websocket's): loopback only, port 0, the real emulator, small
real-time intervals where timers matter, and an absolute ``anyio.fail_after`` bound on every
wait, so that a regression fails fast instead of hanging. Everything here runs on trio and on
asyncio alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import attrs
import sniffio
import trio
import trio_websocket
import websockets
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, Pong, Request, TextMessage

import polyai_messaging
import polyai_messaging.asyncio
import polyai_messaging.trio
from polyai_messaging.core import Role
from polyai_messaging.driver import LinkStatus, SessionConfig
from polyai_messaging.rest import AccessToken
from polyai_messaging.runtime import Event, SessionRuntime, Token, TokenProvider, Update
from polyai_messaging.testing import LocalEmulator

TIMEOUT = 5.0
"""Upper bound for anything that should happen promptly."""

FAST = SessionConfig(replay_quiet_seconds=0.05)
"""The driver's defaults, but a replay counts as settled after 50 ms of quiet."""


# --- the adapters ---------------------------------------------------------------------------


@attrs.frozen
class Adapter:
    """One event loop's adapter, as the contract tests drive it."""

    name: str
    open_session: Callable[..., AbstractAsyncContextManager[SessionRuntime]]
    new_event: Callable[[], Event]
    """Makes the loop's own events (for a :class:`~polyai_messaging.runtime.TokenCache`)."""

    def session(
        self, emulator: LocalEmulator, provider: TokenProvider | None = None, **kwargs: Any
    ) -> AbstractAsyncContextManager[SessionRuntime]:
        """A session on ``emulator``: quick replays (:data:`FAST`), a fixed seed, tokens from
        ``provider`` (a :class:`CountingProvider` by default), the emulator's CA trusted."""
        assert sniffio.current_async_library() == self.name, "the test runs on another loop"
        kwargs.setdefault("config", FAST)
        kwargs.setdefault("seed", 7)
        kwargs.setdefault("ssl_context", emulator.ssl_context)
        tokens = provider if provider is not None else CountingProvider(emulator.token_provider)
        return self.open_session(emulator.base_url, tokens, **kwargs)


ADAPTERS = {
    "trio": Adapter("trio", polyai_messaging.trio.open_session, trio.Event),
    "asyncio": Adapter("asyncio", polyai_messaging.asyncio.open_session, asyncio.Event),
}


class CountingProvider:
    """A token provider that keeps every token another one provides."""

    def __init__(self, inner: TokenProvider) -> None:
        self._inner = inner
        self.tokens: list[Token] = []

    async def __call__(self) -> Token:
        token = await self._inner()
        self.tokens.append(token)
        return token


async def fixed_token() -> AccessToken:
    """A token provider for raw test servers, which accept any token."""
    return AccessToken("a-token", 3600)


# --- waiting on a session -------------------------------------------------------------------


async def wait_for(
    session: SessionRuntime, predicate: Callable[[Update], bool], timeout: float = TIMEOUT
) -> Update:
    """The first snapshot (current or later) satisfying ``predicate``."""
    with anyio.fail_after(timeout):
        update = session.latest
        while not predicate(update):
            following = await session.next_update(update.version)
            assert following is not None, "the session closed"
            update = following
        return update


async def until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Poll ``condition`` (state a server changes) until it holds."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.01)


def replied(count: int) -> Callable[[Update], bool]:
    """At least ``count`` complete non-user messages, and nobody typing or streaming."""

    def check(update: Update) -> bool:
        conversation = update.conversation
        done = [m for m in conversation.transcript if m.role is not Role.USER and m.complete]
        return (
            len(done) >= count
            and not conversation.agent_thinking
            and not conversation.live_agent_typing
            and not conversation.streams
        )

    return check


def has_event(kind: type[Any]) -> Callable[[Update], bool]:
    """The conversation holds an event of type ``kind``."""
    return lambda update: any(type(e) is kind for e in update.conversation.journal.values())


def reconnecting(update: Update) -> bool:
    """The link is down and a reconnect is scheduled."""
    return update.status is not None and update.status.status is LinkStatus.RECONNECTING


def heartbeat_answered(update: Update) -> bool:
    """A frame (a heartbeat) went out well after the open, and a frame came back after it."""
    state = update.state
    return (
        state.last_sent_monotonic is not None
        and state.opened_at is not None
        and state.last_sent_monotonic > state.opened_at + 0.5
        and state.last_inbound is not None
        and state.last_inbound >= state.last_sent_monotonic
    )


def stored_copies(emulator: LocalEmulator, session_id: str) -> list[str]:
    """The client_event_id of every user message the server journaled, in order."""
    return [
        entry.event["metadata"]["custom"]["client_event_id"]
        for entry in emulator.journal(session_id)
        if entry.type == "EVENT_TYPE_USER_MESSAGE"
    ]


# --- the client's tasks ---------------------------------------------------------------------


def _package_dir(module: Any) -> str:
    return str(Path(module.__file__).parent) + "/"


_EMULATOR_SIDE = tuple(
    _package_dir(polyai_messaging) + name + "/" for name in ("emulator", "testing")
)
_CLIENT_SIDE = tuple(_package_dir(m) for m in (polyai_messaging, trio_websocket, websockets))


def _is_client_code(coroutine: object) -> bool:
    code = getattr(coroutine, "cr_code", None)
    filename = "" if code is None else code.co_filename
    return filename.startswith(_CLIENT_SIDE) and not filename.startswith(_EMULATOR_SIDE)


def _all_tasks() -> Iterator[object]:
    """The coroutine of every task of the running loop."""
    if sniffio.current_async_library() == "asyncio":
        yield from (task.get_coro() for task in asyncio.all_tasks())
        return
    pending = [trio.lowlevel.current_root_task()]
    while pending:
        task = pending.pop()
        yield task.coro
        pending += [child for nursery in task.child_nurseries for child in nursery.child_tasks]


@contextmanager
def started_client_tasks() -> Iterator[list[str]]:
    """The name of every task running the client's code started in the block, in order."""
    started: list[str] = []

    def record(coroutine: object) -> None:
        if _is_client_code(coroutine):
            started.append(getattr(coroutine, "__qualname__", "?"))

    if sniffio.current_async_library() == "asyncio":
        loop = asyncio.get_running_loop()
        previous = loop.get_task_factory()

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
            record(coro)
            if previous is not None:
                return previous(loop, coro, **kwargs)
            return asyncio.Task(coro, loop=loop, **kwargs)

        loop.set_task_factory(factory)
        try:
            yield started
        finally:
            loop.set_task_factory(previous)
        return

    class Spawns(trio.abc.Instrument):
        def task_spawned(self, task: trio.lowlevel.Task) -> None:
            record(task.coro)

    instrument = Spawns()
    trio.lowlevel.add_instrument(instrument)
    try:
        yield started
    finally:
        trio.lowlevel.remove_instrument(instrument)


def client_tasks() -> list[str]:
    """The running tasks that run the client's code (the library's, its WebSocket client's),
    by name; the emulator's are left out, as it runs on the same loop."""
    return sorted(
        getattr(coroutine, "__qualname__", "?")
        for coroutine in _all_tasks()
        if _is_client_code(coroutine)
    )


@contextmanager
def no_client_task_left() -> Iterator[None]:
    """The block leaves no client task running (:func:`client_tasks`) that was not before."""
    before = client_tasks()
    try:
        yield
    finally:
        assert client_tasks() == before


# --- raw test servers -----------------------------------------------------------------------


@asynccontextmanager
async def tcp_server(
    handler: Callable[[anyio.abc.SocketStream], Awaitable[None]],
) -> AsyncIterator[str]:
    """Serve ``handler`` on a loopback port for the block; yield the base URL (``http://``)."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tasks:
        tasks.start_soon(listener.serve, handler)
        yield f"http://127.0.0.1:{listener.extra(anyio.abc.SocketAttribute.local_port)}"
        tasks.cancel_scope.cancel()


async def read_request(stream: anyio.abc.SocketStream) -> bytes:
    """An HTTP request's head."""
    request = b""
    while b"\r\n\r\n" not in request:
        request += await stream.receive()
    return request


async def reply(
    stream: anyio.abc.SocketStream, status: bytes, headers: bytes, body: bytes = b""
) -> None:
    """Answer with an HTTP response, then close the connection."""
    head = b"HTTP/1.1 %s\r\n%sContent-Length: %d\r\n\r\n" % (status, headers, len(body))
    await stream.send(head + body)
    await stream.aclose()


@attrs.define
class Recorded:
    """What a test WebSocket server saw of one connection."""

    frames: list[str] = attrs.field(factory=list)
    close: tuple[int, str] | None = None
    """The client's close frame (code, reason); ``None`` if the connection ended without one."""
    pongs: list[bytes] = attrs.field(factory=list)
    """The payloads of the client's pongs."""


@asynccontextmanager
async def websocket_server(
    first: Sequence[str] = (), ping: bytes | None = None
) -> AsyncIterator[tuple[str, list[Recorded]]]:
    """A WebSocket server that records each connection, answers closes and pings, and sends
    nothing but the messages ``first`` (then a ping with ``ping``, if given) on the first
    connection; yields its base URL and the connections."""
    connections: list[Recorded] = []

    async def handler(stream: anyio.abc.SocketStream) -> None:
        protocol = WSConnection(ConnectionType.SERVER)
        recorded = Recorded()
        text: list[str] = []
        async with stream:
            while recorded.close is None:
                try:
                    protocol.receive_data(await stream.receive())
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
                for event in protocol.events():
                    if isinstance(event, Request):
                        await stream.send(protocol.send(AcceptConnection()))
                        connections.append(recorded)
                        if len(connections) == 1:
                            for message in first:
                                await stream.send(protocol.send(TextMessage(message)))
                            if ping is not None:
                                await stream.send(protocol.send(Ping(ping)))
                    elif isinstance(event, TextMessage):
                        text.append(event.data)
                        if event.message_finished:
                            recorded.frames.append("".join(text))
                            text.clear()
                    elif isinstance(event, Ping):
                        await stream.send(protocol.send(event.response()))
                    elif isinstance(event, Pong):
                        recorded.pongs.append(bytes(event.payload))
                    elif isinstance(event, CloseConnection):
                        recorded.close = (event.code, event.reason or "")
                        await stream.send(protocol.send(event.response()))

    async with tcp_server(handler) as url:
        yield url, connections


def unwrap(exc: BaseException) -> BaseException:
    """The exception itself, or the only one a group holds (at any depth)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
