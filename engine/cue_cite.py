"""Citations that point at a said line: which cue of the prompt a citation relies on (issue 24).

The answerer reads the kept segments' cues (`Subtitles 17.0-19.0 s: "…"`, tempo.engine.text_track);
a timeline row's `cues` lists those it read. Only those cues can be cited: a citation never points at
words the answerer did not see. The rule, applied to the answer's citations (tempo.engine.citations):

1. **A quote.** Words the answer puts in quotation marks ("…", “…”, «…», „…“, or '…' around words)
   quote a cue when, compared as lower-case words, the quote is a run of the cue's words at least two
   words long, or the whole cue, or the cue (two words or more) is a run of the quote's words.
   - A time cited in the same sentence as the quote, on a segment the cue lies on, carries that cue.
   - A quoted cue that no such time cites becomes a citation of its own: the cue's interval, the
     segments it overlaps, the quote as its text (so "she says 'the budget is due'" cites the line
     even when the answer gives no time). Words said at several times are cited at each.
2. **A time inside a line.** A citation without a quoted cue carries the cue it falls in: a point
   time inside a cue's interval (±0.05 s, the prompt shows times to 0.1 s; the nearest cue centre if
   several), a range that overlaps one cue by at least half of both (the cue's and the range's
   lengths; the largest overlap wins).

A citation carries at most one cue: `cue` = {text, start, end, source, language} or None.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tempo.engine.citations import Citation
from tempo.streaming.subtitles import Cue

TIME_SLACK = 0.05  # seconds: the prompt writes cue times to 0.1 s
_QUOTES = re.compile(
    r'"(?P<a>[^"\n]{1,1000})"|“(?P<b>[^”\n]{1,1000})”|«(?P<c>[^»\n]{1,1000})»|„(?P<d>[^“”\n]{1,1000})[“”]'
    r"|(?<!\w)'(?P<e>[^'\n]{1,1000}?)'(?!\w)"
)
_SENTENCE_END = re.compile(r"[.!?;\n](?=\s|$)")


@dataclass(frozen=True)
class PromptCue:
    """A cue the answerer read, with the stream it belongs to (None for one stream or a video)."""

    cue: Cue
    stream: str | None
    segments: tuple[int, ...]  # the rows (segment indices) of that stream that carried it


def prompt_cues(rows: Iterable[Any], default_stream: str | None = None) -> list[PromptCue]:
    """The cues a timeline's rows carried into the prompt (each `row["cues"]`), each once per stream."""
    found: dict[tuple[str | None, Cue], list[int]] = {}
    for row in rows:
        if not isinstance(row, Mapping):
            continue
        stream = row.get("stream") or default_stream
        for c in row.get("cues") or ():
            cue = Cue(float(c["start"]), float(c["end"]), str(c["text"]), str(c.get("source", "")),
                      c.get("language"))
            found.setdefault((stream, cue), []).append(int(row["index"]))
    return [PromptCue(cue, stream, tuple(sorted(set(idx)))) for (stream, cue), idx in found.items()]


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _run_of(part: Sequence[str], whole: Sequence[str]) -> bool:
    n = len(part)
    return 0 < n <= len(whole) and any(list(whole[i: i + n]) == list(part) for i in range(len(whole) - n + 1))


def quotes(answer: str, cue: Cue) -> bool:
    """Whether `answer` (a quote's words) quotes the cue (rule 1)."""
    q, c = words(answer), words(cue.text)
    return (len(q) >= 2 and _run_of(q, c)) or (bool(q) and q == c) or (len(c) >= 2 and _run_of(c, q))


def _sentence(text: str, position: int) -> tuple[int, int]:
    starts = [m.end() for m in _SENTENCE_END.finditer(text, 0, position)]
    after = _SENTENCE_END.search(text, position)
    return (starts[-1] if starts else 0), (after.start() if after else len(text))


def _cue_in_time(start: float, end: float, cues: Sequence[PromptCue]) -> PromptCue | None:
    """Rule 2: the cue a cited point or range falls in, else None."""
    if end <= start:  # a point
        inside = [p for p in cues if p.cue.start - TIME_SLACK <= start <= p.cue.end + TIME_SLACK]
        return min(inside, key=lambda p: (abs((p.cue.start + p.cue.end) / 2 - start), p.cue.start), default=None)
    best, best_overlap = None, 0.0
    for p in cues:
        overlap = min(end, p.cue.end + TIME_SLACK) - max(start, p.cue.start - TIME_SLACK)
        length = p.cue.end - p.cue.start
        if overlap >= 0.5 * (end - start) and overlap >= 0.5 * length and overlap > best_overlap:
            best, best_overlap = p, overlap
    return best


def with_cues(answer: str, cited: Sequence[tuple[int, Citation]], cues: Sequence[PromptCue],
              segments_of: Callable[[str | None, float, float], Sequence[int]]) -> list[Citation]:
    """The citations (`cited`: (position in the answer, Citation), in order) with the cue each relies
    on, plus a citation for each quoted cue no time cites, all in order of position in the answer.
    `segments_of(stream, start, end)`: the segment indices of `stream` overlapping [start, end]."""
    if not cues:
        return [c for _, c in cited]
    quoted = [(m.start(), text, [p for p in cues if quotes(text, p.cue)])
              for m in _QUOTES.finditer(answer) for text in [next(g for g in m.groups() if g is not None)]]
    out: list[tuple[int, Citation]] = []
    used: set[tuple[str | None, Cue]] = set()
    for position, citation in cited:
        begin, end = _sentence(answer, position)
        cue = next((p for qpos, _, found in quoted if begin <= qpos < end for p in found
                    if p.stream == citation.stream and set(p.segments) & set(citation.segments)), None)
        if cue is None:
            cue = _cue_in_time(citation.start, citation.end, [p for p in cues if p.stream == citation.stream])
        if cue is not None:
            used.add((cue.stream, cue.cue))
            citation = replace(citation, cue=cue.cue.to_dict())
        out.append((position, citation))
    seen = {(c.stream, round(c.start, 3), round(c.end, 3)) for _, c in out}
    for qpos, text, found in quoted:
        for p in found:
            key = (p.stream, round(p.cue.start, 3), round(p.cue.end, 3))
            if (p.stream, p.cue) in used or key in seen:
                continue
            indices = tuple(segments_of(p.stream, p.cue.start, p.cue.end)) or p.segments
            out.append((qpos, Citation(p.cue.start, p.cue.end, indices, text, stream=p.stream, cue=p.cue.to_dict())))
            used.add((p.stream, p.cue))
            seen.add(key)
    out.sort(key=lambda pc: pc[0])
    return [c for _, c in out]

