"""Citations of an answer given across streams: each time it mentions, on the segments of the stream it
is about ("cam2 at 0:42", "<cam2 42.0 seconds>", "at 0:42 on cam2").

Which stream a time belongs to:
1. a tag names it (`<cam2 42.0 seconds>`, the form the model sees, tempo.engine.multi.stream_tag);
2. else the stream named nearest to the time within its sentence (before or after it);
3. else the stream named last before it in the answer ("cam2 shows a truck at 0:42, and it leaves at 0:50");
4. else, with no stream named at all, the streams whose candidate segments (the ones the question
   recompressed) contain the time, each cited.
Times that hit no segment of their stream are dropped, as for one stream (tempo.engine.citations).
A citation carries the said line it relies on, and a quoted line is cited on its stream (engine/cue_cite.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tempo.engine.citations import Citation, SegmentTimeline, TimeMention, find_times
from tempo.engine.cue_cite import prompt_cues, with_cues

_STREAM_TAG = re.compile(
    r"<\s*(?P<stream>[A-Za-z0-9][A-Za-z0-9._-]{0,127})\s+(?P<t>\d+(?:\.\d+)?)\s*(?:seconds?|secs?|s)\s*>",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?;\n](?=\s|$)")


def _name_pattern(streams: Sequence[str]) -> re.Pattern[str] | None:
    if not streams:
        return None
    names = "|".join(re.escape(s) for s in sorted(streams, key=len, reverse=True))
    # A name is a whole word: "cam1" is not inside "cam10"; a trailing full stop ends a sentence.
    return re.compile(rf"(?<![A-Za-z0-9._-])(?:{names})(?![A-Za-z0-9_-]|\.[A-Za-z0-9])", re.IGNORECASE)


def _sentence(text: str, position: int) -> tuple[int, int]:
    starts = [m.end() for m in _SENTENCE_END.finditer(text, 0, position)]
    begin = starts[-1] if starts else 0
    after = _SENTENCE_END.search(text, position)
    return begin, after.start() if after else len(text)


def cite_streams(answer: str, rows: Iterable[Mapping[str, Any]], streams: Sequence[str]) -> list[Citation]:
    """Citations for the times `answer` mentions, each on one stream's segments (`rows`: the answer's
    timeline rows, each with "stream", "index", "start", "end", "kind")."""
    rows = list(rows)
    canonical = {s.lower(): s for s in streams}
    timelines = {s: SegmentTimeline(r for r in rows if r.get("stream") == s) for s in streams}
    candidates = {s: SegmentTimeline(r for r in rows if r.get("stream") == s and r.get("kind") == "candidate")
                  for s in streams}  # fmt: skip
    mentions: list[tuple[TimeMention, str | None]] = []
    masked = list(answer)
    for m in _STREAM_TAG.finditer(answer):
        t = float(m.group("t"))
        named = canonical.get(m.group("stream").lower())
        mentions.append((TimeMention(t, t, m.group(0), m.start()), named))
        masked[m.start() : m.end()] = " " * (m.end() - m.start())
    masked_text = "".join(masked)
    pattern = _name_pattern(streams)
    names = [(m.start(), canonical[m.group(0).lower()]) for m in pattern.finditer(masked_text)] if pattern else []
    for mention in find_times(masked_text):
        mentions.append((mention, _stream_of(masked_text, mention.position, names)))
    mentions.sort(key=lambda x: x[0].position)

    citations: list[tuple[int, Citation]] = []
    seen: set[tuple[str, float, float]] = set()
    for mention, stream in mentions:
        if stream is not None:
            targets = [stream]
        else:
            targets = [s for s in streams if candidates[s].overlapping(mention.start, mention.end)]
        for s in targets:
            key = (s, round(mention.start, 3), round(mention.end, 3))
            indices = timelines[s].overlapping(mention.start, mention.end)
            if key in seen or not indices:
                continue
            seen.add(key)
            citations.append((mention.position, Citation(mention.start, mention.end, tuple(indices), mention.text,
                                                         stream=s)))
    # The said lines the citations rely on, and quoted lines (engine/cue_cite.py), on their own stream.
    return with_cues(answer, citations, [p for p in prompt_cues(rows) if p.stream in timelines],
                     lambda s, a, b: timelines[s].overlapping(a, b))


def _stream_of(text: str, position: int, names: list[tuple[int, str]]) -> str | None:
    """The stream a time at `position` is about: named in its sentence (nearest), else named last before it."""
    begin, end = _sentence(text, position)
    inside = [(abs(p - position), s) for p, s in names if begin <= p < end]
    if inside:
        return min(inside)[1]
    before = [s for p, s in names if p < position]
    return before[-1] if before else None
