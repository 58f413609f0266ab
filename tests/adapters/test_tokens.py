"""Access tokens on each loop: one refresh shared by concurrent callers, on the loop's own
events, and a failing provider reported as such."""

from __future__ import annotations

import anyio
import pytest

from polyai_messaging.rest import AccessToken
from polyai_messaging.runtime import Token, TokenCache, TokenUnavailableError

from .helpers import TIMEOUT, Adapter

pytestmark = pytest.mark.anyio


async def test_token_refresh_is_single_flight(adapter: Adapter) -> None:
    calls = 0
    release = adapter.new_event()

    async def provider() -> AccessToken:
        nonlocal calls
        calls += 1
        await release.wait()
        return AccessToken(f"tok-{calls}", 3600)

    cache = TokenCache(provider, wall=lambda: 0.0, new_event=adapter.new_event)
    results: list[Token] = []

    async def get() -> None:
        results.append(await cache.get())

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tasks:
            for _ in range(5):
                tasks.start_soon(get)
            await anyio.wait_all_tasks_blocked()
            release.set()
    assert calls == 1
    assert [token.secret for token in results] == ["tok-1"] * 5
    cache.invalidate(results[0])
    assert (await cache.get()).secret == "tok-2"


async def test_token_provider_failure_is_wrapped(adapter: Adapter) -> None:
    async def provider() -> AccessToken:
        raise RuntimeError("backend down")

    cache = TokenCache(provider, wall=lambda: 0.0, new_event=adapter.new_event)
    with pytest.raises(TokenUnavailableError) as caught:
        await cache.get()
    assert isinstance(caught.value.__cause__, RuntimeError)


async def test_token_provider_failure_names_its_cause(adapter: Adapter) -> None:
    """The library's own error is said in full (its texts hold no secret); a provider's other
    exceptions only by type, since their text is the application's and may hold anything."""
    from polyai_messaging.rest import ServerError

    async def failing_rest() -> AccessToken:
        raise ServerError("POST /api/v1/access-token failed with HTTP 500", status=500)

    async def leaky() -> AccessToken:
        raise RuntimeError("connector token abc123 rejected")

    cache = TokenCache(failing_rest, wall=lambda: 0.0, new_event=adapter.new_event)
    with pytest.raises(TokenUnavailableError, match=r"provider failed: POST .* HTTP 500"):
        await cache.get()
    cache = TokenCache(leaky, wall=lambda: 0.0, new_event=adapter.new_event)
    with pytest.raises(TokenUnavailableError) as caught:
        await cache.get()
    assert str(caught.value) == "the token provider failed: RuntimeError"
