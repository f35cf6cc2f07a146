"""Citations: times mentioned in an answer -> structured citations on real segments (the agent's cite
node and the reference mode both cite with it).

The global LLM sees each segment behind a tag `<t seconds>` (t = the segment's centre, stream
seconds) and answers with times of the same kind. What counts as a time in an answer:
- a tag: "<12.5 seconds>";
- a colon time: "1:05" (M:SS) or "00:01:05" (H:MM:SS), always an offset into the stream (the model
  never sees wall-clock times);
- a duration *used as a time*: "at 12.5 seconds", "around 2 min 30 s", "the 90 s mark", "12 s into
  the video". A bare duration without such a cue ("it lasted 5 seconds") is a length, not a time,
  and is not cited;
- ranges of the above: "from 10 s to 20 s", "between 10 and 20 seconds", "10-20 s", "00:10–00:20",
  "<10.0 seconds> to <14.0 seconds>".
A point cites the segment containing it (start <= t < end; the stream's last instant belongs to the
last segment); a range cites every segment it overlaps. Times that hit no segment are dropped unless
`keep_unmatched` is set, so a citation always points at real segments of the stream.
When the segments are timeline rows whose `cues` entered the prompt, a citation can also carry the
said line it relies on (`cue`), and a quoted line is cited even without a time: engine/cue_cite.py.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from tempo.engine.timeexpr import COLON, DURATION, TAG, parse_colon, parse_duration


@dataclass(frozen=True)
class SegmentSpan:
    index: int
    start: float  # seconds
    end: float  # seconds


@dataclass(frozen=True)
class TimeMention:
    start: float  # seconds
    end: float  # seconds; == start for a point
    text: str  # the words of the answer
    position: int  # character offset in the answer


@dataclass(frozen=True)
class Citation:
    start: float  # seconds
    end: float  # seconds
    segments: tuple[int, ...]  # segment indices, ascending
    text: str
    stream: str | None = None  # cross-stream (issue 22): the stream cited; None in reference mode
    cue: dict[str, Any] | None = None  # speech (issue 24): the said line it relies on (engine/cue_cite.py)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "segments": list(self.segments),
            "text": self.text,
            "stream": self.stream,
            "cue": self.cue,
        }


_BARE = r"\d+(?:\.\d+)?"
_TO = r"\s*(?:-|–|—|to|until|till|and)\s*"
# Group names: TAG carries a named group, so the pattern is built with numbered copies of it.
_TAG_FREE = TAG.replace("(?P<tag>", "(?:")
_P = rf"(?:{_TAG_FREE}|{COLON}|{DURATION})"
_RANGE_RE = re.compile(
    rf"\b(?:from|between)\s+(?:the\s+)?(?P<a>{_P}|{_BARE})\s*(?:-|–|—|to|until|till|and)\s*(?P<b>{_P})"
    rf"|(?P<a2>{_TAG_FREE}|{COLON}){_TO}(?P<b2>{_TAG_FREE}|{COLON})"
    rf"|(?<![\w.])(?P<a3>{_BARE})\s*(?:-|–|—)\s*(?P<b3>{DURATION})",
    re.IGNORECASE,
)
_POINT_RE = re.compile(
    rf"(?P<tag>{_TAG_FREE})|(?P<colon>{COLON})"
    rf"|(?:\b(?:at|around|about|near|by|after|before|since|until|till|approximately|roughly|@)\s+"
    rf"(?:the\s+)?(?:~\s*)?)(?P<cued>{DURATION})"
    rf"|(?P<lead>{DURATION})(?=\s+(?:mark|into)\b|\s+in\b\s*(?:[,.;!?]|$))",
    re.IGNORECASE,
)
_TAG_VALUE_RE = re.compile(TAG, re.IGNORECASE)


def _seconds(text: str) -> float | None:
    text = text.strip()
    tag = _TAG_VALUE_RE.fullmatch(text)
    if tag:
        return float(tag.group("tag"))
    if re.fullmatch(COLON, text):
        return parse_colon(text)[0]
    return parse_duration(text)


def _unit_scale(duration_text: str) -> float | None:
    """Seconds per unit of a duration's first unit ("20 seconds" -> 1, "2 min" -> 60)."""
    m = re.match(rf"{_BARE}\s*([a-z]+)", duration_text.strip().lower())
    return parse_duration(f"1 {m.group(1)}") if m else None


def find_times(answer: str) -> list[TimeMention]:
    """Every time or time range the answer mentions, in order of appearance."""
    mentions: list[TimeMention] = []
    taken: list[tuple[int, int]] = []
    for m in _RANGE_RE.finditer(answer):
        a_text = m.group("a") or m.group("a2") or m.group("a3")
        b_text = m.group("b") or m.group("b2") or m.group("b3")
        b = _seconds(b_text)
        if re.fullmatch(_BARE, a_text.strip()):
            # "between 10 and 20 seconds", "10-20 s": the first number takes the second's unit.
            scale = _unit_scale(b_text)
            a = float(a_text) * scale if scale else None
        else:
            a = _seconds(a_text)
        if a is None or b is None:
            continue
        lo, hi = min(a, b), max(a, b)
        mentions.append(TimeMention(lo, hi, m.group(0), m.start()))
        taken.append(m.span())
    for m in _POINT_RE.finditer(answer):
        if any(start < m.end() and m.start() < end for start, end in taken):
            continue
        value_text = m.group("tag") or m.group("colon") or m.group("cued") or m.group("lead")
        t = _seconds(value_text)
        if t is None:
            continue
        mentions.append(TimeMention(t, t, m.group(0), m.start()))
    mentions.sort(key=lambda x: x.position)
    return mentions


def _span(segment: Any) -> SegmentSpan:
    if isinstance(segment, SegmentSpan):
        return segment
    if isinstance(segment, Mapping):
        return SegmentSpan(int(segment["index"]), float(segment["start"]), float(segment["end"]))
    if isinstance(segment, tuple | list):
        index, start, end = segment
        return SegmentSpan(int(index), float(start), float(end))
    return SegmentSpan(int(segment.index), float(segment.start), float(segment.end))


class SegmentTimeline:
    """Segments sorted by start time, for lookups by time. Accepts `SegmentSpan`s, mappings or tuples
    with index/start/end, or objects with those attributes (e.g. `tempo.streaming.segment.Segment`)."""

    def __init__(self, segments: Iterable[Any]) -> None:
        self.spans = sorted((_span(s) for s in segments), key=lambda s: (s.start, s.index))
        self._starts = [s.start for s in self.spans]

    def at(self, t: float) -> list[int]:
        """The segment containing time t (start <= t < end; the very end belongs to the last one)."""
        i = bisect.bisect_right(self._starts, t) - 1
        if i >= 0 and (self.spans[i].start <= t < self.spans[i].end):
            return [self.spans[i].index]
        if self.spans and t == max(s.end for s in self.spans):
            return [max(self.spans, key=lambda s: s.end).index]
        return []

    def overlapping(self, start: float, end: float) -> list[int]:
        """Segments overlapping [start, end]; a zero-length interval is a point."""
        if end <= start:
            return self.at(start)
        hi = bisect.bisect_left(self._starts, end)
        return sorted(s.index for s in self.spans[:hi] if s.end > start)


def cite(answer: str, segments: Iterable[Any], *, keep_unmatched: bool = False) -> list[Citation]:
    """Citations for the times an answer mentions, each with the indices of the segments it points at.

    Repeated mentions of the same time collapse into the first one. Rows with `cues` (the words the
    answerer read): citations carry the cue they rely on (engine/cue_cite.py).
    """
    from tempo.engine.cue_cite import prompt_cues, with_cues

    rows = [] if isinstance(segments, SegmentTimeline) else list(segments)
    timeline = segments if isinstance(segments, SegmentTimeline) else SegmentTimeline(rows)
    citations: list[tuple[int, Citation]] = []
    seen: set[tuple[float, float]] = set()
    for mention in find_times(answer):
        key = (round(mention.start, 3), round(mention.end, 3))
        if key in seen:
            continue
        indices = timeline.overlapping(mention.start, mention.end)
        if not indices and not keep_unmatched:
            continue
        seen.add(key)
        citations.append((mention.position, Citation(mention.start, mention.end, tuple(indices), mention.text)))
    cues = [replace(p, stream=None) for p in prompt_cues(rows)]  # one stream: the caller names it
    return with_cues(answer, citations, cues, lambda _s, a, b: timeline.overlapping(a, b))
