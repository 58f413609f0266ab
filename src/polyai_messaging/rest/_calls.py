"""The two REST calls of the Messaging API: mint an access token, create a session.

Built on :class:`httpx.AsyncClient`, so it runs under trio and asyncio alike. Pass your own
``client`` to reuse connections (and to plug in a transport for tests); otherwise a short-lived
client is opened per call. Redirects are never followed, so a token header cannot be forwarded to
another host.

Secrets: the connector token is sent only as ``X-Token`` to ``POST /api/v1/access-token``; the
access token only as ``Authorization: Bearer`` to ``POST /api/v1/sessions``. Neither is logged,
and neither appears in an exception message or ``repr``, even if a server echoes it back.

Errors: a non-2xx answer raises a :class:`RestError` subclass chosen from the documented error
strings, falling back to a class per status (:ref:`protocol-rest`). A 2xx answer whose body is not
the documented JSON raises :class:`~polyai_messaging.core.RemoteProtocolError`. A network
failure raises :class:`TransportError`. Retries follow :class:`RetryPolicy`. All of these are
exported by :mod:`polyai_messaging.rest`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Final

import httpx

from ..core import LocalProtocolError, RemoteProtocolError
from ..driver import access_token_url, sessions_url
from ._errors import Endpoint
from ._http import Clock, logger, post
from ._results import VISIBLE_ASCII, AccessToken, SessionInfo, json_type, required
from ._retry import RetryPolicy

__all__ = ["PLATFORMS", "create_session", "mint_access_token"]

PLATFORMS: Final = frozenset({"web", "ios", "android", "ios-web", "android-web", "custom"})
"""The documented values of the ``platform`` field of Create Session (:ref:`protocol-rest`)."""

_HEADER_TEXT: Final = re.compile(r"[\x20-\x7e]+")


def _check_header_value(value: object, what: str) -> str:
    # Never echo the value: it may be a secret.
    if not isinstance(value, str) or not VISIBLE_ASCII.fullmatch(value):
        raise LocalProtocolError(f"{what} must be a non-empty string of visible ASCII characters")
    return value


async def mint_access_token(
    base_url: str,
    connector_token: str,
    host: str,
    *,
    client: httpx.AsyncClient | None = None,
    retry: RetryPolicy | None = None,
    clock: Clock = time.time,
) -> AccessToken:
    """Exchange a connector token for an access token: ``POST /api/v1/access-token``.

    Sends ``X-Token: <connector_token>``, ``X-Host: <host>``, ``Content-Type: application/json``
    and the body ``{}``. This is the only request that ever carries the connector token, which
    belongs on a trusted backend (:ref:`protocol-security`). ``obtained_at`` of the result is
    ``clock()`` at the start of the successful attempt.

    Raises :class:`RestError` subclasses for error answers and network failures,
    :class:`~polyai_messaging.core.RemoteProtocolError` for a malformed success body and
    :class:`~polyai_messaging.core.LocalProtocolError` for an insecure ``base_url`` or a
    token/host that cannot be sent as a header.
    """
    url = access_token_url(base_url)
    connector_token = _check_header_value(connector_token, "connector token")
    host = _check_header_value(host, "host identifier")
    headers = {"X-Token": connector_token, "X-Host": host, "Content-Type": "application/json"}
    data, obtained_at = await post(
        Endpoint.ACCESS_TOKEN,
        url,
        headers,
        b"{}",
        client=client,
        retry=retry,
        clock=clock,
        secrets=(connector_token,),
    )
    token = AccessToken.from_json(data, obtained_at=obtained_at)
    logger.debug("obtained %r", token)
    return token


async def create_session(
    base_url: str,
    token: AccessToken,
    *,
    streaming: bool = False,
    platform: str = "custom",
    user_agent: str | None = None,
    client: httpx.AsyncClient | None = None,
    retry: RetryPolicy | None = None,
    clock: Clock = time.time,
) -> SessionInfo:
    """Create a session: ``POST /api/v1/sessions`` (:ref:`protocol-rest`).

    Sends ``Authorization: Bearer <token>``, ``Content-Type: application/json``, the body
    ``{"streaming_enabled": streaming, "platform": platform}`` and, if given, ``User-Agent``.
    ``platform`` must be one of :data:`PLATFORMS` (:class:`ValueError` otherwise). ``clock`` is
    only used to interpret an HTTP-date ``Retry-After`` when the server sends no ``Date``.

    Raises like :func:`mint_access_token`.
    """
    url = sessions_url(base_url)
    if not isinstance(token, AccessToken):
        raise TypeError(f"token must be an AccessToken, not {type(token).__name__}")
    if not isinstance(streaming, bool):
        raise TypeError(f"streaming must be a bool, not {type(streaming).__name__}")
    if platform not in PLATFORMS:
        raise ValueError(f"platform must be one of {sorted(PLATFORMS)}, got {platform!r}")
    headers = _session_headers(token, user_agent)
    body = json.dumps({"streaming_enabled": streaming, "platform": platform}, separators=(",", ":"))
    data, _ = await post(
        Endpoint.SESSIONS,
        url,
        headers,
        body.encode(),
        client=client,
        retry=retry,
        clock=clock,
        secrets=(token.secret,),
    )
    info = _session_info(data, streaming)
    logger.debug("created session %s (streaming=%s)", info.session_id, streaming)
    return info


def _session_info(data: Mapping[str, object], streaming: bool) -> SessionInfo:
    session_id = required(data, "session_id", "sessions response")
    if not isinstance(session_id, str) or not session_id:
        raise RemoteProtocolError(
            f"must be a non-empty string, got {json_type(session_id)}", path="session_id"
        )
    return SessionInfo(session_id=session_id, streaming=streaming)


def _session_headers(token: AccessToken, user_agent: str | None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token.secret}", "Content-Type": "application/json"}
    if user_agent is not None:
        if not isinstance(user_agent, str) or not _HEADER_TEXT.fullmatch(user_agent.strip()):
            raise ValueError("user_agent must be non-empty printable ASCII")
        headers["User-Agent"] = user_agent.strip()
    return headers
