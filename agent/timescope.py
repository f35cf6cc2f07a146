"""Time and stream scopes of a question: the words that say when (and on which camera) to look.

**Time scope.** `extract_time_scope(question, clock)` turns the time words of a question into an
interval [start, end) of stream seconds (0 = the stream's first frame), clipped to what the stream
covers, [0, clock.duration]. Rules, tried in this order (the first that matches wins):

1. "between A and B", "from A to/until B" (also "A-B" and "A to B" for colon times): A and B are
   time points (below). "between 5 and 10 minutes" takes the unit of B for A.
2. "in the last/past/final N <unit>" -> [D - N, D]; "the last hour" (no number) means one unit.
   "in the first N <unit>" -> [0, N].
3. "after/since/later than A" -> [A, D]; "before/until/by/earlier than A" -> [0, A].
4. "at/around/about A", "A into the video", "the N minute mark" -> [A - 30 s, A + 30 s];
   "N <unit> ago" is the point D - N.
5. "at the start/beginning", "in the beginning", "early on" -> the first EDGE seconds;
   "at/near/towards the end", "at the last moment", "recently", "lately", "just now" -> the last
   EDGE; "in the middle" -> the EDGE around D/2. EDGE = 10 % of the duration, at least 30 s, at most 15 minutes.

A time point is a duration offset ("5 minutes", "90 s": that far into the video), a colon time, or
an explicit clock time ("10am", "3:15 pm", "10 o'clock"). **The colon rule:** a colon time such as
"10:00" or "1:30" is read as a wall-clock time (H:MM, H:MM:SS) when the stream has a wall-clock
origin (a live source) and that reading lands inside what the stream covers; otherwise it is read
as an offset into the video (M:SS for two parts, H:MM:SS for three). So "between 1:30 and 2:00" on a
recording means 90 s to 120 s; "between 10:00 and 10:30" on a camera started at 09:55 means 300 s to
2100 s. A clock time maps to its latest occurrence at or before the stream's "now"
(origin + duration); a range's end maps to the first occurrence after its start (crossing midnight
works). An explicit am/pm or "o'clock" is always a clock time and needs the origin.
Scopes that fall entirely outside the stream yield None (no usable scope): the caller searches the
whole stream and can say so. Relative days ("yesterday", "this morning") are not understood.

**Stream scope.** `extract_stream_scope(question, streams)` finds a stream the question names as a
stream ("on the garage camera"); a bare word ("in the lobby") does not count.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from tempo.engine.timeexpr import CLOCK, COLON, DURATION, LONG_UNITS, parse_clock, parse_colon, parse_duration

POINT_HALF_WIDTH_S = 30.0  # "at 5 minutes" looks at [4:30, 5:30]
EDGE_FRACTION = 0.1  # "at the start" = the first 10 % of the stream...
EDGE_MIN_S = 30.0  # ...but at least 30 s...
EDGE_MAX_S = 900.0  # ...and at most 15 minutes


@dataclass(frozen=True)
class StreamClock:
    """What a question's time words are resolved against.

    duration: seconds of stream covered so far (for a live stream, its "now").
    origin: Unix seconds of stream time 0 (the wall-clock time of the first frame), None for files.
    tz: timezone clock times are read in; None means this machine's local timezone.
    """

    duration: float
    origin: float | None = None
    tz: dt.tzinfo | None = None


@dataclass(frozen=True)
class TimeScope:
    start: float  # stream seconds
    end: float  # stream seconds
    phrase: str  # the words of the question it came from
    # Where the phrase is in the question ([from, to) characters), and which rule read it: "range",
    # "first", "last", "after", "before", "point", "edge" (tempo.agent.scopes combines several).
    span: tuple[int, int] = (0, 0)
    kind: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "phrase": self.phrase}


# ----- time points -----------------------------------------------------------------------------------

_POINT = rf"(?:{CLOCK}|{COLON}|{DURATION})"
_BARE_NUMBER = r"\d+(?:\.\d+)?"


@dataclass(frozen=True)
class _Point:
    """One time point with its possible readings (seconds): into the video, and as a time of day."""

    offset: float | None
    time_of_day: float | None


def _point(text: str) -> _Point | None:
    text = text.strip()
    if re.fullmatch(CLOCK, text, re.IGNORECASE):
        parsed = parse_clock(text)
        return _Point(None, parsed.seconds) if parsed else None
    if re.fullmatch(COLON, text):
        offset, time_of_day = parse_colon(text)
        return _Point(offset, time_of_day)
    seconds = parse_duration(text)
    return _Point(seconds, None) if seconds is not None else None


# "a second car", "a minute detail", "one second thought": an article and a singular unit followed by
# a noun is an ordinal or an adjective, not a time. After such a phrase only these words may follow.
_ARTICLE_UNIT_RE = re.compile(r"\b(?:a|an|one)\s+(?:second|minute|hour)\s*$", re.IGNORECASE)
_AFTER_ARTICLE_UNIT = frozenset(
    re.findall(
        r"\w+",
        "mark into in ago later earlier after before and or of the a an to from until till since then there when "
        "what who did does do is was were are has had he she it they someone somebody something we i you or so "
        "before after passed went had later long",
    )
)


def not_a_time(question: str, phrase_end: int, phrase: str) -> bool:
    """Whether a duration phrase ending at `phrase_end` is an ordinal or adjective ("a second car",
    "after a minute detail"), judged by the word that follows it."""
    if not _ARTICLE_UNIT_RE.search(phrase):
        return False
    following = re.match(r"\s*([^\W\d_]+)", question[phrase_end:])
    return following is not None and following.group(1).lower() not in _AFTER_ARTICLE_UNIT


def point_scope(text: str, clock: StreamClock, span: tuple[int, int]) -> TimeScope | None:
    """A bare time point (a colon or clock time) as the interval around it, or None."""
    a = _point(text)
    w = POINT_HALF_WIDTH_S
    found = _resolve([a], clock, lambda s: (s[0] - w, s[0] + w)) if a is not None else None
    return TimeScope(found[0], found[1], text, span, "point") if found else None


def _wall_to_stream(points: Sequence[_Point], clock: StreamClock) -> list[float] | None:
    """Times of day -> stream seconds: the first point's latest occurrence at or before the stream's
    now, each next point's first occurrence at or after the previous one."""
    if clock.origin is None or any(p.time_of_day is None for p in points):
        return None
    tz = clock.tz or dt.datetime.now().astimezone().tzinfo
    now = dt.datetime.fromtimestamp(clock.origin + clock.duration, tz=tz)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first = midnight + dt.timedelta(seconds=points[0].time_of_day)  # type: ignore[arg-type]
    if first > now:
        first -= dt.timedelta(days=1)
    result = [first.timestamp() - clock.origin]
    previous = first
    for p in points[1:]:
        moment = previous.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(
            seconds=p.time_of_day  # type: ignore[arg-type]
        )
        if moment < previous:
            moment += dt.timedelta(days=1)
        result.append(moment.timestamp() - clock.origin)
        previous = moment
    return result


def _resolve(
    points: Sequence[_Point], clock: StreamClock, build: Callable[[list[float]], tuple[float, float]]
) -> tuple[float, float] | None:
    """The first reading (wall clock, then offset) whose interval overlaps the stream, clipped to it."""
    readings: list[list[float]] = []
    wall = _wall_to_stream(points, clock)
    if wall is not None:
        readings.append(wall)
    if all(p.offset is not None for p in points):
        readings.append([p.offset for p in points])  # type: ignore[misc]
    for seconds in readings:
        start, end = build(seconds)
        start, end = max(0.0, start), min(clock.duration, end)
        if end > start:
            return start, end
    return None


# ----- rules -------------------------------------------------------------------------------------------

_RANGE_RE = re.compile(
    rf"\b(?:between|from)\s+(?:the\s+)?(?P<a>{_POINT}|{_BARE_NUMBER})\s+(?:and|to|until|till)\s+(?P<b>{_POINT})"
    rf"|(?P<a2>{COLON})\s*(?:-|–|to)\s*(?P<b2>{COLON})",
    re.IGNORECASE,
)
_UNIT_WORD = r"hours?|minutes?|mins?|seconds?|secs?"
_LAST_RE = re.compile(
    rf"\b(?:in|during|over|within|for)?\s*(?:the\s+)?(?P<which>last|past|final|previous|first)\s+"
    rf"(?:(?P<dur>{DURATION})|(?P<unit>{_UNIT_WORD}))(?![a-z])",
    re.IGNORECASE,
)
_AFTER_RE = re.compile(
    rf"\b(?P<rel>after|since|before|until|till|by|later\s+than|earlier\s+than)\s+(?:the\s+)?(?P<a>{_POINT})"
    rf"(?:\s+(?:mark|into\s+the\s+(?:video|stream|recording)|in))?",
    re.IGNORECASE,
)
_AT_RE = re.compile(
    rf"\b(?:at|around|about|near)\s+(?:the\s+)?(?:(?P<minute>minute)\s+(?P<n>{_BARE_NUMBER})"
    rf"|(?P<a>{_POINT})(?:\s+mark)?)"
    # "3 minutes into the video", "3 minutes in," but not "5 seconds in the kitchen".
    rf"|(?P<b>{DURATION})\s+(?:into\b(?:\s+the\s+(?:video|stream|recording))?|in\b(?=\s*(?:[,.?!;]|$)))"
    rf"|(?P<ago>{DURATION})\s+ago\b"
    rf"|\bthe\s+(?P<c>{_BARE_NUMBER})[\s-](?P<cu>minute|second|hour)\s+mark",
    re.IGNORECASE,
)
_START_RE = re.compile(
    r"\b(?:at|near|in|from)\s+the\s+(?:very\s+)?(?:start|beginning)\b|\bearly\s+on\b|\bat\s+first\b",
    re.IGNORECASE,
)
_END_RE = re.compile(
    r"\b(?:at|near|towards?|by|around)\s+the\s+(?:very\s+)?end\b|\bat\s+the\s+last\s+moment\b"
    r"|\b(?:(?:most\s+)?recently|lately|just\s+now)\b",
    re.IGNORECASE,
)
_MIDDLE_RE = re.compile(r"\b(?:in|around)\s+the\s+middle\b|\bhalfway\s+through\b", re.IGNORECASE)


def _edge(duration: float) -> float:
    return min(duration, max(EDGE_MIN_S, min(EDGE_MAX_S, EDGE_FRACTION * duration)))


def _scope_range(question: str, clock: StreamClock) -> Iterator[TimeScope]:
    for m in _RANGE_RE.finditer(question):
        a_text, b_text = (m.group("a"), m.group("b")) if m.group("a") else (m.group("a2"), m.group("b2"))
        b = _point(b_text)
        if b is None:
            continue
        if re.fullmatch(_BARE_NUMBER, a_text):
            # "between 5 and 10 minutes": A takes B's unit.
            unit = re.search(rf"(?:{'|'.join(LONG_UNITS)}|[hs])\s*$", b_text.lower())
            if unit is None or b.offset is None:
                continue
            a = _point(f"{a_text} {unit.group(0).strip()}")
        else:
            a = _point(a_text)
        if a is None:
            continue
        span = _resolve([a, b], clock, lambda s: (s[0], s[1]))
        if span:
            yield TimeScope(span[0], span[1], m.group(0), m.span(), "range")


def _scope_last_first(question: str, clock: StreamClock) -> Iterator[TimeScope]:
    for m in _LAST_RE.finditer(question):
        seconds = parse_duration(m.group("dur") or f"1 {m.group('unit')}")
        if not seconds:
            continue
        d = clock.duration
        if m.group("which").lower() == "first":
            start, end = 0.0, min(d, seconds)
        else:
            start, end = max(0.0, d - seconds), d
        if end > start:
            lead = len(m.group(0)) - len(m.group(0).lstrip())
            kind = "first" if m.group("which").lower() == "first" else "last"
            yield TimeScope(start, end, m.group(0).strip(), (m.start() + lead, m.end()), kind)


def _scope_after_before(question: str, clock: StreamClock) -> Iterator[TimeScope]:
    d = clock.duration
    for m in _AFTER_RE.finditer(question):
        a = _point(m.group("a"))
        if a is None or not_a_time(question, m.end("a"), m.group("a")):
            continue
        after = m.group("rel").lower().split()[0] in ("after", "since", "later")
        span = _resolve([a], clock, (lambda s: (s[0], d)) if after else (lambda s: (0.0, s[0])))
        if span:
            yield TimeScope(span[0], span[1], m.group(0), m.span(), "after" if after else "before")


def _scope_at(question: str, clock: StreamClock) -> Iterator[TimeScope]:
    w = POINT_HALF_WIDTH_S
    for m in _AT_RE.finditer(question):
        if m.group("minute"):
            a: _Point | None = _Point(float(m.group("n")) * 60, None)
        elif m.group("a"):
            a = _point(m.group("a"))
        elif m.group("b"):
            a = _point(m.group("b"))
        elif m.group("ago"):
            back = parse_duration(m.group("ago"))
            a = _Point(clock.duration - back, None) if back is not None else None
        else:
            a = _point(f"{m.group('c')} {m.group('cu')}")
        if a is None or (m.group("a") and not_a_time(question, m.end("a"), m.group("a"))):
            continue
        span = _resolve([a], clock, lambda s: (s[0] - w, s[0] + w))
        if span:
            yield TimeScope(span[0], span[1], m.group(0), m.span(), "point")


def _scope_edges(question: str, clock: StreamClock) -> Iterator[TimeScope]:
    d = clock.duration
    if d <= 0:
        return
    edge = _edge(d)
    for m in _START_RE.finditer(question):
        yield TimeScope(0.0, edge, m.group(0), m.span(), "edge")
    for m in _END_RE.finditer(question):
        yield TimeScope(d - edge, d, m.group(0), m.span(), "edge")
    for m in _MIDDLE_RE.finditer(question):
        yield TimeScope(max(0.0, d / 2 - edge / 2), min(d, d / 2 + edge / 2), m.group(0), m.span(), "edge")


RULES: tuple[Callable[[str, StreamClock], Iterator[TimeScope]], ...] = (
    _scope_range, _scope_last_first, _scope_after_before, _scope_at, _scope_edges,
)  # fmt: skip


def extract_time_scope(question: str, clock: StreamClock) -> TimeScope | None:
    """The time scope a question asks about, in stream seconds, or None (see the module docstring)."""
    if clock.duration <= 0:
        return None
    clock = replace(clock, duration=float(clock.duration))
    for rule in RULES:
        scope = next(rule(question, clock), None)
        if scope is not None:
            return scope
    return None


# ----- stream scope --------------------------------------------------------------------------------------

_STREAM_NOUNS = r"(?:camera|cam|stream|feed|video|recording)"


def extract_stream_scope(question: str, streams: Sequence[str]) -> str | None:
    """The stream a question names explicitly, among `streams`, or None.

    Only a name used as a stream counts: "on the garage camera", "in the lobby feed", "stream
    garage-1", "camera 'lobby'". A bare word ("who was in the lobby?") does not switch streams. In
    names, '-', '_' and '.' match a space too ("front_door" <- "front door camera"). The longest
    matching name wins.
    """
    found: list[str] = []
    for name in streams:
        words = [re.escape(w) for w in re.split(r"[-_.\s]+", name) if w]
        if not words:
            continue
        spelled = r"[-_.\s]+".join(words)
        quoted = rf"['\"“”‘’]?{spelled}['\"“”‘’]?"
        pattern = (
            rf"\b{quoted}\s+{_STREAM_NOUNS}s?\b"
            rf"|\b{_STREAM_NOUNS}\s+(?:called\s+|named\s+)?{quoted}(?![\w-])"
        )
        if re.search(pattern, question, re.IGNORECASE):
            found.append(name)
    return max(found, key=len) if found else None
