"""The WebVTT subtitles of a LIVE HLS source, read while it is ingested.

A live playlist (no `#EXT-X-ENDLIST`) keeps growing: a `LiveSubtitles` thread reloads the subtitle
media playlist (the master's DEFAULT rendition, as streaming/hls_subtitles.py chooses it) as RFC 8216
§6.3.4 asks: one target duration (`#EXT-X-TARGETDURATION`) after a reload that brought something new,
half of it after one that did not, bounded to [RELOAD_MIN, RELOAD_MAX] seconds. Each new .vtt segment
(by media sequence number) is read once, with the same checks, proxy and caps as the one-off reader;
its cues are kept on the media clock (X-TIMESTAMP-MAP applied: the MPEG-TS clock of the video's pts).
It stops when the ingest closes it, or when the playlist ends.

Where cues land: the live reader maps a connection's stream time t to t + anchor on the segments'
timeline (streaming/live.py; `SegmentStream.anchors` lists each connection's anchor), and a batch takes
the cues over its stretch of time with the anchor of the connection its first segment came from.
The first reload starts LIVE_START_SEGMENTS segments before the playlist's end (FFmpeg starts the
video 3 segments before it): earlier cues would fall before the stream's first frame.

Waiting: a batch waits (at most LIVE_SUBTITLE_WAIT seconds, as speech waits for audio) until the
subtitles read are known to reach its end: a cue read that starts at or after it, or segments read
after a cue whose EXTINF durations carry past it (segments are read in order); before any cue has
been read, until a reload begun after the batch asked has been read. So a batch may wait for the
subtitle segment after its end: with segments longer than a batch, up to the bound. An unreadable
segment or reload is a warning line; the ingest goes on. Not handled: the MPEG-TS clock wrapping
(every 26.5 h) and a packager restarting its clock.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import threading
import time
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

from tempo.errors import redact_url
from tempo.streaming.errors import SubtitleError
from tempo.streaming.hls_subtitles import (
    MAX_SEGMENTS,
    WEBVTT_SOURCE,
    PlaylistReader,
    cue_key,
    is_master,
    is_vtt,
    segment_cues,
    segment_name,
    subtitle_rendition,
)
from tempo.streaming.subtitles import Cue, CueTrack

log = logging.getLogger(__name__)

LIVE_SUBTITLE_WAIT = 3.0  # seconds a batch waits for subtitle segments that lag its video
LIVE_START_SEGMENTS = 6  # segments before the live end the first reload starts at
RELOAD_MIN, RELOAD_MAX = 0.5, 30.0  # bounds on the seconds between reloads
_EXTINF = re.compile(r"#EXTINF:\s*([0-9.]+)")


@dataclasses.dataclass(frozen=True)
class MediaPlaylist:
    """What one reload of a media playlist says. Seconds; media sequence numbers."""

    target: float  # EXT-X-TARGETDURATION (0: not given)
    segments: list[tuple[int, float, str]]  # (media sequence number, EXTINF seconds, URI) in order
    ended: bool  # EXT-X-ENDLIST: nothing more will be added


def parse_media_playlist(text: str) -> MediaPlaylist:
    """A media playlist's target duration, segments and end mark."""
    target, sequence, duration, ended = 0.0, 0, 0.0, False
    segments: list[tuple[int, float, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-TARGETDURATION:"):
            target = _number(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(_number(line.split(":", 1)[1]))
        elif line.startswith("#EXT-X-ENDLIST"):
            ended = True
        elif m := _EXTINF.match(line):
            duration = _number(m.group(1))
        elif line and not line.startswith("#"):
            segments.append((sequence + len(segments), duration, line))
            duration = 0.0
    return MediaPlaylist(target, segments, ended)


def _number(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        return 0.0
    return value if math.isfinite(value) and value > 0 else 0.0  # a hostile "1e400" or "nan": not given


class LiveSubtitles:
    """Polls a live subtitle playlist on its own thread; `take` gives a batch its cues (module doc)."""

    def __init__(self, source: str, reader: Any, where: str, first: str, language: str | None,
                 anchors: Sequence[tuple[float, float]], *, wait: float | None = None) -> None:
        self.source, self.reader, self.where, self.language = source, reader, where, language
        self.anchors, self.wait = anchors, LIVE_SUBTITLE_WAIT if wait is None else wait
        self.segments_read = 0  # .vtt segments read
        self.cues_read = 0  # distinct cues read
        self.problems = 0  # warning lines
        self._cues: list[Cue] = []  # on the media clock, not yet behind every batch taken
        self._seen: set[tuple[float, float, str]] = set()
        self._covered: float | None = None  # media seconds up to which every cue is known to be read
        self._last: int | None = None  # the media sequence number of the last segment read
        self._ended = False
        self._absorbed = float("-inf")  # when the last reload whose segments are all read started
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(first,), name="tempo-live-subtitles", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the poller thread
    def _run(self, text: str | None) -> None:
        target, began = 0.0, time.monotonic()  # began: when the reload of `text` started
        try:
            while not self._stop.is_set():
                changed = False
                if text is not None:
                    playlist = parse_media_playlist(text)
                    target = playlist.target or target
                    changed = self._absorb(playlist)
                    if playlist.ended:
                        return
                with self._cond:
                    self._absorbed = began
                    self._cond.notify_all()
                interval = (target or 2 * RELOAD_MIN) * (1.0 if changed else 0.5)
                if self._stop.wait(min(RELOAD_MAX, max(RELOAD_MIN, interval))):
                    return
                try:
                    began = time.monotonic()
                    text = self.reader.read(self.where)
                except SubtitleError as exc:
                    self._warn(f"subtitles of {redact_url(self.source)!r}: {str(exc).rstrip('.')}; trying again")
                    text = None
        except Exception as exc:  # the ingest goes on without the later subtitles: say why
            self._warn(f"subtitles of {redact_url(self.source)!r}: no more read ({exc})")
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _absorb(self, playlist: MediaPlaylist) -> bool:
        """Read the playlist's segments not read yet; True if there were any."""
        segments = playlist.segments
        if self._last is None:
            segments = segments[-LIVE_START_SEGMENTS:] if not playlist.ended else segments
        elif segments and segments[-1][0] < self._last:
            self._warn(f"subtitles of {redact_url(self.source)!r}: the playlist's media sequence went back "
                       f"from {self._last} to {segments[-1][0]}; reading it from there")
            self._last = segments[0][0] - 1
        new = [s for s in segments if self._last is None or s[0] > self._last][:MAX_SEGMENTS]
        for sequence, duration, uri in new:
            if self._stop.is_set():
                break
            cues = self._segment(uri)
            with self._cond:
                self._last = sequence
                self.segments_read += 1
                if self._covered is not None:
                    self._covered += duration  # the segment after the one holding that cue is read too
                for cue in cues:
                    if cue_key(cue) not in self._seen:
                        self._seen.add(cue_key(cue))
                        self._cues.append(cue)
                        self.cues_read += 1
                if cues:
                    self._covered = max(self._covered or float("-inf"), max(c.start for c in cues))
                self._cond.notify_all()
        return bool(new)

    def _segment(self, uri: str) -> list[Cue]:
        """The cues of one .vtt segment on the media clock; a warning and none when it cannot be read."""
        if not is_vtt(uri):
            self._warn(f"subtitle segment {segment_name(uri)}: not a WebVTT segment; skipped")
            return []
        try:
            cues, problems = segment_cues(self.reader, uri, self.where, self.language)
        except SubtitleError as exc:
            self._warn(f"subtitle segment {segment_name(uri)}: {str(exc).rstrip('.')}; skipped")
            return []
        for problem in problems:
            self._warn(problem)
        return cues

    def _warn(self, line: str) -> None:
        self.problems += 1
        log.warning("%s", line)

    # ------------------------------------------------------------------ the model thread
    def take(self, start: float, end: float, *, shift: float = 0.0) -> list[Cue]:
        """The cues over [start, end) of the segments' timeline (as the source gave them), moved by
        `shift` seconds (a restarted live source continues its stream). Waits at most `wait` seconds
        in all for subtitle segments not read yet; cues behind `start` are let go (batches come in
        order). A stretch across a reconnection is taken in parts, each with its connection's anchor, the
        media clock from where a connection picked up placed by it (no cue twice where they overlap)."""
        anchors = list(self.anchors)
        if not anchors:
            return []
        bounds = [start, *(first for first, _ in anchors if start < first < end), end]
        asked = time.monotonic()
        deadline = asked + self.wait
        cues: list[Cue] = []
        for a, b in pairwise(bounds):
            j = max([i for i, (first, _) in enumerate(anchors) if first <= a + 1e-6] or [0])
            anchor = anchors[j][1]
            lo, hi = a - anchor, b - anchor  # media seconds
            if j + 1 < len(anchors):  # media from where the next connection picked up is placed by it
                picked_up = anchors[j + 1][0] - anchors[j + 1][1]
                hi = min(hi, picked_up) if picked_up > lo else hi
            cues += self._take(lo, hi, anchor + shift, asked, deadline)
        return cues

    def _take(self, lo: float, hi: float, moved: float, asked: float, deadline: float) -> list[Cue]:
        """The cues over [lo, hi) of the media clock, moved by `moved` seconds onto the timeline."""
        with self._cond:
            while not self._ended and not self._reached(hi, asked):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            taken = [c for c in self._cues if c.end > lo and c.start < hi]
            self._cues = [c for c in self._cues if c.end > lo]
            self._seen = {k for k in self._seen if k[1] > lo - 1.0}
        return [dataclasses.replace(c, start=c.start + moved, end=c.end + moved) for c in taken]

    def _reached(self, hi: float, asked: float) -> bool:
        """Whether the subtitles read are known to reach media time `hi`; before any cue is read, once a
        reload begun after the batch asked has been read (no cue yet: nothing to place, no time anchored)."""
        if self._covered is None:
            return self._absorbed >= asked
        return self._covered >= hi

    def close(self) -> None:
        """Stop polling (the ingest has ended)."""
        self._stop.set()
        self._thread.join(timeout=float(getattr(self.reader, "timeout", 10.0)) + 1.0)


def open_live_subtitles(source: str, segments: Any, *, timeout: float = 10.0) -> LiveSubtitles | None:
    """The poller of a live HLS source's WebVTT subtitles (`segments`: its SegmentStream), or None
    when the source is not live HLS or has no WebVTT subtitles. A playlist that cannot be read is a
    warning line and None: the ingest goes on without its subtitles."""
    if not segments.info.live or not source.lower().split("?")[0].endswith(".m3u8"):
        return None
    try:
        reader = PlaylistReader(source, timeout)
        where = source if reader.remote else str(Path(source).resolve())
        text = reader.read(where)
        language: str | None = None
        if is_master(text):
            chosen = subtitle_rendition(text)
            if chosen is None:
                return None
            language = chosen.get("LANGUAGE") or None
            where = reader.locate(chosen["URI"], where)
            text = reader.read(where)
    except SubtitleError as exc:
        log.warning("subtitles of %r: %s; none read", redact_url(source), str(exc).rstrip("."))
        return None
    uris = [uri for _, _, uri in parse_media_playlist(text).segments]
    if uris and not all(is_vtt(u) for u in uris):
        return None  # not WebVTT segments: the container's own subtitle streams are read instead
    return LiveSubtitles(source, reader, where, text, language, getattr(segments, "anchors", []))


def without_polled(track: CueTrack | None) -> CueTrack | None:
    """`track` less the HLS WebVTT cues read once before ingest: the poller reads those again, on the
    live timeline."""
    if track is None:
        return None
    return CueTrack([c for c in track.cues if c.source != WEBVTT_SOURCE], list(track.problems))
