"""WebVTT subtitle renditions of HLS, read by Tempo itself, at the video's stream times.

What FFmpeg does with them (libavformat 62, the build PyAV 16 ships; tests/streaming/test_hls_subtitles.py
keeps checking it):
  * a master playlist's `#EXT-X-MEDIA:TYPE=SUBTITLES` rendition shows up as a `webvtt` stream (its
    language from the rendition) but the HLS demuxer delivers no cue packet from it: no cue at all;
  * the subtitle media playlist opened on its own gives cues, but its .vtt segments are read as one
    WebVTT text: each segment's `X-TIMESTAMP-MAP` header is ignored (times are the segments' LOCAL
    times, not the video's MPEG-TS clock) and the next segment's `WEBVTT` header lines end up in the
    text of the cue before it.
So for a playlist with WebVTT subtitles the playlists and segments are read here: the rendition marked
DEFAULT=YES (else the first listed) of a master playlist, or a media playlist of .vtt segments given
directly; each segment parsed as WebVTT (tempo.streaming.subtitles.parse_cues: a malformed cue is
reported with its segment and line and skipped); a cue repeated in two segments (one that spans their
boundary) kept once.

Times (RFC 8216 §3.5): a segment whose header says `X-TIMESTAMP-MAP=MPEGTS:m,LOCAL:l` puts a cue of
LOCAL time t at t − l + m / 90000 s, on the 90 kHz MPEG-TS clock the video's frame pts use; a segment
without the map: t. (`load_text_track` then moves them, as the video's, so its first frame is 0.0.)

Where the files come from: beside a local playlist (in its folder or below; a local playlist naming
a URL or a file elsewhere is not followed: an uploaded playlist must not read the server's files),
or, for an http(s) playlist, from the same scheme, host and port only, without redirects, each read
with a timeout and a size cap; the host is checked as every network destination is
(tempo.streaming.netguard: never a metadata service; no private address when they are denied), and
fetched through the guard proxy (tempo.streaming.netproxy), which connects to the address it checked.
A live playlist (no EXT-X-ENDLIST) read here is read once; while a live source is ingested its subtitle
playlist is polled and its new segments read as they appear (streaming/hls_live_subtitles.py).
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from tempo.errors import redact_url
from tempo.streaming.errors import SubtitleError
from tempo.streaming.subtitles import Cue, CueTrack, parse_cues

MAX_FILE_BYTES = 16 << 20  # a playlist or one .vtt segment
MAX_SEGMENTS = 50_000  # subtitle segments read from one playlist (about 55 h of 4-s segments)
MPEG_CLOCK = 90_000  # ticks per second of the MPEG-TS clock
_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')
_MAP = re.compile(r"X-TIMESTAMP-MAP=(?P<attrs>[^\r\n]*)")
_LOCAL = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{2})\.(\d{1,3})")
_VTT_SUFFIXES = (".vtt", ".webvtt")
WEBVTT_SOURCE = "container:webvtt"  # the cues' source: the container's (the playlist's) own subtitles


def _attributes(line: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in _ATTRIBUTE.findall(line.split(":", 1)[1] if ":" in line else "")}


class _Reader:
    """Reads a playlist's files: beside a local playlist, or from the origin of a remote one."""

    def __init__(self, playlist: str, timeout: float) -> None:
        self.playlist, self.timeout = playlist, timeout
        self.remote = "://" in playlist
        if self.remote:
            parts = urlsplit(playlist)
            if parts.scheme not in ("http", "https"):
                raise SubtitleError(f"subtitles of {redact_url(playlist)!r}: only http(s) playlists are read.")
            self.origin = (parts.scheme, parts.hostname, parts.port)
        else:
            self.root = Path(playlist).resolve().parent

    def locate(self, uri: str, base: str) -> str:
        """Where `uri` (as a playlist writes it) is, relative to the playlist at `base`."""
        if self.remote:
            url = urljoin(base, uri)
            parts = urlsplit(url)
            if (parts.scheme, parts.hostname, parts.port) != self.origin:
                raise SubtitleError(f"{redact_url(url)!r} is not on the playlist's own host; not read.")
            return url
        if "://" in uri:
            raise SubtitleError(f"the local playlist {base!r} names a URL ({redact_url(uri)!r}); not read.")
        path = (Path(base).parent / uri).resolve()
        if not path.is_relative_to(self.root):  # an uploaded playlist must not read the server's files
            raise SubtitleError(f"{uri!r} is outside the playlist's folder {str(self.root)!r}; not read.")
        return str(path)

    def read(self, where: str) -> str:
        data = self._fetch(where) if self.remote else self._file(where)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SubtitleError(f"{self._name(where)!r} is not UTF-8 text (byte {exc.start}).") from None

    def _name(self, where: str) -> str:
        return redact_url(where) if self.remote else where

    def _file(self, path: str) -> bytes:
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise SubtitleError(f"{path!r} could not be read ({exc.strerror}).") from None
        if len(data) > MAX_FILE_BYTES:
            raise SubtitleError(f"{path!r} is larger than {MAX_FILE_BYTES >> 20} MiB; not read.")
        return data

    def _fetch(self, url: str) -> bytes:
        from tempo.settings import deny_private_networks
        from tempo.streaming.errors import DestinationRefusedError
        from tempo.streaming.netguard import resolve_checked
        from tempo.streaming.netproxy import guard_proxy

        parts = urlsplit(url)
        try:
            resolve_checked(parts.hostname or "", parts.port or 0, deny_private=deny_private_networks(),
                            what=repr(redact_url(url)))
        except DestinationRefusedError as exc:
            raise SubtitleError(str(exc)) from None
        try:
            # No redirects: a redirect could lead anywhere the host check did not look. Through the guard
            # proxy, which checks the host again and connects to the very address it checked (a name
            # cannot answer one address to the check above and another to the connection).
            proxy = guard_proxy(deny_private=deny_private_networks())
            opener = urllib.request.build_opener(
                urllib.request.ProxyHandler({}), _ThroughProxy(proxy.url.removeprefix("http://")), _NoRedirect
            )
            with opener.open(url, timeout=self.timeout) as response:
                data = response.read(MAX_FILE_BYTES + 1)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SubtitleError(f"{redact_url(url)!r} could not be read ({getattr(exc, 'reason', exc)}).") from None
        if len(data) > MAX_FILE_BYTES:
            raise SubtitleError(f"{redact_url(url)!r} is larger than {MAX_FILE_BYTES >> 20} MiB; not read.")
        return data


class _ThroughProxy(urllib.request.BaseHandler):
    """Every request through the proxy at `hostport` (https tunnelled with CONNECT); unlike urllib's
    ProxyHandler, no host is exempted by the no_proxy environment variable."""

    handler_order = 100  # before the handlers that open connections

    def __init__(self, hostport: str) -> None:
        self.hostport = hostport

    def http_open(self, req: urllib.request.Request) -> None:
        req.set_proxy(self.hostport, "http")

    https_open = http_open


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # the 3xx becomes an error: "could not be read (...)"


def is_master(text: str) -> bool:
    """Whether a playlist's text is a master playlist (it lists variants or renditions)."""
    return re.search(r"^#EXT-X-(?:STREAM-INF|MEDIA):", text, re.MULTILINE) is not None


def subtitle_rendition(master: str) -> dict[str, str] | None:
    """The attributes of a master playlist's subtitles rendition read: DEFAULT=YES, else the first listed."""
    renditions = [a for a in (_attributes(line) for line in master.splitlines() if line.startswith("#EXT-X-MEDIA:"))
                  if a.get("TYPE") == "SUBTITLES" and a.get("URI")]
    if not renditions:
        return None
    return next((a for a in renditions if a.get("DEFAULT", "").upper() == "YES"), renditions[0])


def _segments(text: str) -> list[str]:
    """The URIs of a media playlist's segments, in order."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def is_vtt(uri: str) -> bool:
    return urlsplit(uri).path.lower().endswith(_VTT_SUFFIXES)


def segment_name(uri: str) -> str:
    """A segment as problem lines name it: its file name."""
    return Path(urlsplit(uri).path).name or uri


def segment_cues(reader: _Reader, uri: str, where: str, language: str | None) -> tuple[list[Cue], list[str]]:
    """One WebVTT segment's cues on the media clock (its X-TIMESTAMP-MAP applied) and its malformed-cue
    problems; SubtitleError when it cannot be read. Shared by the one-off and the live reader."""
    text = reader.read(reader.locate(uri, where))
    offset = timestamp_offset(text)
    track = parse_cues(text, kind="vtt", name=segment_name(uri), language=language)
    cues = [Cue(c.start + offset, c.end + offset, c.text, WEBVTT_SOURCE, language) for c in track.cues]
    return cues, track.problems


def cue_key(cue: Cue) -> tuple[float, float, str]:
    """What makes a cue repeated across a segment boundary the same cue (kept once)."""
    return round(cue.start, 3), round(cue.end, 3), cue.text


def timestamp_offset(segment_text: str) -> float:
    """Seconds to add to a WebVTT segment's cue times: MPEGTS / 90000 − LOCAL of its X-TIMESTAMP-MAP
    (0 without one). SubtitleError for a map that cannot be read."""
    header = segment_text.lstrip("\ufeff").split("\n\n", 1)[0]
    m = _MAP.search(header)
    if m is None:
        return 0.0
    attrs = dict(part.split(":", 1) for part in m.group("attrs").split(",") if ":" in part)
    local = _LOCAL.fullmatch(attrs.get("LOCAL", "").strip())
    mpegts = attrs.get("MPEGTS", "").strip()
    if local is None or not mpegts.isdigit():
        raise SubtitleError(f"X-TIMESTAMP-MAP {m.group('attrs').strip()!r} is not 'MPEGTS:<ticks>,LOCAL:<time>'")
    h, mi, s, frac = local.groups()
    local_s = int(h or 0) * 3600 + int(mi) * 60 + int(s) + int(frac.ljust(3, "0")) / 1000
    return int(mpegts) / MPEG_CLOCK - local_s


def hls_webvtt_cues(source: str, *, timeout: float = 10.0) -> CueTrack | None:
    """The cues of an HLS playlist's WebVTT subtitles at stream times, or None when it has none (its
    container's subtitle streams are then read by PyAV). Unreadable segments and malformed cues are
    problems (one line each), a playlist that cannot be read too."""
    try:
        reader = _Reader(source, timeout)
        where = source if reader.remote else str(Path(source).resolve())
        text = reader.read(where)
    except SubtitleError as exc:  # the video reader says what is wrong with the source itself
        return CueTrack([], [f"subtitles of {redact_url(source)!r}: {str(exc).rstrip('.')}; none read"])
    language: str | None = None
    if is_master(text):  # a master playlist: its subtitles
        chosen = subtitle_rendition(text)
        if chosen is None:
            return None
        language = chosen.get("LANGUAGE") or None
        try:
            where = reader.locate(chosen["URI"], where)
            text = reader.read(where)
        except SubtitleError as exc:  # the video may still play: its words are missing, say why
            return CueTrack([], [f"subtitles of {redact_url(source)!r}: {exc}"])
    uris = _segments(text)
    if not uris or not all(is_vtt(u) for u in uris):
        return None
    cues: list[Cue] = []
    problems: list[str] = []
    if len(uris) > MAX_SEGMENTS:
        problems.append(f"subtitles of {redact_url(source)!r}: only the first {MAX_SEGMENTS} of {len(uris)} "
                        "segments read")
    seen: set[tuple[float, float, str]] = set()
    for uri in uris[:MAX_SEGMENTS]:
        try:
            found, found_problems = segment_cues(reader, uri, where, language)
        except SubtitleError as exc:
            problems.append(f"subtitle segment {segment_name(uri)}: {str(exc).rstrip('.')}; skipped")
            continue
        problems += found_problems
        for cue in found:
            if cue_key(cue) not in seen:
                seen.add(cue_key(cue))
                cues.append(cue)
    return CueTrack(cues, problems)


PlaylistReader = _Reader  # the same checks for the live poller (streaming/hls_live_subtitles.py)
