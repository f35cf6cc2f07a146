"""Text tracks: timed cues from subtitle files (SRT, WebVTT) and from a container's subtitle streams.

A `Cue` is one stretch of text with its stream-time interval (float seconds) and where it came from;
a `CueTrack` holds a recording's cues in time order and answers "which cues overlap this segment".

Sources:
  * sidecar files: `VIDEO.srt` / `VIDEO.vtt` beside a file (also `VIDEO.mp4.srt`), or a path the user
    names (`--subtitles PATH`). A malformed cue is reported (file and line number) and skipped; a file
    with no cue at all is refused with one sentence.
  * subtitle streams inside the container (MP4 `mov_text`, Matroska SubRip / ASS / WebVTT): decoded
    by PyAV, times from each packet's pts and duration in its stream's time base, the language from
    the stream's metadata. WebVTT renditions of HLS, which FFmpeg does not deliver, are read by
    streaming/hls_subtitles.py.

Languages are kept as the source states them (ISO 639 code of the stream, or of the file name's
suffix such as `movie.de.srt`); nothing is translated.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tempo.streaming.errors import SubtitleError

log = logging.getLogger(__name__)

SUBTITLE_SUFFIXES = (".srt", ".vtt")
# A text subtitle codec FFmpeg decodes into ASS events (bitmap subtitles such as PGS carry no words).
TEXT_SUBTITLE_CODECS = frozenset({"mov_text", "subrip", "srt", "ass", "ssa", "webvtt", "text", "microdvd"})


@dataclass(frozen=True)
class Cue:
    """One timed piece of text: what is said or shown from `start` to `end` (seconds of stream time)."""

    start: float  # seconds
    end: float  # seconds
    text: str
    source: str  # "srt" | "vtt" | "container:<codec>" | "asr"
    language: str | None = None  # as the source states it; None when it does not

    def to_dict(self) -> dict[str, object]:
        return {"text": self.text, "start": round(self.start, 3), "end": round(self.end, 3),
                "source": self.source, "language": self.language}

    def to_row(self) -> list[object]:
        """The compact form the memory stores: [start, end, text, source, language]."""
        return [round(self.start, 6), round(self.end, 6), self.text, self.source, self.language]

    @classmethod
    def from_row(cls, row: Sequence[object]) -> Cue:
        start, end, text, source, language = row
        return cls(float(start), float(end), str(text), str(source), None if language is None else str(language))


@dataclass
class CueTrack:
    """A recording's cues in time order, and the problems met while reading them (one line each)."""

    cues: list[Cue] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cues.sort(key=lambda c: (c.start, c.end))
        self._starts = [c.start for c in self.cues]
        # The longest cue bounds how far back a cue overlapping a given time can start.
        self._longest = max((c.end - c.start for c in self.cues), default=0.0)

    def __len__(self) -> int:
        return len(self.cues)

    def overlapping(self, start: float, end: float) -> list[Cue]:
        """The cues that overlap [start, end) (seconds), in time order."""
        lo = bisect.bisect_left(self._starts, start - self._longest)
        hi = bisect.bisect_left(self._starts, end)
        return [c for c in self.cues[lo:hi] if c.end > start and c.start < end]

    @classmethod
    def merged(cls, tracks: Iterable[CueTrack]) -> CueTrack:
        tracks = list(tracks)
        return cls([c for t in tracks for c in t.cues], [p for t in tracks for p in t.problems])


# ------------------------------------------------------------------------------------------ files
_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[,.](\d{1,3})"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(?:\s.*)?$")
_TAGS = re.compile(r"<[^>]*>|\{\\[^}]*\}")


def _seconds(h: str | None, m: str, s: str, frac: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")) / 1000


def _clean(lines: Sequence[str]) -> str:
    return " ".join(_TAGS.sub("", line).strip() for line in lines if line.strip()).strip()


def parse_cues(text: str, *, kind: str, name: str = "subtitles", language: str | None = None) -> CueTrack:
    """The cues of an SRT or WebVTT text (`kind` "srt" or "vtt"); blocks are separated by blank lines.

    A block whose timing line is missing or broken, runs backwards, or has no text is skipped and
    reported as "NAME line N: ..." in `problems`; the others are kept."""
    cues: list[Cue] = []
    problems: list[str] = []
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    block: list[tuple[int, str]] = []

    def flush() -> None:
        if not block:
            return
        first_no, first = block[0]
        if kind == "vtt" and (first.startswith(("WEBVTT", "NOTE", "STYLE", "REGION"))):
            return
        timing = next((j for j, (_, line) in enumerate(block[:2]) if "-->" in line), None)
        if timing is None:
            problems.append(f"{name} line {first_no}: no timing line ('start --> end') in this cue; skipped")
            return
        no, line = block[timing]
        m = _TIMING.match(line)
        if m is None:
            problems.append(f"{name} line {no}: {line.strip()!r} is not a timing line "
                            "('HH:MM:SS,mmm --> HH:MM:SS,mmm'); cue skipped")
            return
        g = m.groups()
        start, end = _seconds(*g[0:4]), _seconds(*g[4:8])
        if end <= start:
            problems.append(f"{name} line {no}: the cue ends ({end:.3f} s) before it starts ({start:.3f} s); skipped")
            return
        words = _clean([t for _, t in block[timing + 1:]])
        if not words:
            problems.append(f"{name} line {no}: the cue has no text; skipped")
            return
        cues.append(Cue(start, end, words, kind, language))

    for no, line in enumerate(lines, start=1):
        if line.strip():
            block.append((no, line))
        else:
            flush()
            block = []
    flush()
    return CueTrack(cues, problems)


def language_of(path: Path) -> str | None:
    """`movie.de.srt` → "de": the language a file name states (2 or 3 letters before the suffix)."""
    parts = path.name.split(".")
    if len(parts) >= 3 and re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z]{2})?", parts[-2]):
        return parts[-2].lower()
    return None


def read_subtitle_file(path: str | Path) -> CueTrack:
    """The cues of an .srt or .vtt file. SubtitleError (one sentence) when it is missing, not text,
    of another kind, or holds no valid cue at all."""
    p = Path(path)
    kind = p.suffix.lower().lstrip(".")
    if f".{kind}" not in SUBTITLE_SUFFIXES:
        raise SubtitleError(f"{str(p)!r} is not a subtitle file (use a .srt or .vtt file).")
    if not p.is_file():
        raise SubtitleError(f"subtitle file {str(p)!r} does not exist.")
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SubtitleError(f"subtitle file {str(p)!r} is not UTF-8 text (byte {exc.start}).") from None
    except OSError as exc:
        raise SubtitleError(f"subtitle file {str(p)!r} could not be read ({exc.strerror}).") from None
    if kind == "vtt" and not text.lstrip("\ufeff").startswith("WEBVTT"):
        raise SubtitleError(f"{str(p)!r} is not a WebVTT file (it must start with 'WEBVTT').")
    track = parse_cues(text, kind=kind, name=p.name, language=language_of(p))
    if not track.cues:
        why = f" ({len(track.problems)} malformed, first: {track.problems[0]})" if track.problems else ""
        raise SubtitleError(f"subtitle file {str(p)!r} holds no valid cue{why}.")
    return track


def sidecar_for(video: str | Path) -> Path | None:
    """The subtitle file beside a video file: VIDEO.srt, VIDEO.vtt (stem or full name), else None."""
    v = Path(video)
    for suffix in SUBTITLE_SUFFIXES:
        for candidate in (v.with_suffix(suffix), v.with_name(v.name + suffix)):
            if candidate.is_file():
                return candidate
    return None


# ------------------------------------------------------------------------------------------ container
def container_cues(source: str, *, timeout: float = 10.0) -> CueTrack:
    """The cues of every text subtitle stream in a media file or HLS playlist (PyAV), in time order.

    Times: each packet's pts and duration in its stream's time base (an ASS event's own display
    times when the packet carries no duration). Empty when the source has no text subtitle stream."""
    import av

    try:
        container = av.open(source, timeout=timeout)
    except (av.FFmpegError, OSError) as exc:
        raise SubtitleError(f"subtitle streams of {source!r} could not be read ({exc}).") from None
    cues: list[Cue] = []
    problems: list[str] = []
    try:
        streams = [s for s in container.streams.subtitles if s.codec_context.name in TEXT_SUBTITLE_CODECS]
        if not streams:
            return CueTrack()
        for packet in container.demux(streams):
            if packet.pts is None or packet.size == 0:
                continue
            stream = packet.stream
            tb = float(stream.time_base)
            start = packet.pts * tb
            end = start + (packet.duration or 0) * tb
            try:
                items = packet.decode()
            except av.FFmpegError as exc:
                problems.append(f"subtitle stream {stream.index} at {start:.3f} s: undecodable cue ({exc}); skipped")
                continue
            words = _clean([_dialogue(item) for item in items])
            if not words:
                continue
            if end <= start:
                end = start + 2.0  # a cue without duration shows until the next; 2 s keeps it local
            language = (stream.metadata or {}).get("language")
            language = None if language in (None, "", "und") else language
            cues.append(Cue(start, end, words, f"container:{stream.codec_context.name}", language))
    except av.FFmpegError as exc:
        problems.append(f"subtitle streams of {source!r}: reading stopped ({exc})")
    finally:
        container.close()
    return CueTrack(cues, problems)


def _dialogue(item: object) -> str:
    text = getattr(item, "dialogue", None)
    if text is None:
        text = getattr(item, "text", b"")
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text or "")


def load_text_track(source: str, subtitles: Sequence[str | Path] = (), *, sidecar: bool = True,
                    origin: float | None = None) -> CueTrack:
    """Every cue of a recording on its stream time: the named subtitle files, else its sidecar file
    (when `sidecar`), plus the container's text subtitle streams (files and HLS playlists). Problems
    are logged as warnings (one line each) and collected.

    Subtitle files count from the recording's first frame, as players show them, which is the 0.0 of
    segment times. Container and HLS cues are on the media's own clock (pts, the MPEG-TS clock), so
    they are moved by `origin`, the media time of the first decodable frame (probed when not given;
    only when such cues exist)."""
    tracks = [read_subtitle_file(p) for p in subtitles]
    if not tracks and sidecar and "://" not in source:
        found = sidecar_for(source)
        if found is not None:
            tracks.append(read_subtitle_file(found))
    local = "://" not in source and Path(source).is_file()
    media: CueTrack | None = None
    if source.lower().split("?")[0].endswith(".m3u8"):  # HLS: FFmpeg gives no WebVTT rendition's cues
        from tempo.streaming.hls_subtitles import hls_webvtt_cues

        media = hls_webvtt_cues(source)
        media = media if media is not None else container_cues(source)
    elif local:
        media = container_cues(source)
    if media is not None and media.cues:
        if origin is None:
            from tempo.streaming.readers import probe_source

            origin = probe_source(source).start_time or 0.0
        if origin:
            media = CueTrack([replace(c, start=c.start - origin, end=c.end - origin) for c in media.cues],
                             media.problems)
    if media is not None:
        tracks.append(media)
    merged = CueTrack.merged(tracks)
    for problem in merged.problems:  # the run goes on without those cues: say which were skipped
        log.warning("%s", problem)
    return merged
