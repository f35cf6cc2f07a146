"""Where frames come from: a file, a network URL, a capture device or standard input.

`resolve_source` says what a user's string names; `open_source` opens it with PyAV under a bounded
timeout and turns FFmpeg's failures into the typed errors of `tempo.streaming.errors`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import av
import av.container
from tempo.streaming.errors import (
    NotMediaError,
    NoVideoStreamError,
    SourceNotFoundError,
    UnreachableSourceError,
    UnsupportedSchemeError,
)
from tempo.streaming.segment import SourceKind

NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "rtp")
DEVICE_PREFIX = "/dev/video"


@dataclass(frozen=True)
class ResolvedSource:
    """A user's source string, classified. `uri` is what FFmpeg opens."""

    original: str
    uri: str
    kind: SourceKind
    format: str | None = None  # FFmpeg demuxer to force (v4l2 for devices), else probed

    @property
    def may_be_live(self) -> bool:
        return self.kind in ("network", "device")


def resolve_source(source: str) -> ResolvedSource:
    """Classify `source` (path, URL, /dev/videoN or "-") or raise a typed error for obvious mistakes."""
    if source == "-":
        return ResolvedSource(source, "pipe:0", "stdin")
    if "://" in source:
        scheme = urlsplit(source).scheme.lower()
        if scheme == "file":
            return resolve_source(urlsplit(source).path)
        if scheme not in NETWORK_SCHEMES:
            raise UnsupportedSchemeError(source, scheme, ", ".join((*NETWORK_SCHEMES, "file")))
        return ResolvedSource(source, source, "network")
    if source.startswith(DEVICE_PREFIX):
        if not os.path.exists(source):
            raise SourceNotFoundError(source)
        return ResolvedSource(source, source, "device", format="v4l2")
    path = Path(source).expanduser()
    if not path.exists():
        raise SourceNotFoundError(source)
    if path.is_dir():
        raise NotMediaError(source, "it is a directory")
    return ResolvedSource(source, str(path), "file")


def _network_options(resolved: ResolvedSource) -> dict[str, str]:
    # Live sources: probe briefly (a camera should not wait seconds before the first frame). Not
    # "fflags=nobuffer": it throws away the packets read while probing (the first second of video).
    options = {"analyzeduration": "1000000", "probesize": "1000000"}
    if resolved.uri.startswith(("rtsp://", "rtsps://")):
        options["rtsp_transport"] = "tcp"
    return options


def open_source(
    resolved: ResolvedSource, *, connect_timeout: float = 10.0, read_timeout: float = 10.0
) -> tuple[av.container.InputContainer, av.VideoStream]:
    """Open the source and its first video stream, or raise a typed error (one sentence)."""
    options: dict[str, str] = {}
    timeout: tuple[float, float] | None = None
    if resolved.kind in ("network", "device"):
        options = _network_options(resolved) if resolved.kind == "network" else {}
        timeout = (connect_timeout, read_timeout)
    try:
        container = av.open(resolved.uri, mode="r", format=resolved.format, options=options, timeout=timeout)
    except av.error.FileNotFoundError:
        raise SourceNotFoundError(resolved.original) from None
    except av.error.InvalidDataError as exc:
        if resolved.kind == "network":
            raise UnreachableSourceError(resolved.original, _reason(exc), connect_timeout) from None
        raise NotMediaError(resolved.original, _reason(exc)) from None
    except (av.error.FFmpegError, OSError) as exc:
        if resolved.kind in ("network", "device"):
            raise UnreachableSourceError(resolved.original, _reason(exc), connect_timeout) from None
        raise NotMediaError(resolved.original, _reason(exc)) from None
    if not container.streams.video:
        container.close()
        raise NoVideoStreamError(resolved.original)
    return container, container.streams.video[0]


def _reason(exc: BaseException) -> str:
    """FFmpeg's own short reason ('Connection refused', 'Invalid data found ...'), lower-cased."""
    text = getattr(exc, "strerror", None) or str(exc)
    text = str(text).strip().rstrip(".")
    if text.lower().startswith("immediate exit"):
        return "timed out"
    return text[:1].lower() + text[1:] if text else type(exc).__name__
