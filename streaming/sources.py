"""Where frames come from: a file, a network URL, a capture device or standard input.

`resolve_source` says what a user's string names; `open_source` opens it with PyAV under a bounded
timeout and turns FFmpeg's failures into the typed errors of `tempo.streaming.errors`.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import av
import av.container
from tempo.errors import redact_url
from tempo.settings import ENV_DENY_PRIVATE_NETWORKS, deny_private_networks, environment
from tempo.streaming import netguard
from tempo.streaming.errors import (
    NotMediaError,
    NoVideoStreamError,
    SourceNotFoundError,
    UnreachableSourceError,
    UnsupportedSchemeError,
)
from tempo.streaming.netproxy import guard_proxy
from tempo.streaming.segment import SourceKind


@dataclass(frozen=True)
class NetworkScheme:
    """What Tempo does with one URL scheme: the one table every reader of URLs derives from."""

    protocols: str  # FFmpeg's protocol_whitelist for it: nested protocols count (http needs tcp and tls)
    live: bool  # always live (http(s) serves files and live HLS alike: a known duration decides)
    served: bool  # accepted as a source by `tempo serve` (rtp:// opens a listening socket on the server)


# The protocols FFmpeg may use, by source kind: a playlist or a redirect cannot reach other schemes
# (an HLS playlist served over http naming file:///etc/... segments is refused).
SCHEMES: dict[str, NetworkScheme] = {
    "rtsp": NetworkScheme("rtsp,rtsps,rtp,srtp,udp,tcp,tls", live=True, served=True),
    "rtsps": NetworkScheme("rtsp,rtsps,rtp,srtp,udp,tcp,tls", live=True, served=True),
    "rtmp": NetworkScheme("rtmp,rtmps,tcp,tls", live=True, served=True),
    "rtmps": NetworkScheme("rtmp,rtmps,tcp,tls", live=True, served=True),
    # http(s) goes through the guard proxy (tempo.streaming.netproxy): https tunnels with CONNECT
    "http": NetworkScheme("http,https,tcp,tls,crypto,hls,httpproxy", live=False, served=True),
    "https": NetworkScheme("http,https,tcp,tls,crypto,hls,httpproxy", live=False, served=True),
    "udp": NetworkScheme("udp,rtp", live=True, served=True),
    "tcp": NetworkScheme("tcp", live=True, served=True),
    "srt": NetworkScheme("srt", live=True, served=True),
    "rtp": NetworkScheme("rtp,udp", live=True, served=False),
}
NETWORK_SCHEMES = tuple(SCHEMES)
LIVE_SCHEMES = tuple(name for name, scheme in SCHEMES.items() if scheme.live)
SERVE_SCHEMES = tuple(name for name, scheme in SCHEMES.items() if scheme.served)
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
    check_regular_file(source, path)
    return ResolvedSource(source, str(path), "file")


def check_regular_file(source: str, path: Path) -> None:
    """A file source must be a regular file: opening a FIFO blocks until a writer shows up (forever),
    and a directory, device or socket is no video file. Checked with stat, which never blocks."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise SourceNotFoundError(source) from None
    except OSError as exc:
        raise NotMediaError(source, exc.strerror or type(exc).__name__) from None
    if stat.S_ISREG(mode):
        return
    what = (
        "a directory" if stat.S_ISDIR(mode)
        else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
        else "a socket" if stat.S_ISSOCK(mode)
        else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "not a regular file"
    )
    raise NotMediaError(source, f"it is {what}, not a regular file")


FINGERPRINT_HEAD_BYTES = 1 << 20  # 1 MiB: hashed to tell a replaced file from the ingested one


def fingerprint_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What identifies a file's content cheaply: {"size": bytes, "mtime": seconds since the epoch,
    "head_sha256": SHA-256 of its first MiB}. Reading 1 MiB costs a few milliseconds. A path that is
    not a regular file raises NotMediaError (SourceNotFoundError when absent)."""
    check_regular_file(str(path), Path(path))
    # Non-blocking: should the path turn into a FIFO after the check, opening it must not wait.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with open(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            check_regular_file(str(path), Path(path))
        head = hashlib.sha256(handle.read(FINGERPRINT_HEAD_BYTES)).hexdigest()
    return {"size": info.st_size, "mtime": info.st_mtime, "head_sha256": head}


def protocol_whitelist(resolved: ResolvedSource) -> str:
    """FFmpeg's protocol_whitelist for a source: files (and local playlists) read files only,
    standard input the pipe, a device its node, a URL its own scheme's protocols."""
    if resolved.kind == "stdin":
        return "pipe"
    if resolved.kind in ("file", "device"):
        return "file,crypto"
    return SCHEMES[urlsplit(resolved.uri).scheme.lower()].protocols


def _network_options(resolved: ResolvedSource, read_timeout: float) -> dict[str, str]:
    # Live sources: probe briefly (a camera should not wait seconds before the first frame). Not
    # "fflags=nobuffer": it throws away the packets read while probing (the first second of video).
    options = {"analyzeduration": "1000000", "probesize": "1000000"}
    # FFmpeg's own I/O timeout (microseconds) on every protocol read/write, below PyAV's interrupt
    # callback: neither a silent server nor a nested open (a playlist's segment) can block forever.
    options["rw_timeout"] = str(max(1, int(read_timeout * 1e6)))
    if resolved.uri.startswith(("rtsp://", "rtsps://")):
        options["rtsp_transport"] = "tcp"
    deny = deny_private_networks()
    if resolved.uri.lower().startswith(("http://", "https://")):
        # Every HTTP(S) connection FFmpeg makes for this source (variant playlists, segments, keys on
        # whatever host the playlist names) is checked by the guard proxy and made to the checked address.
        if deny and environment().no_proxy:
            raise UnreachableSourceError(
                resolved.original,
                "refused: the no_proxy environment variable would let FFmpeg reach the hosts it lists without "
                f"the network check of {ENV_DENY_PRIVATE_NETWORKS}; unset it for tempo",
                read_timeout,
            )
        options["http_proxy"] = guard_proxy(deny_private=deny).url
    if deny:
        # The policy holds where FFmpeg connects too: the host is checked again now (its name may
        # answer differently than when the source was accepted), and no HTTP redirect is followed.
        parts = urlsplit(resolved.uri)
        try:
            netguard.resolve_checked(
                parts.hostname or "", parts.port or 0, deny_private=True, what=repr(redact_url(resolved.uri))
            )
        except netguard.DestinationRefusedError as exc:
            raise UnreachableSourceError(resolved.original, f"refused: {exc}", read_timeout) from None
        options["max_redirects"] = "0"
    return options


def open_source(
    resolved: ResolvedSource, *, connect_timeout: float = 10.0, read_timeout: float = 10.0, hwaccel: Any = None
) -> tuple[av.container.InputContainer, av.VideoStream]:
    """Open the source and its first video stream, or raise a typed error (one sentence).

    Network sources and devices open and read under `connect_timeout`/`read_timeout` (seconds);
    a file must (still) be a regular file; every kind is held to its protocol whitelist."""
    options: dict[str, str] = {}
    timeout: tuple[float, float] | None = None
    if resolved.kind in ("network", "device"):
        options = _network_options(resolved, read_timeout) if resolved.kind == "network" else {}
        timeout = (connect_timeout, read_timeout)
    elif resolved.kind == "file":
        # Again right before FFmpeg opens it: a path may have become a FIFO since it was resolved
        # (a stored source path re-read for recompression).
        check_regular_file(resolved.original, Path(resolved.uri))
    options["protocol_whitelist"] = protocol_whitelist(resolved)
    opened_at = time.monotonic()
    try:
        container = av.open(resolved.uri, mode="r", format=resolved.format, options=options, timeout=timeout,
                            hwaccel=hwaccel)
    except av.error.FileNotFoundError:
        raise SourceNotFoundError(resolved.original) from None
    except (av.error.FFmpegError, OSError) as exc:
        if "http_proxy" in options:  # say what the guard proxy saw, not FFmpeg's "403 Forbidden" or "5XX"
            proxy = guard_proxy(deny_private=deny_private_networks())
            refused, failed = proxy.refused_since(opened_at), proxy.failed_since(opened_at)
            if refused or failed:
                detail = f"refused: {refused}" if refused else str(failed)
                raise UnreachableSourceError(resolved.original, detail, connect_timeout) from None
        raise _open_error(resolved, exc, connect_timeout) from None
    if not container.streams.video:
        container.close()
        raise NoVideoStreamError(resolved.original)
    return container, container.streams.video[0]


def _open_error(resolved: ResolvedSource, exc: BaseException, connect_timeout: float) -> Exception:
    """FFmpeg's failure to open `resolved` as one typed error (one sentence)."""
    remote = resolved.kind == "network" or (
        resolved.kind == "device" and not isinstance(exc, av.error.InvalidDataError)
    )
    if remote:
        return UnreachableSourceError(resolved.original, _reason(exc), connect_timeout)
    return NotMediaError(resolved.original, _reason(exc))


def _reason(exc: BaseException) -> str:
    """FFmpeg's own short reason ('Connection refused', 'Invalid data found ...'), lower-cased."""
    text = getattr(exc, "strerror", None) or str(exc)
    text = str(text).strip().rstrip(".")
    if text.lower().startswith("immediate exit"):
        return "timed out"
    return text[:1].lower() + text[1:] if text else type(exc).__name__
