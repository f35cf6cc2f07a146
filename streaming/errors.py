"""What can go wrong with a video source, each as one sentence a user can act on."""

from __future__ import annotations

from tempo.errors import InvalidInputError


class StreamingError(InvalidInputError):
    """A video source (a path or URL the user gave) could not be read."""


class SourceNotFoundError(StreamingError):
    def __init__(self, source: str) -> None:
        super().__init__(f"video source {source!r} does not exist.")


class NotMediaError(StreamingError):
    def __init__(self, source: str, detail: str = "") -> None:
        why = f" ({detail})" if detail else ""
        super().__init__(f"{source!r} is not a media file FFmpeg can read{why}.")


class NoVideoStreamError(StreamingError):
    def __init__(self, source: str) -> None:
        super().__init__(f"{source!r} has no video stream (audio-only or data-only media).")


class UnsupportedSchemeError(StreamingError):
    def __init__(self, source: str, scheme: str, supported: str) -> None:
        super().__init__(f"URL scheme {scheme!r} of {source!r} is not supported (use one of: {supported}).")


class UnreachableSourceError(StreamingError):
    def __init__(self, source: str, detail: str, timeout: float) -> None:
        super().__init__(f"could not connect to {source!r} ({detail}; connect timeout {timeout:g} s).")


class NoDecodableFramesError(StreamingError):
    def __init__(self, source: str, errors: int) -> None:
        super().__init__(
            f"{source!r} has a video stream but none of its frames could be decoded ({errors} errors)."
        )


class ReleaseSamplingError(StreamingError):
    """The release's whole-file sampling needs the whole file up front (its length and frame count)."""

    def __init__(self, source: str, why: str) -> None:
        super().__init__(f"{source!r} cannot be sampled in release mode ({why}); use --sampling stream.")


class DestinationRefusedError(StreamingError):
    """A network destination the network policy refuses (tempo.streaming.netguard; the URL redacted)."""


class NoAudioStreamError(StreamingError):
    def __init__(self, source: str) -> None:
        super().__init__(f"{source!r} has no audio stream, so there is no speech to recognise.")


class SubtitleError(StreamingError):
    """A subtitle file or stream the user named could not be used."""
