"""Serving: ports, loopback only, TLS with a trustme CA, clean shutdown, serve_forever."""

from __future__ import annotations

import anyio
import anyio.abc
import httpx
import pytest

from polyai_messaging.emulator import (
    DEMO_CONNECTOR_TOKEN,
    EmulatorConfig,
    RunningEmulator,
    run_emulator,
    serve_forever,
)

from .helpers import Harness, close_code, start, types

pytestmark = pytest.mark.anyio


async def test_an_error_raised_in_the_block_comes_out_as_raised_cause_and_all() -> None:
    """What the ``async with`` body raises is handed back as it is, not in a group, and keeps
    its own cause: a caller explaining a failure reads the cause."""
    cause = OSError("the real reason")

    async def fail_inside() -> None:
        async with run_emulator():
            try:
                raise cause
            except OSError as exc:
                raise LookupError("what failed") from exc

    with pytest.raises(LookupError) as caught:
        await fail_inside()
    assert caught.value.__cause__ is cause
    assert not isinstance(caught.value.__context__, BaseExceptionGroup)


async def test_port_zero_picks_a_free_port() -> None:
    async with run_emulator() as first, run_emulator() as second:
        assert first.port > 0
        assert first.port != second.port
        assert first.base_url == f"http://127.0.0.1:{first.port}"
        assert first.ws_url == f"ws://127.0.0.1:{first.port}/ws"
        assert not first.tls
        assert first.config == EmulatorConfig()
        url = first.ws_connect_url("s", "t", cursor=3)
        assert url == f"ws://127.0.0.1:{first.port}/ws?session_id=s&access_token=t&cursor=3"
        with pytest.raises(RuntimeError, match="tls=True"):
            first.client_ssl_context()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.1", "example.com"])
async def test_only_loopback(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        async with run_emulator(host=host):
            pass  # pragma: no cover


async def test_localhost_means_127_0_0_1() -> None:
    async with run_emulator(host="localhost") as emulator:
        assert emulator.host == "127.0.0.1"


async def test_shutdown_closes_sockets_with_1001() -> None:
    stop = anyio.Event()

    async def serve(*, task_status: anyio.abc.TaskStatus[Harness]) -> None:
        async with start(EmulatorConfig.fast()) as harness:
            task_status.started(harness)
            await stop.wait()

    async with anyio.create_task_group() as tasks:
        harness: Harness = await tasks.start(serve)
        async with harness.session_socket() as client:
            stop.set()
            assert await close_code(client) == 1001
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=harness.emulator.base_url) as http:
            await http.post("/api/v1/access-token")


async def test_tls_end_to_end() -> None:
    async with start(EmulatorConfig.fast(), tls=True) as harness:
        emulator = harness.emulator
        assert emulator.tls
        assert emulator.base_url.startswith("https://127.0.0.1:")
        assert emulator.ws_url.startswith("wss://127.0.0.1:")
        async with harness.session_socket(streaming=True) as client:
            frames = await client.join()
            assert types(frames)[:2] == ["REQUEST_POLY_AGENT_JOIN", "POLY_AGENT_JOINED"]
            harness.state.set_faults("drop-after=1")
            await client.send("HEARTBEAT")
            await client.frame()
            assert await close_code(client) == 1006


async def test_tls_rejects_untrusted_clients() -> None:
    async with run_emulator(tls=True) as emulator, httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):
            await http.post(f"{emulator.base_url}/api/v1/access-token")


async def test_serve_forever_reports_the_running_emulator() -> None:
    async with anyio.create_task_group() as tasks:
        emulator: RunningEmulator = await tasks.start(
            serve_forever, EmulatorConfig(), "127.0.0.1", 0
        )
        async with httpx.AsyncClient(base_url=emulator.base_url) as http:
            response = await http.post(
                "/api/v1/access-token",
                headers={"X-Token": DEMO_CONNECTOR_TOKEN, "X-Host": "http://localhost:3000"},
            )
        assert response.status_code == 200
        tasks.cancel_scope.cancel()


async def test_state_run_is_required_for_sessions() -> None:
    from polyai_messaging.emulator import EmulatorState

    state = EmulatorState(EmulatorConfig())
    token = state.mint_access_token(DEMO_CONNECTOR_TOKEN)
    with pytest.raises(RuntimeError, match="not running"):
        state.create_session(token)
    with pytest.raises(ValueError, match="access token"):
        state.create_session("nope")


async def test_body_exceptions_are_not_wrapped() -> None:
    with pytest.raises(KeyError, match="boom"):
        async with run_emulator():
            raise KeyError("boom")


async def test_cancellation_stops_everything_cleanly() -> None:
    with anyio.move_on_after(0.3) as scope:
        async with start(EmulatorConfig.fast()) as harness, harness.session_socket() as client:
            await client.join()
            await anyio.sleep_forever()
    assert scope.cancelled_caught


async def test_idle_http_connection_does_not_delay_shutdown() -> None:
    async with httpx.AsyncClient() as http:
        async with run_emulator() as emulator:
            response = await http.post(
                f"{emulator.base_url}/api/v1/access-token",
                headers={"X-Token": DEMO_CONNECTOR_TOKEN, "X-Host": "localhost"},
            )
            assert response.status_code == 200
            stopping = anyio.current_time()
        # The pooled keep-alive connection is closed promptly, not after a grace period.
        assert anyio.current_time() - stopping < 1.0
