"""Errors of the ways in (CLI, servers) a user can hit: one sentence each."""

from __future__ import annotations

from tempo.errors import (
    InvalidInputError,
    NotFoundError,
    TimedOutError,
    TooManyRequestsError,
    UnavailableError,
)


class HTTPConfigError(InvalidInputError):
    """An HTTP server configuration that would be unsafe or cannot work (token, host)."""


class ListenError(UnavailableError):
    """The server cannot listen where asked (address in use, not this machine's, host not resolving)."""


class QueueFullError(TooManyRequestsError):
    """Too many questions are waiting for the model (HTTP 429)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many questions are waiting for the model; try again later")
        self.retry_after = retry_after


class ModelTimeoutError(TimedOutError):
    """A question that waited and ran longer than the server's per-request timeout (HTTP 504)."""


class ClipRangeError(InvalidInputError):
    """A clip range outside the stream, empty, or too long."""


class JobNotFoundError(NotFoundError):
    """No ingest job with that id."""


class SourceNotAllowedError(InvalidInputError):
    """A source the server's policy refuses (outside the media root, a scheme or address not allowed)."""


class AlertsUsageError(InvalidInputError):
    """A bad argument to `tempo alerts`."""


class ServerStartError(UnavailableError):
    """A `tempo` server subprocess that exited or did not become ready (tempo.tools.launch)."""
