"""Which sources `tempo serve` lets a remote client ingest (issue 12, security).

A client of the HTTP API is not the operator: it must not make the server read its own files
(/etc/passwd, a FIFO that hangs a worker) or fetch from the server's private network.

- file sources only under `--media-root` (symlinks resolved first, then the path must lie inside
  the root and be a regular file); without a media root, file sources are refused;
- network sources only with a scheme the one table (`tempo.streaming.sources.SCHEMES`) marks as served;
- a cloud metadata host (by name or address) is always refused; with `--deny-private-networks`,
  a source of any scheme whose host is or resolves to a loopback, link-local, private, reserved or
  multicast address is refused (every address the name resolves to is checked; the policy of
  tempo.streaming.netguard), and FFmpeg follows no HTTP redirect (tempo.streaming.sources); every
  HTTP(S) connection FFmpeg then makes (an HLS playlist's segments on any host) passes the same
  policy in the guard proxy (tempo.streaming.netproxy);
- control characters (a NUL byte, a newline) are refused in any source;
- a partial upload (under the media root's `.tempo-partial/`) is never a source.
Stdin ("-") and capture devices are never accepted over HTTP.

A job's error about reading a network source is one neutral sentence (`job_error`): FFmpeg's reason
('connection refused', 'timed out', 'end of file') would let a client map the server's network port
by port.
"""

from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import urlsplit

from tempo.errors import TempoError, redact_url
from tempo.streaming import netguard
from tempo.streaming.errors import StreamingError
from tempo.streaming.sources import SERVE_SCHEMES
from tempo.tools.errors import SourceNotAllowedError
from tempo.tools.server_uploads import PARTIAL_DIR


def check_source(source: str, *, media_root: Path | None, deny_private_networks: bool = False) -> str:
    """The source to ingest (a resolved file path or the URL), or SourceNotAllowedError (one sentence)."""
    source = source.strip()
    if not source:
        raise SourceNotAllowedError("the source is empty; give a file under the media root or a camera URL")
    if any(ord(c) < 32 or ord(c) == 127 for c in source):
        raise SourceNotAllowedError("the source contains a control character (a NUL byte or a line break)")
    if "://" in source:
        try:
            parts = urlsplit(source)
            port = parts.port
        except ValueError:
            raise SourceNotAllowedError(f"the source URL {redact_url(source)!r} is not a valid URL") from None
        scheme = parts.scheme.lower()
        if scheme not in SERVE_SCHEMES:
            raise SourceNotAllowedError(
                f"the scheme {scheme!r} is not allowed for sources (allowed: {', '.join(SERVE_SCHEMES)})"
            )
        if not parts.hostname:
            raise SourceNotAllowedError(f"the source URL {redact_url(source)!r} has no host")
        what = f"the source {redact_url(source)!r}"
        try:
            if deny_private_networks:
                netguard.resolve_checked(parts.hostname, port or 0, deny_private=True, what=what)
            else:
                netguard.refuse_metadata(parts.hostname, what=what)
        except netguard.DestinationRefusedError as exc:
            suffix = " (--deny-private-networks)" if deny_private_networks else ""
            raise SourceNotAllowedError(f"{exc}{suffix}") from None
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
    except (OSError, RuntimeError, ValueError):
        raise SourceNotAllowedError(f"no file {source!r} under the media root") from None
    if not resolved.is_relative_to(root):
        raise SourceNotAllowedError(f"the file {source!r} is outside the media root")
    if resolved.is_relative_to(root / PARTIAL_DIR):  # an upload still arriving (tempo.tools.server_uploads)
        raise SourceNotAllowedError(f"{source!r} is an upload still arriving, not a video to ingest")
    try:
        mode = resolved.stat().st_mode
    except OSError:
        raise SourceNotAllowedError(f"no file {source!r} under the media root") from None
    if not stat.S_ISREG(mode):
        raise SourceNotAllowedError(f"{source!r} is not a regular file")
    return str(resolved)


def job_error(exc: TempoError, source: str) -> str:
    """What a job records of a failure: a network source's reading failures as one neutral sentence
    (never FFmpeg's reason, see the module docstring); anything else as its own sentence, redacted."""
    if "://" in source and isinstance(exc, StreamingError):
        return f"could not read the source {redact_url(source)!r}"
    return str(exc).replace(source, redact_url(source))
