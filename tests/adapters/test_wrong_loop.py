"""Each adapter's ``open_session`` runs on its own loop only; on another it says which to use,
before anything is connected (rather than an obscure error from deep in the other loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import trio

import polyai_messaging.asyncio
import polyai_messaging.trio
from polyai_messaging.rest import AccessToken


async def _never() -> AccessToken:
    raise AssertionError("no token may be asked for on the wrong loop")


def _opening(open_session: Any) -> Callable[[], Any]:
    async def attempt() -> None:
        async with open_session("http://127.0.0.1:1", _never):
            raise AssertionError("opened on the wrong loop")

    return attempt


def test_the_trio_adapter_under_asyncio_names_the_asyncio_one() -> None:
    with pytest.raises(RuntimeError) as caught:
        asyncio.run(_opening(polyai_messaging.trio.open_session)())
    assert str(caught.value) == (
        "polyai_messaging.trio.open_session runs on trio, but this code runs on asyncio:"
        " use polyai_messaging.asyncio.open_session"
    )


def test_the_asyncio_adapter_under_trio_names_the_trio_one() -> None:
    with pytest.raises(RuntimeError, match=r"use polyai_messaging\.trio\.open_session$"):
        trio.run(_opening(polyai_messaging.asyncio.open_session))
