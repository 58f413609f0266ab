"""``polyai_messaging.testing``: ``open_emulator`` and the pytest plugin's fixtures, in users'
own test runs (pytester) under pytest-trio and under anyio's plugin on asyncio."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

import polyai_messaging.testing
from polyai_messaging.testing import open_emulator

pytest_plugins = ["pytester"]

PLUGIN = "polyai_messaging.testing._plugin"

USERS_TESTS = """
import anyio
import pytest
import sniffio
import trio

from polyai_messaging.asyncio import open_session as open_asyncio_session
from polyai_messaging.driver import Backoff, SessionConfig
from polyai_messaging.emulator import EmulatorConfig
from polyai_messaging.trio import open_session

QUICK = SessionConfig(replay_quiet_seconds=0.05, backoff=Backoff(base=0.05))


@pytest.mark.trio
async def test_a_trio_session_survives_a_drop(messaging_emulator, messaging_token_provider):
    async with open_session(
        messaging_emulator.base_url, messaging_token_provider, config=QUICK
    ) as session:
        with trio.fail_after(20):
            await session.wait_reply()  # the greeting
            messaging_emulator.set_faults("drop-after=1:1")  # the echo, then the cut
            sent = await session.send("hello")
            update = await session.wait_reply(sent)
    assert update.conversation.transcript[-1].text.startswith('You said: "hello"')
    assert session.state.counters.reconnects == 1
    journal = messaging_emulator.journal(session.session_id).types()
    assert journal.count("EVENT_TYPE_USER_MESSAGE") == 1


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_asyncio_session(messaging_emulator, messaging_token_provider):
    assert sniffio.current_async_library() == "asyncio"
    async with open_asyncio_session(
        messaging_emulator.base_url, messaging_token_provider, config=QUICK
    ) as session:
        with anyio.fail_after(20):
            await session.wait_reply()  # the greeting
            update = await session.wait_reply(await session.send("hello"))
    assert update.conversation.transcript[-1].text.startswith('You said: "hello"')
    journal = messaging_emulator.journal(session.session_id).types()
    assert journal.count("EVENT_TYPE_USER_MESSAGE") == 1
    assert messaging_emulator.state.config == EmulatorConfig.fast()


class TestAnOverriddenConfig:
    @pytest.fixture
    def messaging_emulator_config(self):
        return EmulatorConfig.fast(heartbeat_interval_seconds=7)

    @pytest.mark.anyio
    @pytest.mark.parametrize("anyio_backend", ["trio", "asyncio"])
    async def test_it_is_used(self, messaging_emulator):
        assert messaging_emulator.state.config.heartbeat_interval_seconds == 7
"""


def run_users_tests(pytester: pytest.Pytester, *plugins: str) -> pytest.RunResult:
    """The users' test file, run in a pytest subprocess with exactly ``plugins`` loaded."""
    pytester.makepyfile(test_users=USERS_TESTS)
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    arguments = [option for plugin in plugins for option in ("-p", plugin)]
    return pytester.runpytest_subprocess(*arguments, "-p", "no:cacheprovider", timeout=120)


def test_the_fixtures_work_under_pytest_trio_and_anyio_on_asyncio(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = run_users_tests(pytester, "pytest_trio.plugin", "anyio.pytest_plugin", PLUGIN)
    result.assert_outcomes(passed=4)


def test_the_plugin_is_a_pytest11_entry_point_that_pytest_loads(
    pytester: pytest.Pytester,
) -> None:
    names = {point.name: point.value for point in metadata.entry_points(group="pytest11")}
    assert names.get("polyai_messaging") == PLUGIN, (
        "the pytest11 entry point is not installed: reinstall the package (pip install -e .)"
    )
    result = pytester.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        ["*messaging_emulator_config*", "*messaging_emulator*", "*messaging_token_provider*"]
    )


def test_importing_the_plugin_imports_no_event_loop_server_or_http_client() -> None:
    heavy = ["anyio", "httpx", "hypercorn", "trio", "trio_websocket", "websockets"]
    code = f"import sys, {PLUGIN}; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert result.stdout.strip() == "[]"


def test_the_testing_package_exports_and_documents_its_helpers() -> None:
    exported = {"LocalEmulator", "ScriptResult", "is_script", "open_emulator", "run_script"}
    assert set(polyai_messaging.testing.__all__) == exported
    documentation = polyai_messaging.testing.__doc__ or ""
    for name in exported:
        assert getattr(polyai_messaging.testing, name).__doc__
        assert name in documentation


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio", "asyncio"])
async def test_open_emulator_with_tls_hands_out_a_trusting_context() -> None:
    async with open_emulator(tls=True) as emulator:
        assert emulator.base_url.startswith("https://127.0.0.1:")
        token = await emulator.token_provider()  # minted over HTTPS, trusting the emulator's CA
        assert token.secret
        assert emulator.ssl_context is not None
    async with open_emulator() as plain:
        assert plain.ssl_context is None
        assert plain.state.config.reply_delay_seconds == 0.0  # EmulatorConfig.fast() by default
