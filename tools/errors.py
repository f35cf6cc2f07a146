"""Errors of the ways in (CLI, servers) a user can hit: one sentence each."""

from __future__ import annotations

from tempo.errors import TempoError


class HTTPConfigError(TempoError):
    """An HTTP server configuration that would be unsafe or cannot work (token, host)."""


class ListenError(TempoError):
    """The server cannot listen where asked (address in use, not this machine's, host not resolving)."""


class QueueFullError(TempoError):
    """Too many questions are waiting for the model (HTTP 429)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many questions are waiting for the model; try again later")
        self.retry_after = retry_after


class ModelTimeoutError(TempoError):
    """A question that waited and ran longer than the server's per-request timeout (HTTP 504)."""


class ClipRangeError(TempoError):
    """A clip range outside the stream, empty, or too long."""


class JobNotFoundError(TempoError):
    """No ingest job with that id."""


class StreamBusyError(TempoError):
    """The stream already has a running ingest job."""


class SourceNotAllowedError(TempoError):
    """A source the server's policy refuses (outside the media root, a scheme or address not allowed)."""


class AlertsUsageError(TempoError):
    """A bad argument to `tempo alerts`."""


class ServerStartError(TempoError):
    """A `tempo` server subprocess that exited or did not become ready (tempo.tools.launch)."""
