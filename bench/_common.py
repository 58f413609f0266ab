"""What the system benchmarks share: emulators in other processes, sessions on either loop,
probes that timestamp what the sessions do, and the figures' arithmetic.

The benchmarks (``roundtrip``, ``sessions``, ``resume``, ``storm``) run their async code through
:func:`anyio.run` on trio or asyncio, with that loop's adapter (:func:`adapter`). The emulator
always runs in another process, so that its work is neither timed nor counted as the client's:

* :func:`cli_emulator` starts ``python -m polyai_messaging.cli emulator --port 0`` and reads the
  first line it prints (where it listens);
* :func:`controlled_emulator` starts this file as a script (:func:`serve`): the same emulator,
  which also takes commands on its stdin, one JSON object a line, and answers each with one
  (``drop`` the sockets of some or all sessions; ``grow`` a session's journal, dropping its
  sockets first if asked, so that its client misses what is journaled).

Run as a script, this file is that controlled emulator (``python bench/_common.py --help``).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
from anyio.streams.buffered import BufferedByteReceiveStream

from polyai_messaging.core import Heartbeat, encode
from polyai_messaging.rest import AccessToken, connector_token_provider, http_client
from polyai_messaging.runtime import SessionRuntime

BACKENDS = ("trio", "asyncio")
"""The event loops the benchmarks run on, each with its adapter."""

HEARTBEAT_FRAME = encode(Heartbeat())
"""The frame a session sends as a heartbeat (it carries nothing else)."""

_MAX_LINE = 1 << 20


def add_adapter_option(parser: argparse.ArgumentParser) -> None:
    """``--adapter NAME``: run one adapter only (for profiling); the figures are then its own."""
    parser.add_argument("--adapter", choices=BACKENDS, help="only this adapter (default: both)")


def chosen_adapters(arguments: argparse.Namespace) -> tuple[str, ...]:
    """The adapters ``--adapter`` asks for."""
    return BACKENDS if arguments.adapter is None else (arguments.adapter,)


# --- the machine and the output ------------------------------------------------------------


def machine() -> str:
    """One line saying what ran the benchmark."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"python {platform.python_version()} on {platform.system()} {platform.release()}, "
        f"{os.cpu_count()} CPUs ({model})"
    )


def emit(figures: dict[str, Any]) -> None:
    """Print the figures as the last line of output: one JSON object."""
    print(json.dumps(figures), flush=True)


def rss_bytes() -> int:
    """This process's resident set size now (Linux ``/proc/self/statm``)."""
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


# --- arithmetic ----------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile (0.5: median) of ``values``, interpolated between neighbours."""
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=1000, method="inclusive")
    return cuts[round(share * 1000) - 1]


def busiest_window(times: list[float], width: float) -> int:
    """The most of ``times`` that fall inside any one window ``width`` long (a sliding window,
    so stricter than counting fixed bins)."""
    ordered = sorted(times)
    start = most = 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= width:
            start += 1
        most = max(most, end - start + 1)
    return most


# --- the adapters --------------------------------------------------------------------------

OpenSession = Callable[..., contextlib.AbstractAsyncContextManager[SessionRuntime]]


def adapter(backend: str) -> OpenSession:
    """The ``open_session`` of the adapter for ``backend`` (the loop running now)."""
    if backend == "trio":
        from polyai_messaging.trio import open_session  # noqa: PLC0415 - one loop per run

        return open_session
    from polyai_messaging.asyncio import open_session as open_on_asyncio  # noqa: PLC0415

    return open_on_asyncio


def session_class(backend: str) -> type[SessionRuntime]:
    """The adapter's session class (whose ``open_link`` a probe may watch)."""
    if backend == "trio":
        from polyai_messaging.trio import Session  # noqa: PLC0415 - one loop per run

        return Session
    from polyai_messaging.asyncio import Session as OnAsyncio  # noqa: PLC0415

    return OnAsyncio


# --- emulators in other processes ----------------------------------------------------------


@dataclass(frozen=True)
class Emulator:
    """Where an emulator listens, and the demo connector's credentials (public values)."""

    base_url: str
    connector_token: str
    host: str

    @classmethod
    def from_line(cls, line: bytes | str) -> Emulator:
        """From the JSON line the emulator prints first."""
        info = json.loads(line)
        return cls(info["base_url"], info["connector_token"], info["host"])


def _child_environment() -> dict[str, str]:
    """This process's environment, with ``polyai_messaging`` importable the same way."""
    environment = dict(os.environ)
    source = str(Path(__file__).resolve().parents[1] / "src")
    paths = [source, *environment.get("PYTHONPATH", "").split(os.pathsep)]
    environment["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
    return environment


@contextlib.contextmanager
def cli_emulator(*options: str) -> Iterator[Emulator]:
    """``polyai-messaging emulator --port 0 --fast *options`` in another process, for the block.

    Its stderr is kept in a temporary file and shown if it fails to start.
    """
    command = [
        sys.executable, "-m", "polyai_messaging.cli", "emulator", "--port", "0", "--fast",
        *options,
    ]  # fmt: skip
    with (
        open(os.devnull, "wb") as sink,
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=sink, env=_child_environment()
        ) as process,
    ):
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"the emulator did not start: {' '.join(command)}")
            yield Emulator.from_line(line)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


@dataclass
class ControlledEmulator:
    """An emulator in another process that takes commands (see :func:`serve`)."""

    emulator: Emulator
    process: anyio.abc.Process
    lines: BufferedByteReceiveStream
    lock: anyio.Lock = field(default_factory=anyio.Lock)

    async def command(self, op: str, **arguments: Any) -> dict[str, Any]:
        """Send one command and return the emulator's answer."""
        assert self.process.stdin is not None
        async with self.lock:
            request = json.dumps({"op": op, **arguments}) + "\n"
            await self.process.stdin.send(request.encode())
            answer: dict[str, Any] = json.loads(await self.lines.receive_until(b"\n", _MAX_LINE))
        return answer


@contextlib.asynccontextmanager
async def controlled_emulator(*options: str) -> AsyncIterator[ControlledEmulator]:
    """This file run as a script (:func:`serve`) with ``options``, for the block."""
    command = [sys.executable, __file__, *options]
    async with await anyio.open_process(
        command, stderr=subprocess.DEVNULL, env=_child_environment()
    ) as process:
        assert process.stdout is not None
        lines = BufferedByteReceiveStream(process.stdout)
        try:
            first = await lines.receive_until(b"\n", _MAX_LINE)
            yield ControlledEmulator(Emulator.from_line(first), process, lines)
        finally:
            process.terminate()
            with anyio.move_on_after(10):
                await process.wait()


# --- clients -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def client_for(emulator: Emulator) -> AsyncIterator[Client]:
    """One HTTP client and one access token for every session of a benchmark, as an
    application running many sessions would share them."""
    async with http_client(None, None) as http:
        yield Client(emulator, http)


@dataclass
class Client:
    """The REST side the sessions of one benchmark share."""

    emulator: Emulator
    http: httpx.AsyncClient
    _token: AccessToken | None = None

    @property
    def base_url(self) -> str:
        """The emulator's REST base URL."""
        return self.emulator.base_url

    async def token(self) -> AccessToken:
        """A token provider: one access token, minted once, for every session."""
        if self._token is None:
            mint = connector_token_provider(
                self.emulator.base_url,
                self.emulator.connector_token,
                self.emulator.host,
                client=self.http,
            )
            self._token = await mint()
        return self._token

    def open(self, backend: str, **options: Any) -> contextlib.AbstractAsyncContextManager[Any]:
        """``open_session`` on ``backend``'s adapter, with the shared client and token."""
        return adapter(backend)(self.base_url, self.token, http_client=self.http, **options)


# --- probes --------------------------------------------------------------------------------


@contextlib.contextmanager
def watching(owner: type[Any], name: str, record: Callable[..., None]) -> Iterator[None]:
    """Call ``record(self, *args)`` before each call of ``owner.name`` (a method), for the block.

    This is how the benchmarks see, from outside the library's code, when a session opens a
    link, sends a heartbeat or sees a link open: one call and a list append per event.
    """
    original = getattr(owner, name)

    def watched(self: Any, *args: Any) -> Any:
        record(self, *args)
        return original(self, *args)

    setattr(owner, name, watched)
    try:
        yield
    finally:
        setattr(owner, name, original)


@dataclass
class GcPauses:
    """The garbage collector's pauses while installed (:func:`gc_pauses`)."""

    longest: float = 0.0
    total: float = 0.0
    full: int = 0
    """Collections of the oldest generation."""
    _started: float = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        self.longest = max(self.longest, pause)
        self.total += pause
        self.full += info["generation"] == 2

    def __str__(self) -> str:
        return (
            f"GC pauses: longest {self.longest * 1e3:.0f} ms, total {self.total * 1e3:.0f} ms, "
            f"{self.full} full collections"
        )


@contextlib.contextmanager
def gc_pauses() -> Iterator[GcPauses]:
    """Time the garbage collector's pauses for the block."""
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(pauses)


# --- the controlled emulator (this file as a script) ---------------------------------------


def _grow(state: Any, session_id: str, count: int) -> int:
    """Journal ``count`` events in a session: the agent joining first (a conversation under
    way, which the client need not join), then user messages and agent replies, alternately,
    of an ordinary size. Returns the last sequence."""
    session = state.session(session_id)
    first = session.journal.last_sequence + 1
    for number in range(first, first + count):
        if number == 2:
            session.publish("EVENT_TYPE_POLY_AGENT_JOINED", {"agent_name": "Ada"})
        elif number % 2:
            session.publish(
                "EVENT_TYPE_USER_MESSAGE",
                {"text": f"message {number}: a table for four at 7pm", "message_id": f"u{number}"},
                metadata={"custom": {"client_event_id": f"grown-{number}"}},
            )
        else:
            session.publish(
                "EVENT_TYPE_POLY_AGENT_MESSAGE",
                {
                    "message_id": f"a{number}",
                    "text": f"reply {number}: I can help you with that booking. Anything else?",
                    "attachments": [],
                    "response_suggestions": [{"message_text": "No, thanks"}],
                },
            )
    last: int = session.journal.last_sequence
    return last


def _answer(state: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Carry out one command (see the module docstring)."""
    op = request["op"]
    if op == "drop":
        chosen = request.get("sessions")
        ids = list(state.sessions) if chosen is None else chosen
        sockets = sum(state.drop_sockets(session_id) for session_id in ids)
        return {"sessions": len(ids), "sockets": sockets}
    if op == "grow":
        # Dropping first makes the grown events ones the client missed.
        if request.get("drop_first", False):
            state.drop_sockets(request["session"])
        return {"last_sequence": _grow(state, request["session"], int(request["events"]))}
    return {"error": f"unknown op {op!r}"}


async def _serve(arguments: argparse.Namespace) -> None:
    from polyai_messaging.emulator import (  # noqa: PLC0415 - only the child needs it
        DEMO_CONNECTOR_TOKEN,
        DEMO_HOST,
        EmulatorConfig,
        run_emulator,
    )

    config = EmulatorConfig.fast(always_prepend_session_start=arguments.prepend_session_start)
    async with run_emulator(config) as emulator:
        ready = {
            "base_url": emulator.base_url,
            "connector_token": DEMO_CONNECTOR_TOKEN,
            "host": DEMO_HOST,
        }
        print(json.dumps(ready), flush=True)
        async with anyio.wrap_file(sys.stdin) as commands:
            async for line in commands:
                answer = _answer(emulator.state, json.loads(line))
                print(json.dumps(answer), flush=True)


def serve() -> None:
    """The controlled emulator: print where it listens, then answer commands until stdin ends."""
    parser = argparse.ArgumentParser(description=serve.__doc__)
    parser.add_argument(
        "--prepend-session-start",
        action="store_true",
        help="re-send SESSION_START first in every replay that starts after it",
    )
    anyio.run(_serve, parser.parse_args(), backend="trio")


@dataclass
class Hosted:
    """A session kept open by a task of its own (see :func:`host`)."""

    session: SessionRuntime
    _leave: anyio.Event
    _left: anyio.Event

    async def close(self) -> None:
        """Leave the session's block, and wait until it has closed."""
        self._leave.set()
        await self._left.wait()


async def host(
    tasks: anyio.abc.TaskGroup, opening: contextlib.AbstractAsyncContextManager[Any]
) -> Hosted:
    """Enter ``opening`` (an ``open_session``) in a new task of ``tasks``, and return the
    session once open. Trio wants each session's nursery closed by the task that opened it,
    innermost first: a task each lets sessions close in any order."""
    leave, left = anyio.Event(), anyio.Event()

    async def run(*, task_status: anyio.abc.TaskStatus[SessionRuntime]) -> None:
        try:
            async with opening as session:
                task_status.started(session)
                await leave.wait()
        finally:
            left.set()

    session: SessionRuntime = await tasks.start(run)
    return Hosted(session, leave, left)


async def hold_sessions(
    client: Client,
    backend: str,
    count: int,
    ready: list[SessionRuntime],
    release: anyio.Event,
    *,
    limit: int = 50,
    **options: Any,
) -> None:
    """Open ``count`` sessions, at most ``limit`` at a time, each until the agent's greeting;
    add each to ``ready`` and keep them all open until ``release`` is set."""
    gate = anyio.Semaphore(limit)

    async def hold() -> None:
        await gate.acquire()
        opening = True
        try:
            async with client.open(backend, **options) as session:
                await session.wait_reply()
                gate.release()
                opening = False
                ready.append(session)
                await release.wait()
        finally:
            if opening:
                gate.release()

    async with anyio.create_task_group() as tasks:
        for _ in range(count):
            tasks.start_soon(hold)


if __name__ == "__main__":
    serve()
