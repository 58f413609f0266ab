"""An adapter's part of ``open_session`` (``SessionTasks``), with a stand-in task group and
session: what runs in which order however the block is left, and what comes out of it."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

import pytest

from polyai_messaging.rest._tasks import SessionTasks


class Group:
    """A task group that records how it was left, and may raise or suppress."""

    def __init__(self, log: list[str], *, wrap: bool = False, suppress: bool = False) -> None:
        self.log = log
        self.wrap = wrap
        self.suppress = suppress

    async def __aenter__(self) -> str:
        self.log.append("group entered")
        return "group"

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        self.log.append(f"group left with {type(exc).__name__ if exc else None}")
        if exc is not None and self.wrap:
            raise BaseExceptionGroup("tasks", [exc])
        return self.suppress


class Session:
    def __init__(self, log: list[str], fail: str | None) -> None:
        self.log = log
        self.fail = fail

    def start(self) -> None:
        self.log.append("started")
        if self.fail == "start":
            raise KeyError("start")

    async def shutdown(self) -> None:
        self.log.append("shut down")
        if self.fail == "shutdown":
            raise KeyError("shutdown")


def tasks(log: list[str], fail: str | None = None, **group: bool) -> SessionTasks[Any, Any]:
    options: dict[str, Any] = {"state": "first"}

    def make(group: str, ssl_context: None, options: dict[str, Any]) -> Session:
        log.append(f"made in {group} from {sorted(options)}")
        return Session(log, fail)

    async def stop(session: Session) -> None:
        log.append("stopped")
        if fail == "stop":
            raise KeyError("stop")

    return SessionTasks(Group(log, **group), make, stop, options, None)  # type: ignore[arg-type]


def run(
    log: list[str], fail: str | None = None, body: BaseException | None = None, **group: bool
) -> None:
    async def main() -> None:
        async with tasks(log, fail, **group):
            log.append("block")
            if body is not None:
                raise body

    asyncio.run(main())


def test_a_normal_exit_shuts_down_then_stops_then_leaves_the_group() -> None:
    log: list[str] = []
    run(log)
    assert log == [
        "group entered", "made in group from ['state']", "started", "block", "shut down",
        "stopped", "group left with None",
    ]  # fmt: skip


def test_an_exception_in_the_block_stops_without_shutting_down_and_comes_out_as_it_is() -> None:
    log: list[str] = []
    with pytest.raises(ZeroDivisionError):
        run(log, body=ZeroDivisionError())
    assert log[-2:] == ["stopped", "group left with ZeroDivisionError"]
    assert "shut down" not in log


@pytest.mark.parametrize("fail", ["shutdown", "stop"])
def test_what_shutting_down_or_stopping_raises_goes_through_the_group_and_comes_out(
    fail: str,
) -> None:
    log: list[str] = []
    with pytest.raises(KeyError, match=fail):
        run(log, fail)
    assert log[-2:] == ["stopped", "group left with KeyError"]


def test_a_lone_exception_the_group_wraps_comes_out_unwrapped() -> None:
    log: list[str] = []
    with pytest.raises(ZeroDivisionError):
        run(log, body=ZeroDivisionError(), wrap=True)


def test_what_the_group_suppresses_stays_suppressed() -> None:
    log: list[str] = []
    run(log, body=ZeroDivisionError(), suppress=True)
    assert log[-1] == "group left with ZeroDivisionError"


def test_a_session_that_fails_to_start_is_stopped_and_the_group_left() -> None:
    log: list[str] = []
    with pytest.raises(KeyError, match="start"):
        run(log, "start")
    assert log == [
        "group entered", "made in group from ['state']", "started", "stopped",
        "group left with KeyError",
    ]  # fmt: skip
