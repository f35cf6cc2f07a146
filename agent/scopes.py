"""A question's whole time scope: several ranges, and follow-ups that move in time.

`read_scope(question, clock, reference)` reads every time phrase of a question (the rules of
`tempo.agent.timescope`, all of their matches rather than the first) and returns a `ScopeReading`:
one or more ranges of stream seconds, the words they came from, and whether the question moved
relative to the previous turn. On top of the single-phrase rules:

- **Several ranges.** "between 0:10 and 0:20 and after 2:00", "compare 0:10 with 2:10" (a bare colon
  or clock time is a point: ±30 s), "the first and the last minute" (one unit for both) give one
  range each; candidates are retrieved from each range (`retrieve_in_ranges`). "after A and before
  B" (either order) is their intersection when they overlap. Overlapping ranges are merged.
- **Relative references** are resolved against `reference`: the previous turn's cited range when
  its answer had citations, else the ranges it looked at (`reference_of`), or against a time phrase
  earlier in the same question ("in the first minute and the 30 seconds after that"):
  * "after that/this", "afterwards", "then" (as in "and then?", "what happened then?"), "next"
    (at the end of a clause: "what happened next?", never "next to"), "later", "since then",
    "subsequently" -> from the reference's end to the stream's end;
  * "before that/this", "earlier", "previously", "beforehand", "until then" -> from the stream's
    start up to the reference's start;
  * "in the N seconds/minutes after (before) that", "the next/following N minutes", "the minute
    before that" -> the N seconds after its end (before its start);
  * "N seconds after (before) that", "N minutes later (earlier)" -> the moment N after its end
    (before its start), ± min(30 s, N/2);
  * "right/just/immediately/shortly after (before) that" -> the 60 s after its end (before its start);
  * "at that time/moment", "at the same time", "meanwhile", "back then" -> the reference itself.
  Conversation words are not times: "as I asked earlier", "as you said before". Without a
  reference, relative words give no scope.

`standalone_for` builds the deterministic standalone question of a follow-up that moved in time:
its relative words become clock times ("And after that?" after "What happens in the first minute?"
-> "What happens after 1:00?"); it holds at most the previous question's first sentence and the
follow-up, so it never accumulates a thread's earlier questions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tempo.agent.rewrite import needs_context
from tempo.agent.timescope import (
    POINT_HALF_WIDTH_S,
    RULES,
    StreamClock,
    TimeScope,
    point_scope,
)
from tempo.engine.timeexpr import CLOCK, COLON, DURATION, format_clock, parse_duration

Range = tuple[float, float]
SOON_S = 60.0  # "right after that": the minute after
_UNIT = r"hours?|minutes?|mins?|seconds?|secs?"
_N = rf"(?:{DURATION}|(?:{_UNIT})(?![a-z]))"  # "the 30 seconds after that", "the minute before that"
_THAT = (
    r"(?:(?:that|this)(?:\s+(?:happened|happens|occurred|moment|time|point))?|then"
    r"|it\s+(?:happened|happens|occurred)|it(?=\s*(?:[?.!,;]|$)))"
)
# What may follow "after that" for it to be the previous moment, not "that car".
_FOLLOWERS = (
    r"(?=\s*(?:[?.!,;:)]|$|(?:happened|happens|happen|occurred|moment|time|point|and|or|but|in|on|at|did|does|"
    r"do|was|were|is|are|who|what|when|where|how|which|anyone|anybody|someone|somebody|anything|something|he|"
    r"she|they|we|i|you|there|the|a|an|until|till|up|for|during|while|to)\b))"
)


@dataclass(frozen=True)
class _Relative:
    pattern: re.Pattern[str]
    how: str  # "after" | "before" | "window" | "moment" | "soon" | "same"


def _rx(text: str) -> re.Pattern[str]:
    return re.compile(text, re.IGNORECASE)


_RELATIVE: tuple[_Relative, ...] = (
    _Relative(_rx(rf"(?:\b(?:in|during|over|within|for)\s+)?\bthe\s+(?:first\s+)?(?P<n>{_N})\s+"
                  rf"(?P<dir>after|following|before|preceding|prior\s+to|leading\s+up\s+to)\s+{_THAT}{_FOLLOWERS}"),
              "window"),
    _Relative(_rx(rf"\b(?:in|during|over|within|for)\s+(?P<n>{_N})\s+(?P<dir>after|before)\s+{_THAT}{_FOLLOWERS}"),
              "window"),
    _Relative(_rx(rf"(?:\b(?:in|during|over|within|for)\s+)?(?:\bthe\s+)?"
                  rf"\b(?P<dir>next|following|preceding|previous)\s+(?P<n>{_N})"), "window"),
    _Relative(_rx(rf"(?P<n>{DURATION})\s+(?P<dir>after|before)\s+{_THAT}{_FOLLOWERS}"
                  rf"|(?P<n2>{DURATION})\s+(?P<dir2>later|earlier|afterwards?|before(?=\s*(?:[?.!,;]|$)))"
                  r"\b(?!\s+than)"),
              "moment"),
    _Relative(_rx(rf"\b(?:right|just|immediately|shortly|soon)\s+(?P<dir>after|before)\s+{_THAT}{_FOLLOWERS}"
                  r"|\bimmediately\s+(?P<dir2>after|before)(?:wards?|hand)?\b(?=\s*(?:[?.!,;]|$))"), "soon"),
    _Relative(_rx(r"\b(?:at|around|about|during)\s+(?:that|the\s+same)\s+(?:time|moment|point)\b|\bmeanwhile\b"
                  r"|\bin\s+the\s+meantime\b|\bback\s+then\b|\bat\s+that\s+(?:instant|stage)\b"), "same"),
    _Relative(_rx(rf"\b(?:after|following|since)\s+{_THAT}{_FOLLOWERS}|\bafterwards?\b|\bsubsequently\b"
                  r"|\bthereafter\b|\bfrom\s+then\s+on\b|\blater(?:\s+on)?\b(?!\s+than)"
                  r"|\bnext\b(?=\s*(?:[?.!,;]|$))|^\W*(?:(?:and|so|ok|okay|well)\W+)?then\b"
                  r"|\b(?:after|afterward)\b(?=\s*(?:[?.!]|$))"
                  r"|\b(?:and|but)\s+then\b|\bthen\s+what\b"
                  r"|\bwhat\s+(?:happened|happens|came|comes|did\s+\w+\s+do|does\s+\w+\s+do)\s+then\b"), "after"),
    _Relative(_rx(rf"\b(?:before|prior\s+to|preceding)\s+{_THAT}{_FOLLOWERS}|\bearlier\b(?!\s+than)"
                  r"|\bpreviously\b|\bbeforehand\b|\b(?:until|till|up\s+to|up\s+until|by)\s+then\b"
                  r"|\bbefore\b(?=\s*(?:[?.!]|$))"), "before"),
)  # fmt: skip
# Words about the conversation, not the video: "as I asked earlier", "you said before".
_CONVERSATION_RE = _rx(
    r"\b(?:asked|said|mentioned|told|discussed|noted|stated|described|answered|explained|wrote|showed)"
    r"(?:\s+(?:me|us|you|it|that|this|so))?\s+(?:earlier|previously|before|later)\b|\bas\s+before\b"
)
_FIRST_AND_LAST_RE = _rx(
    rf"(?:\b(?:in|during|over|within|for)\s+)?(?:\bthe\s+)?\b(?P<w1>first|last|final)\s+(?:and|or|vs\.?|versus|with|"
    rf"to|against)\s+(?:the\s+)?(?P<w2>first|last|final)\s+(?:(?P<dur>{DURATION})|(?P<unit>{_UNIT}))(?![a-z])"
)
_BARE_POINT_RE = _rx(rf"{CLOCK}|{COLON}")
_POINT = rf"(?:{CLOCK}|{COLON}|{DURATION})"
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
# "in the second minute" -> 1:00-2:00, "the 3rd hour"
_ORDINAL_RE = _rx(
    rf"(?:\b(?:in|during)\s+)?\bthe\s+(?P<ord>{'|'.join(_ORDINALS)}|\d{{1,4}}(?:st|nd|rd|th))\s+"
    r"(?P<unit>minute|hour)\b(?!\s+(?:mark|of\s+the\s+hour))"
)
# "the 30 seconds before 2:00" (a window), "30 seconds after 1:00" (a moment): relative to a time point.
_AROUND_POINT_RE = _rx(
    rf"(?P<window>(?:\b(?:in|during|over|within|for)\s+)?\bthe\s+)?(?P<n>{_N})\s+(?P<dir>after|before|following|"
    rf"preceding|prior\s+to|leading\s+up\s+to)\s+(?:the\s+)?(?P<a>{_POINT})(?:\s+mark)?"
)


@dataclass(frozen=True)
class ScopeReading:
    """The time scope of one question."""

    ranges: tuple[Range, ...]  # ascending, disjoint, inside [0, duration]
    phrase: str  # how it was read: the question's words (with the reference for relative ones)
    relative: bool  # a phrase was resolved against the previous turn
    spans: tuple[tuple[int, int], ...]  # where the time words are in the question
    moved: tuple[tuple[tuple[int, int], Range], ...] = ()  # relative phrases and the range each became

    def to_dict(self) -> dict[str, Any]:
        """As `tempo.engine.result.TimeScope`: the envelope, the phrase and every range."""
        return {
            "start": round(self.ranges[0][0], 3),
            "end": round(self.ranges[-1][1], 3),
            "phrase": self.phrase,
            "ranges": [{"start": round(a, 3), "end": round(b, 3)} for a, b in self.ranges],
        }


def scope_dict(ranges: Sequence[Range], phrase: str) -> dict[str, Any]:
    """A `TimeScope` result dict for given ranges (an explicit range, an inherited scope)."""
    return ScopeReading(tuple(ranges), phrase, False, ()).to_dict()


def span_text(ranges: Sequence[Range], duration: float) -> str:
    """Ranges as words with clock times: "after 1:00", "before 1:30", "between 0:10 and 0:40"."""
    parts = []
    for a, b in ranges:
        if a <= 0 and b >= duration:
            parts.append("in the whole video")
        elif a <= 0:
            parts.append(f"before {format_clock(b)}")
        elif b >= duration:
            parts.append(f"after {format_clock(a)}")
        else:
            parts.append(f"between {format_clock(a)} and {format_clock(b)}")
    return " and ".join(parts)


# ----- reading -------------------------------------------------------------------------------------------


def _point_time(text: str, around: TimeScope, duration: float) -> float:
    """The instant of a point scope: its centre, unless the stream's edges clipped it."""
    seconds = parse_duration(text)
    if seconds is not None:
        return seconds
    if around.start <= 0 < around.end < duration:
        return around.end - POINT_HALF_WIDTH_S
    if around.start > 0 and around.end >= duration:
        return around.start + POINT_HALF_WIDTH_S
    return (around.start + around.end) / 2


def _overlaps(span: tuple[int, int], taken: Sequence[tuple[int, int]]) -> bool:
    return any(span[0] < b and a < span[1] for a, b in taken)


def absolute_scopes(question: str, clock: StreamClock, taken: Sequence[tuple[int, int]] = ()) -> list[TimeScope]:
    """Every absolute time phrase of the question, as scopes in question order, earlier rules first
    where phrases overlap; phrases overlapping `taken` are skipped."""
    d = clock.duration
    found: list[TimeScope] = []
    spans = list(taken)
    for m in _FIRST_AND_LAST_RE.finditer(question):
        seconds = parse_duration(m.group("dur") or f"1 {m.group('unit')}")
        if not seconds or _overlaps(m.span(), spans):
            continue
        spans.append(m.span())
        for which in (m.group("w1"), m.group("w2")):
            a, b = (0.0, min(d, seconds)) if which.lower() == "first" else (max(0.0, d - seconds), d)
            found.append(TimeScope(a, b, m.group(0).strip(), m.span(), "first" if a == 0 else "last"))
    for m in _ORDINAL_RE.finditer(question):
        word = m.group("ord").lower()
        n = _ORDINALS.index(word) + 1 if word in _ORDINALS else int(re.sub(r"\D", "", word))
        unit = 3600.0 if m.group("unit").lower() == "hour" else 60.0
        a, b = (n - 1) * unit, min(d, n * unit)
        if n >= 1 and b > a and not _overlaps(m.span(), spans):
            spans.append(m.span())
            found.append(TimeScope(a, b, m.group(0).strip(), m.span(), "range"))
    for m in _AROUND_POINT_RE.finditer(question):
        if _overlaps(m.span(), spans) or (point := point_scope(m.group("a"), clock, m.span("a"))) is None:
            continue
        how = "window" if m.group("window") else "moment"
        if how == "moment" and re.fullmatch(_UNIT, m.group("n").strip(), re.IGNORECASE):
            continue  # "minute after 1:00" without "the" is no time
        t = _point_time(m.group("a"), point, d)
        got = _resolve_relative(m, how, [(t, t)], d)
        if got is None or min(d, got[1]) <= max(0.0, got[0]):
            continue
        spans.append(m.span())
        kind = "range"
        found.append(TimeScope(max(0.0, got[0]), min(d, got[1]), m.group(0).strip(), m.span(), kind))
    for rule in RULES:
        for scope in rule(question, clock):
            if not _overlaps(scope.span, spans):
                spans.append(scope.span)
                found.append(scope)
    for m in _BARE_POINT_RE.finditer(question):
        if not _overlaps(m.span(), spans) and (scope := point_scope(m.group(0), clock, m.span())) is not None:
            spans.append(m.span())
            found.append(scope)
    return sorted(found, key=lambda s: s.span)


def _relative_matches(question: str) -> list[tuple[re.Match[str], str]]:
    excluded = [m.span() for m in _CONVERSATION_RE.finditer(question)]
    found: list[tuple[re.Match[str], str]] = []
    for rel in _RELATIVE:
        for m in rel.pattern.finditer(question):
            span = m.span()
            taken = [x.span() for x, _ in found]
            if m.group(0).strip() and not _overlaps(span, excluded) and not _overlaps(span, taken):
                found.append((m, rel.how))
    return sorted(found, key=lambda f: f[0].start())


def _resolve_relative(m: re.Match[str], how: str, ref: Sequence[Range], d: float) -> Range | None:
    start, end = ref[0][0], ref[-1][1]
    groups = m.groupdict()
    word = (groups.get("dir") or groups.get("dir2") or "").lower()
    back = word in ("before", "preceding", "previous", "earlier") or word.startswith(("prior", "leading"))
    if how == "after":
        return end, d
    if how == "before":
        return 0.0, start
    if how == "same":
        if end - start < 1e-6:
            return start - POINT_HALF_WIDTH_S, end + POINT_HALF_WIDTH_S
        return start, end
    if how == "soon":
        return (start - SOON_S, start) if back else (end, end + SOON_S)
    n_text = groups.get("n") or groups.get("n2") or ""
    n = parse_duration(n_text) if re.search(r"\d|\s", n_text.strip()) else parse_duration(f"1 {n_text.strip()}")
    if not n:
        return None
    if how == "window":
        return (start - n, start) if back else (end, end + n)
    t = start - n if back else end + n  # "moment"
    w = min(POINT_HALF_WIDTH_S, n / 2)
    return t - w, t + w


def _combine(scopes: list[tuple[TimeScope, bool]]) -> list[tuple[TimeScope, bool]]:
    """'after A and before B' (in either order, next to each other) -> their intersection."""
    out: list[tuple[TimeScope, bool]] = []
    for scope, rel in scopes:
        if out:
            prev, prev_rel = out[-1]
            if {prev.kind, scope.kind} == {"after", "before"}:
                a, b = max(prev.start, scope.start), min(prev.end, scope.end)
                if b > a:
                    phrase = f"{prev.phrase} … {scope.phrase}"
                    out[-1] = (TimeScope(a, b, phrase, (prev.span[0], scope.span[1]), "range"), rel or prev_rel)
                    continue
        out.append((scope, rel))
    return out


def read_scope(question: str, clock: StreamClock, reference: Sequence[Range] | None = None) -> ScopeReading | None:
    """The time scope of `question` (see the module docstring), or None when it names no usable time.

    reference: the previous turn's ranges (or cited range) that relative words refer to.
    """
    d = float(clock.duration)
    if d <= 0:
        return None
    clock = replace(clock, duration=d)
    relatives = _relative_matches(question)
    if reference:  # relative phrases first: "the previous minute" is the one before the previous turn's
        absolute = absolute_scopes(question, clock, [m.span() for m, _ in relatives])
    else:  # nothing to be relative to: "the previous minute" is the stream's last
        absolute = absolute_scopes(question, clock)
        relatives = [(m, how) for m, how in relatives if not _overlaps(m.span(), [s.span for s in absolute])]
    events: list[tuple[int, TimeScope | tuple[re.Match[str], str]]] = [(s.span[0], s) for s in absolute]
    events += [(m.start(), (m, how)) for m, how in relatives]
    events.sort(key=lambda e: e[0])
    scopes: list[tuple[TimeScope, bool]] = []
    last_absolute: Range | None = None
    for _, event in events:
        if isinstance(event, TimeScope):
            scopes.append((event, False))
            last_absolute = (event.start, event.end)
            continue
        m, how = event
        ref = [last_absolute] if last_absolute is not None else list(reference or [])
        if not ref:
            continue
        got = _resolve_relative(m, how, ref, d)
        if got is None:
            continue
        a, b = max(0.0, got[0]), min(d, got[1])
        if b <= a:
            continue
        kind = {"after": "after", "before": "before"}.get(how, "range")
        origin = "the same question" if last_absolute is not None else "the previous turn"
        phrase = f"{m.group(0).strip()} ({span_text([(a, b)], d)}, from {origin})"
        scopes.append((TimeScope(a, b, phrase, m.span(), kind), last_absolute is None))
    scopes = _combine(scopes)
    if not scopes:
        return None
    merged: list[list[float]] = []
    for a, b in sorted((s.start, s.end) for s, _ in scopes):
        if merged and a < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return ScopeReading(
        ranges=tuple((float(a), float(b)) for a, b in merged),
        phrase="; ".join(dict.fromkeys(s.phrase for s, _ in scopes)),
        relative=any(rel for _, rel in scopes),
        spans=tuple(s.span for s, _ in scopes),
        moved=tuple((s.span, (s.start, s.end)) for s, rel in scopes if rel),
    )


# ----- the turn's scope, reference and retrieval --------------------------------------------------------


def turn_scope(
    question: str,
    standalone: str,
    reading: ScopeReading | None,
    clock: StreamClock,
    previous: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """The scope of a turn without an explicit range: the question's own time words (relative ones
    resolved), else, for a follow-up, the ranges the previous turn looked at, else the time words of
    its standalone form (a model's rewrite may carry them); None: the whole stream."""
    if reading is not None:
        return reading.to_dict()
    if previous and needs_context(question) and previous.get("ranges"):
        return scope_dict([(float(a), float(b)) for a, b in previous["ranges"]], "previous turn")
    if standalone != question and (found := read_scope(standalone, clock)) is not None:
        return found.to_dict()
    return None


def scope_ranges(scope: dict[str, Any] | None) -> list[Range] | None:
    """The ranges of a `TimeScope` dict (one written before `ranges` existed has its start-end)."""
    if not scope:
        return None
    ranges = scope.get("ranges") or [{"start": scope["start"], "end": scope["end"]}]
    return [(float(r["start"]), float(r["end"])) for r in ranges]


def reference_of(turn: dict[str, Any] | None) -> list[Range] | None:
    """What "that" means after `turn` (a history turn): its cited range when its answer had citations,
    else the ranges it looked at; None when it had neither (the whole stream)."""
    if not turn:
        return None
    cited = turn.get("cited")
    if cited:
        return [(float(cited[0]), float(cited[1]))]
    ranges = turn.get("ranges") or []
    return [(float(a), float(b)) for a, b in ranges] or None


def cited_range(citations: Sequence[dict[str, Any]]) -> list[float] | None:
    """From the first to the last time an answer cites, or None without citations."""
    if not citations:
        return None
    return [min(float(c["start"]) for c in citations), max(float(c["end"]) for c in citations)]


def retrieve_in_ranges(
    retrieve: Callable[[tuple[float, float] | None, int], list[dict[str, Any]]],
    ranges: Sequence[Range] | None,
    k: int,
) -> list[dict[str, Any]]:
    """Candidates from each range: `retrieve(range, k_each)` per range (k split evenly, at least 1
    each), merged: the ranked hits best first, then the temporal neighbours (score 0), no duplicates."""
    if not ranges or len(ranges) == 1:
        return retrieve(tuple(ranges[0]) if ranges else None, k)  # type: ignore[arg-type]
    each = max(1, -(-k // len(ranges)))
    got = [h for r in ranges for h in retrieve((float(r[0]), float(r[1])), each)]
    # Temporal neighbours carry score 0 (MemoryBackend.retrieve); similarities may be negative.
    ranked = sorted((h for h in got if h["score"] != 0.0), key=lambda h: -h["score"])
    rest = [h for h in got if h["score"] == 0.0]
    seen: set[int] = set()
    out = []
    for h in [*ranked, *rest]:
        if h["index"] not in seen:
            seen.add(h["index"])
            out.append(h)
    return out


# ----- standalone question -------------------------------------------------------------------------------

_FILLER_RE = _rx(r"^\W*(?:(?:and|but|so|ok|okay|well|also|then|now)\b\W*|(?:what|how)\s+about\b\W*)+")
# A follow-up made of these words and time words only asks the previous question at another time.
_FILLER_WORDS = frozenset(
    re.findall(
        r"\w+",
        "what and but so ok okay well also then now about happened happens happen did does do anything something "
        "else going on that the in how",
    )
)


def _without(text: str, spans: Sequence[tuple[int, int]]) -> str:
    for a, b in sorted(spans, reverse=True):
        text = text[:a] + text[b:]
    text = re.sub(r"\s+([?.!,;])", r"\1", " ".join(text.split()))
    return re.sub(r"^[\s,;]+|[\s,;]+(?=[?.!]?$)", "", text)


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    text = text[:1].upper() + text[1:]
    return text if not text or text[-1] in ".?!" else text + "?"


def standalone_for(
    question: str,
    reading: ScopeReading,
    previous: str,
    clock: StreamClock,
    describe: Callable[[tuple[int, int], Range], str] | None = None,
) -> str:
    """The standalone question of a follow-up that moved in time (`reading.relative`): its relative
    words replaced by clock times, with the previous question's first sentence when it cannot stand
    alone ("What happens after 1:00?", "Who entered the shop? What did he buy after 1:00?").
    `describe(span, range)`: the words for each moved phrase (default `span_text` on `clock`; across
    streams each stream's own times, tempo.agent.stream_scopes)."""
    d = float(clock.duration)
    words = describe or (lambda _span, rng: span_text([rng], d))
    replaced = question
    for (a, b), rng in sorted(reading.moved, reverse=True):
        replaced = replaced[:a] + words((a, b), rng) + replaced[b:]
    phrase = " and ".join(words(span, rng) for span, rng in reading.moved)
    core = _FILLER_RE.sub("", _without(question, reading.spans))
    head = (re.findall(r"[^.?!]+[.?!]*", " ".join(previous.split())) or [""])[0].strip()
    head_spans = [s.span for s in absolute_scopes(head, clock)] if head else []
    if all(w in _FILLER_WORDS for w in re.findall(r"[^\W_]+", core.lower())):
        # Only time words ("and after that?"): the previous question at the new time.
        if head and head_spans:
            bare = _without(head, head_spans).rstrip("?.! ")
            return _sentence(f"{bare} {phrase}")
        return " ".join(x for x in (_sentence(head) if head else "", f"What happens {phrase}?") if x)
    follow_up = _sentence(_FILLER_RE.sub("", replaced).strip() or replaced)
    if head and needs_context(_without(question, reading.spans) or question):
        bare = _without(head, head_spans) if head_spans else head
        return f"{_sentence(bare)} {follow_up}"
    return follow_up
