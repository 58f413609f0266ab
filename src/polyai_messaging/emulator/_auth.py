"""Connectors, host matching and access tokens (:ref:`protocol-emulator`).

Access tokens are opaque random strings, not JWTs: clients must treat them as opaque anyway.
Token values never appear in a ``repr``, a log line or an error message.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

__all__ = ["AccessToken", "TokenRegistry", "host_matches", "normalise_host"]


def normalise_host(value: str) -> str:
    """The bare host of an ``X-Host`` value: scheme, user info, path, query and port removed."""
    text = value.strip().lower()
    _, has_scheme, rest = text.partition("://")
    if has_scheme:
        text = rest
    for separator in "/?#":
        text = text.split(separator, 1)[0]
    text = text.rsplit("@", 1)[-1]
    if text.startswith("["):  # IPv6 literal, possibly with a port
        return text[1:].split("]", 1)[0]
    if text.count(":") == 1:
        text = text.split(":", 1)[0]
    return text.rstrip(".")


def host_matches(registered: str, presented: str) -> bool:
    """Whether an ``X-Host`` value is accepted for a connector registered to ``registered``.

    Both sides are reduced to a bare host (:func:`normalise_host`: scheme, path and port are
    ignored, case too). The presented host is accepted if it equals the registered one or extends
    it with whole labels on the left: ``yourcompany.com`` accepts
    ``https://app.yourcompany.com:8443/x`` but not ``evilyourcompany.com``.

    The rule needs no guess at whether a value is a domain or an app namespace, so a real domain
    whose first label looks like a top-level domain (``ai.example.com``) still accepts its
    subdomains. App namespaces (``com.yourcompany.app``) in effect compare exactly: their
    children are extended on the right (``com.yourcompany.app.beta``), which never matches, and
    their parents are shorter. A namespace extended on the left (``x.com.yourcompany.app``) is
    accepted, but names no real app.
    """
    wanted, got = normalise_host(registered), normalise_host(presented)
    return bool(wanted) and (got == wanted or got.endswith("." + wanted))


@dataclass(frozen=True)
class AccessToken:
    """What the emulator knows about one minted access token."""

    connector_token: str = field(repr=False)
    expires_at: float
    """``anyio.current_time()`` after which the token is rejected."""


class TokenRegistry:
    """Minted access tokens and their expiry (the event loop's clock)."""

    def __init__(self) -> None:
        self._tokens: dict[str, AccessToken] = {}

    def mint(self, connector_token: str, *, lifetime: float, now: float) -> str:
        """A fresh token for ``connector_token`` valid for ``lifetime`` seconds from ``now``."""
        token = secrets.token_urlsafe(32)
        self._tokens[token] = AccessToken(connector_token, now + lifetime)
        return token

    def resolve(self, token: str, *, now: float) -> AccessToken | None:
        """The record of a known, unexpired token, else ``None``."""
        record = self._tokens.get(token)
        if record is None:
            return None
        if now >= record.expires_at:
            del self._tokens[token]
            return None
        return record

    def expire(self, token: str) -> None:
        """Forget a token at once (for tests of the expired-token paths)."""
        self._tokens.pop(token, None)

    def __len__(self) -> int:
        return len(self._tokens)
