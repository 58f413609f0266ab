"""Failures said as a person needs them: the precise cause in one line, with what to do.

:func:`describe` reads the library's typed errors (a :class:`~polyai_messaging.rest.RestError`,
possibly the cause of a :class:`~polyai_messaging.runtime.TokenUnavailableError`) and names the
setting to check. :func:`reporting_retry` is a REST retry policy that says what it is doing
while it waits, so that silent seconds of retries show as progress.

The REST errors are imported when a failure is described, not with this module, so that
building the parser stays cheap.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import attrs

from ..core import RemoteProtocolError
from ..runtime import TokenUnavailableError
from ._safe import terminal_safe

if TYPE_CHECKING:
    from ..rest import RestError, RetryPolicy

__all__ = ["CONNECTOR_TOKEN_ENV", "describe", "reporting_retry"]

CONNECTOR_TOKEN_ENV: Final = "POLYAI_CONNECTOR_TOKEN"  # noqa: S105 (a variable name)
"""The environment variable ``chat`` reads the connector token from."""


def describe(error: BaseException) -> str:
    """One line for a failure: what went wrong, precisely, and what to do about it."""
    cause = error
    if isinstance(error, TokenUnavailableError) and error.__cause__ is not None:
        cause = error.__cause__  # the provider's own error says why there is no token
    from ..rest import RestError  # noqa: PLC0415 - see the module docstring

    if isinstance(cause, RestError):
        text = _rest_failure(cause)
    elif isinstance(cause, RemoteProtocolError):
        text = f"the server's answer is not the Messaging API's ({cause}): check --base-url"
    elif isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
        text = f"the port is in use ({cause.strerror}): pick another, or --port 0 for a free one"
    else:
        text = str(cause) or type(cause).__name__
    return terminal_safe(text, multiline=False)


def _rest_failure(error: RestError) -> str:
    from ..rest import (  # noqa: PLC0415 - see the module docstring
        AuthenticationError,
        ConnectorMissingHostError,
        ConnectorTokenNotFoundError,
        ConnectorValidationError,
        RateLimitedError,
        ServerError,
        TransportError,
    )

    advice: list[tuple[type[RestError], str, str]] = [
        (
            ConnectorTokenNotFoundError,
            "the connector token was refused",
            f"check ${CONNECTOR_TOKEN_ENV}",
        ),
        (
            ConnectorValidationError,
            "the server does not accept this --host for the connector token",
            "pass the host registered with the connector",
        ),
        (
            ConnectorMissingHostError,
            "the connector has no host registered",
            "register one for it with PolyAI",
        ),
        (
            AuthenticationError,
            "authentication failed",
            f"check ${CONNECTOR_TOKEN_ENV} and --host",
        ),
        (RateLimitedError, "the server is limiting requests", "wait a minute and try again"),
        (ServerError, "the server failed", "try again later"),
        (
            TransportError,
            "could not reach the server",
            "check --base-url (and --ca-file for a private CA) and the network",
        ),
    ]
    for kind, what, todo in advice:
        if isinstance(error, kind):
            return f"{what} ({error}): {todo}"
    return f"the server refused the request ({error})"


def reporting_retry(report: Callable[[str], None]) -> RetryPolicy:
    """The default REST retry policy, which calls ``report`` with a line such as
    ``connecting… retry 2 of 3 in 1.8 s`` before each wait."""
    from ..rest import RetryPolicy  # noqa: PLC0415 - see the module docstring

    policy = RetryPolicy()

    def on_retry(error: RestError, attempt: int, delay: float) -> None:
        report(f"connecting… retry {attempt} of {policy.max_attempts} in {delay:.1f} s")

    return attrs.evolve(policy, on_retry=on_retry)
