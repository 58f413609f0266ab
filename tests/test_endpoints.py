"""Tests for ``polyai_messaging.driver``: base URLs, REST and WebSocket URLs, TLS rules."""

from __future__ import annotations

import inspect
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polyai_messaging.core import LocalProtocolError
from polyai_messaging.driver import (
    DEFAULT_BASE_URL,
    Cluster,
    access_token_url,
    base_url_for,
    check_transport_security,
    is_loopback_host,
    redact_text,
    redact_url,
    sessions_url,
    websocket_url,
)
from polyai_messaging.driver import _endpoints as endpoints

US = "https://messaging.us-1.poly.ai"
SECRET = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.SIGNATURE"

LOOPBACK_HTTP = [
    "http://127.0.0.1",
    "http://127.0.0.1:8080",
    "http://127.5.5.5:9",
    "http://127.255.255.254",
    "http://[::1]",
    "http://[::1]:8443",
    "http://localhost",
    "http://localhost:8000",
    "http://LocalHost:8000",
]
NON_LOOPBACK_HTTP = [
    "http://messaging.us-1.poly.ai",
    "http://example.com:80",
    "http://10.0.0.1",
    "http://192.168.1.1:8080",
    "http://128.0.0.1",
    "http://[::2]",
    "http://[fe80::1]",
    "http://0.0.0.0",
    "http://127.0.0.1.nip.io",
    "http://localhost.example.com",
    "http://mylocalhost",
    "http://2130706433",
]


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True, strict_parsing=True)


# --- clusters and base URLs --------------------------------------------------------------------


def test_cluster_values() -> None:
    assert [c.value for c in Cluster] == ["us-1", "uk-1", "euw-1"]
    assert DEFAULT_BASE_URL == "https://messaging.poly.ai"


@pytest.mark.parametrize(
    ("cluster", "expected"),
    [
        (Cluster.US_1, "https://messaging.us-1.poly.ai"),
        (Cluster.UK_1, "https://messaging.uk-1.poly.ai"),
        (Cluster.EUW_1, "https://messaging.euw-1.poly.ai"),
        ("us-1", "https://messaging.us-1.poly.ai"),
        ("euw-1", "https://messaging.euw-1.poly.ai"),
    ],
)
def test_base_url_for(cluster: Cluster | str, expected: str) -> None:
    assert base_url_for(cluster) == expected


def test_base_url_for_unknown_cluster() -> None:
    with pytest.raises(ValueError, match="us-2"):
        base_url_for("us-2")


# --- REST URLs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/", "//", "///"])
def test_rest_urls_normalise_trailing_slashes(suffix: str) -> None:
    assert access_token_url(US + suffix) == f"{US}/api/v1/access-token"
    assert sessions_url(US + suffix) == f"{US}/api/v1/sessions"


def test_rest_urls_for_every_cluster_and_default() -> None:
    for cluster in Cluster:
        base = base_url_for(cluster)
        assert (
            access_token_url(base)
            == f"https://messaging.{cluster.value}.poly.ai/api/v1/access-token"
        )
        assert sessions_url(base) == f"https://messaging.{cluster.value}.poly.ai/api/v1/sessions"
    assert access_token_url(DEFAULT_BASE_URL) == "https://messaging.poly.ai/api/v1/access-token"


def test_rest_urls_keep_port_and_path_prefix() -> None:
    assert sessions_url("https://proxy.example:8443/polyai/") == (
        "https://proxy.example:8443/polyai/api/v1/sessions"
    )
    assert access_token_url("HTTPS://messaging.poly.ai") == (
        "https://messaging.poly.ai/api/v1/access-token"
    )


@pytest.mark.parametrize("base", LOOPBACK_HTTP)
def test_rest_urls_accept_plain_http_on_loopback(base: str) -> None:
    assert sessions_url(base + "/").startswith("http://")
    check_transport_security(base)


@pytest.mark.parametrize("base", NON_LOOPBACK_HTTP)
def test_rest_urls_refuse_plain_http_elsewhere(base: str) -> None:
    with pytest.raises(LocalProtocolError, match="TLS"):
        access_token_url(base)
    with pytest.raises(LocalProtocolError, match="TLS"):
        sessions_url(base)
    with pytest.raises(LocalProtocolError, match="TLS"):
        check_transport_security(base)


@pytest.mark.parametrize(
    "base",
    [
        "wss://messaging.poly.ai",
        "ftp://messaging.poly.ai",
        "messaging.poly.ai",
        "https://",
        "https://user:pass@messaging.poly.ai",
        "https://messaging.poly.ai/?x=1",
        "https://messaging.poly.ai/#frag",
        "https://[::1",
        "https://messaging.poly.ai:99999",
    ],
)
def test_rest_urls_refuse_bad_base_urls(base: str) -> None:
    with pytest.raises(LocalProtocolError):
        access_token_url(base)


def test_check_transport_security_accepts_tls_schemes() -> None:
    check_transport_security(US)
    check_transport_security("wss://messaging.us-1.poly.ai/ws")
    check_transport_security("ws://127.0.0.1:1234")
    with pytest.raises(LocalProtocolError):
        check_transport_security("ws://example.com")
    with pytest.raises(LocalProtocolError):
        check_transport_security("gopher://example.com")


def test_check_transport_security_rejects_non_str() -> None:
    with pytest.raises(TypeError):
        check_transport_security(b"https://x")  # type: ignore[arg-type]


# --- loopback ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.5.5.5", "127.255.255.255", "::1", "[::1]", "localhost", "LOCALHOST",
     "::ffff:127.0.0.1"],
)  # fmt: skip
def test_is_loopback_host_true(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host",
    ["128.0.0.1", "10.0.0.1", "0.0.0.0", "::", "::2", "localhost.example", "127.0.0.1.nip.io",
     "", "example.com", "::ffff:10.0.0.1"],
)  # fmt: skip
def test_is_loopback_host_false(host: str) -> None:
    assert not is_loopback_host(host)


# --- WebSocket URLs ------------------------------------------------------------------------------


def test_websocket_url_basic() -> None:
    url = websocket_url(US, "a1b2c3d4-e5f6-7890-abcd-ef1234567890", "tok")
    assert url == (
        "wss://messaging.us-1.poly.ai/ws"
        "?session_id=a1b2c3d4-e5f6-7890-abcd-ef1234567890&access_token=tok"
    )


@pytest.mark.parametrize("suffix", ["", "/", "///"])
def test_websocket_url_trailing_slashes(suffix: str) -> None:
    url = websocket_url(US + suffix, "s", "t")
    assert url.startswith("wss://messaging.us-1.poly.ai/ws?")


def test_websocket_url_every_cluster() -> None:
    for cluster in Cluster:
        url = websocket_url(base_url_for(cluster), "s", "t", 3)
        assert (
            url
            == f"wss://messaging.{cluster.value}.poly.ai/ws?session_id=s&access_token=t&cursor=3"
        )


def test_websocket_url_cursor_omitted_at_zero() -> None:
    assert "cursor" not in websocket_url(US, "s", "t")
    assert "cursor" not in websocket_url(US, "s", "t", 0)
    assert "cursor" not in query(websocket_url(US, "s", "t", cursor=0))


@pytest.mark.parametrize("cursor", [1, 12, 10**12])
def test_websocket_url_cursor_is_plain_integer(cursor: int) -> None:
    url = websocket_url(US, "s", "t", cursor)
    assert query(url)["cursor"] == [str(cursor)]
    assert url.endswith(f"&cursor={cursor}")
    assert "seq" not in url


def test_websocket_url_rejects_bad_cursor() -> None:
    with pytest.raises(LocalProtocolError, match="non-negative"):
        websocket_url(US, "s", SECRET, -1)
    with pytest.raises(TypeError):
        websocket_url(US, "s", SECRET, True)
    with pytest.raises(TypeError):
        websocket_url(US, "s", SECRET, 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        websocket_url(US, "s", SECRET, "seq:3")  # type: ignore[arg-type]


def test_websocket_url_rejects_empty_ids() -> None:
    with pytest.raises(LocalProtocolError, match="session_id"):
        websocket_url(US, "", SECRET)
    with pytest.raises(LocalProtocolError, match="access_token"):
        websocket_url(US, "s", "")


@pytest.mark.parametrize(
    ("session_id", "token"),
    [
        ("a b", "x+y"),
        ("a&access_token=evil", "t=1&cursor=9"),
        ("é/ü?#", "ab%20cd"),
        ("line\nbreak", "tab\there"),
        ("日本語", "eyJ.a-b_c.~d/e=="),
    ],
)
def test_websocket_url_encodes_odd_values(session_id: str, token: str) -> None:
    url = websocket_url(US, session_id, token, 5)
    parts = urlsplit(url)
    assert parts.path == "/ws"
    assert not parts.fragment
    assert query(url) == {"session_id": [session_id], "access_token": [token], "cursor": ["5"]}
    assert f"access_token={quote(token, safe='')}" in url
    assert " " not in url
    assert "+" not in parts.query


@given(
    session_id=st.text(min_size=1, max_size=40),
    token=st.text(min_size=1, max_size=80),
    cursor=st.integers(min_value=0, max_value=2**63),
)
def test_websocket_url_round_trips(session_id: str, token: str, cursor: int) -> None:
    url = websocket_url(US, session_id, token, cursor)
    parsed = parse_qs(urlsplit(url).query, keep_blank_values=True)
    assert parsed["session_id"] == [session_id]
    assert parsed["access_token"] == [token]
    assert parsed.get("cursor") == ([str(cursor)] if cursor else None)
    assert urlsplit(url).scheme == "wss"


def test_websocket_url_https_becomes_wss() -> None:
    assert websocket_url("https://host.example:8443", "s", "t").startswith(
        "wss://host.example:8443/ws?"
    )
    assert websocket_url(DEFAULT_BASE_URL, "s", "t").startswith("wss://messaging.poly.ai/ws?")


@pytest.mark.parametrize(
    ("base", "prefix"),
    [
        ("wss://messaging.us-1.poly.ai", "wss://messaging.us-1.poly.ai/ws?"),
        ("wss://messaging.us-1.poly.ai/ws", "wss://messaging.us-1.poly.ai/ws?"),
        ("wss://messaging.us-1.poly.ai/ws/", "wss://messaging.us-1.poly.ai/ws?"),
        ("WSS://proxy.example/polyai/", "wss://proxy.example/polyai/ws?"),
        ("https://proxy.example/polyai", "wss://proxy.example/polyai/ws?"),
    ],
)
def test_websocket_url_explicit_and_prefixed_bases(base: str, prefix: str) -> None:
    assert websocket_url(base, "s", "t").startswith(prefix)


@pytest.mark.parametrize("base", LOOPBACK_HTTP)
def test_websocket_url_allows_plain_ws_on_loopback(base: str) -> None:
    url = websocket_url(base, "s", "t")
    assert url.startswith("ws://")
    assert urlsplit(url).path == "/ws"
    ws_base = "ws://" + base.removeprefix("http://")
    assert websocket_url(ws_base, "s", "t") == url


@pytest.mark.parametrize("base", NON_LOOPBACK_HTTP)
def test_websocket_url_refuses_plain_ws_elsewhere(base: str) -> None:
    with pytest.raises(LocalProtocolError) as info:
        websocket_url(base, "session", SECRET)
    assert SECRET not in str(info.value)
    ws_base = "ws://" + base.removeprefix("http://")
    with pytest.raises(LocalProtocolError) as info:
        websocket_url(ws_base, "session", SECRET)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "base",
    ["ftp://x.example", "https://", "https://u:p@x.example", "https://x.example/?a=1", "x.example"],
)
def test_websocket_url_refuses_bad_bases_without_leaking(base: str) -> None:
    with pytest.raises(LocalProtocolError) as info:
        websocket_url(base, "session", SECRET, 3)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)


# --- redaction -----------------------------------------------------------------------------------


def test_redact_url_hides_access_token_only() -> None:
    url = websocket_url(US, "sess-1", SECRET, 7)
    redacted = redact_url(url)
    assert redacted == "wss://messaging.us-1.poly.ai/ws?session_id=sess-1&access_token=***&cursor=7"
    assert SECRET not in redacted


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x/a?token=abc", "https://x/a?token=***"),
        ("https://x/a?id_token=abc&refresh_token=d", "https://x/a?id_token=***&refresh_token=***"),
        ("https://x/a?ACCESS_TOKEN=abc&x=1", "https://x/a?ACCESS_TOKEN=***&x=1"),
        ("https://x/a?api_key=k&apiKey=k2&secret=s", "https://x/a?api_key=***&apiKey=***&secret=***"),
        ("https://x/a?password=p&sig=z&auth=q", "https://x/a?password=***&sig=***&auth=***"),
        ("https://x/a?access%5Ftoken=abc", "https://x/a?access%5Ftoken=***"),
        ("https://x/a?session_id=s&cursor=1&platform=web", "https://x/a?session_id=s&cursor=1&platform=web"),
        ("https://x/a?token=", "https://x/a?token="),
        ("https://x/a?token", "https://x/a?token"),
        ("https://user:pw@x/a", "https://***@x/a"),
        ("https://x/cb#access_token=abc&state=1", "https://x/cb#access_token=***&state=1"),
        ("https://x/plain", "https://x/plain"),
    ],
)  # fmt: skip
def test_redact_url_cases(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_url_unparseable() -> None:
    redacted = redact_url(f"https://[::1/ws?access_token={SECRET}")
    assert SECRET not in redacted


@given(token=st.text(min_size=1, max_size=60), session_id=st.text(min_size=1, max_size=20))
def test_redact_url_never_shows_token(token: str, session_id: str) -> None:
    marked = "QXSECRETQX" + token
    redacted = redact_url(websocket_url(US, session_id, marked, 4))
    assert "QXSECRETQX" not in redacted
    assert query(redacted)["access_token"] == ["***"]
    assert query(redacted)["session_id"] == [session_id]


# --- module hygiene ------------------------------------------------------------------------------


def test_all_is_explicit_and_complete() -> None:
    for name in endpoints.__all__:
        assert hasattr(endpoints, name)
    public = {
        name
        for name, value in vars(endpoints).items()
        if not name.startswith("_")
        and getattr(value, "__module__", endpoints.__name__) == endpoints.__name__
        and (inspect.isfunction(value) or inspect.isclass(value))
    }
    assert public <= set(endpoints.__all__)


def test_redact_text_hides_sensitive_pairs_in_free_text() -> None:
    line = "GET /ws?session_id=s-1&access_token=eyJ.abc-_~&cursor=3 HTTP/1.1 (api_key=K9 ok=1)"
    assert redact_text(line) == (
        "GET /ws?session_id=s-1&access_token=***&cursor=3 HTTP/1.1 (api_key=*** ok=1)"
    )
    assert redact_text("nothing to hide") == "nothing to hide"
