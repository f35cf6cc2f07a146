"""Which sources `tempo serve` lets a remote client ingest (issue 12, security).

A client of the HTTP API is not the operator: it must not make the server read its own files
(/etc/passwd, a FIFO that hangs a worker) or fetch from the server's private network.

- file sources only under `--media-root` (symlinks resolved first, then the path must lie inside
  the root and be a regular file); without a media root, file sources are refused;
- network sources only with an allowlisted scheme (`SERVE_SCHEMES`);
- with `--deny-private-networks`, HTTP(S) sources whose host is or resolves to a loopback,
  link-local, private, reserved or multicast address are refused (every address the name
  resolves to is checked).
Stdin ("-") and capture devices are never accepted over HTTP.
"""

from __future__ import annotations

import ipaddress
import socket
import stat
from pathlib import Path
from urllib.parse import urlsplit

from tempo.errors import redact_url
from tempo.tools.errors import SourceNotAllowedError

SERVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "srt", "udp", "tcp", "http", "https")


def _blocked_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or not ip.is_global
    )


def check_source(source: str, *, media_root: Path | None, deny_private_networks: bool = False) -> str:
    """The source to ingest (a resolved file path or the URL), or SourceNotAllowedError (one sentence)."""
    source = source.strip()
    if not source:
        raise SourceNotAllowedError("the source is empty; give a file under the media root or a camera URL")
    if "://" in source:
        parts = urlsplit(source)
        scheme = parts.scheme.lower()
        if scheme not in SERVE_SCHEMES:
            raise SourceNotAllowedError(
                f"the scheme {scheme!r} is not allowed for sources (allowed: {', '.join(SERVE_SCHEMES)})"
            )
        if not parts.hostname:
            raise SourceNotAllowedError(f"the source URL {redact_url(source)!r} has no host")
        if deny_private_networks and scheme in ("http", "https"):
            try:
                infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
            except (OSError, UnicodeError):
                raise SourceNotAllowedError(f"cannot resolve the host of {redact_url(source)!r}") from None
            if any(_blocked_address(str(info[4][0])) for info in infos):
                raise SourceNotAllowedError(
                    f"the host of {redact_url(source)!r} is a private, loopback or link-local address "
                    "(--deny-private-networks)"
                )
        return source
    if source == "-" or source.startswith("/dev/"):
        raise SourceNotAllowedError("stdin and devices cannot be ingested over HTTP; give a file or a URL")
    if media_root is None:
        raise SourceNotAllowedError("file sources are refused: the server was started without --media-root")
    root = media_root.resolve()
    candidate = Path(source)
    if not candidate.is_absolute():
        candidate = root / candidate
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        raise SourceNotAllowedError(f"no file {source!r} under the media root") from None
    if not resolved.is_relative_to(root):
        raise SourceNotAllowedError(f"the file {source!r} is outside the media root")
    try:
        mode = resolved.stat().st_mode
    except OSError:
        raise SourceNotAllowedError(f"no file {source!r} under the media root") from None
    if not stat.S_ISREG(mode):
        raise SourceNotAllowedError(f"{source!r} is not a regular file")
    return str(resolved)
