"""Time words of a cross-stream question, read on each stream's own clock.

Streams asked together rarely share a clock: cam1 may hold 10 minutes and cam2 2 minutes, each from
its own time 0. So a cross-stream question's time words are read once per stream
(`tempo.agent.scopes.read_scope` on that stream's `StreamClock`):

- absolute times ("at 0:42", "the first minute", "between 1:00 and 2:00") are the same numbers on
  every stream; a stream that ends before the asked time has nothing there and **contributes
  nothing** (its entry has no range and a note saying why — never an error);
- words relative to a stream's end ("the last minute", "recently", "at the end", "5 minutes ago")
  and wall-clock times of live streams resolve on each stream's own clock;
- follow-ups relative to the previous turn ("after that") resolve per stream against that stream's
  cited range when the previous answer cited it, else against that stream's scope in the previous
  turn; a stream with neither keeps its whole timeline (as one stream does without a reference).

The turn's `TimeScope` keeps its one-stream keys (start/end/phrase/ranges: the envelope and union of
every stream's ranges) and adds `streams`: {stream: {start, end, phrase, ranges, note}}, what each
stream was searched in. Retrieval takes each stream's ranges (`stream_ranges`, `retrieve_across`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tempo.agent.rewrite import HistoryTurn, needs_context
from tempo.agent.scopes import Range, ScopeReading, cited_range, read_scope, scope_dict, span_text, standalone_for
from tempo.agent.timescope import StreamClock
from tempo.engine.timeexpr import format_clock

StreamRanges = dict[str, list[Range]]  # per stream: its ranges; [] = nothing of the stream is in scope


def stream_reference(previous: HistoryTurn | dict[str, Any] | None, stream: str) -> list[Range] | None:
    """What "that" means on `stream` after the `previous` turn: that stream's cited range when the
    answer cited it, else the stream's ranges in that turn (the turn's ranges when it kept none per
    stream); None when it had neither (then relative words give that stream no scope)."""
    if not previous:
        return None
    cited = (previous.get("stream_cited") or {}).get(stream)
    if cited:
        return [(float(cited[0]), float(cited[1]))]
    per_stream = previous.get("stream_ranges")
    ranges = per_stream.get(stream) if per_stream is not None else previous.get("ranges")
    return [(float(a), float(b)) for a, b in ranges or []] or None


def _reread(previous: HistoryTurn | dict[str, Any], clock: StreamClock) -> list[list[float]]:
    """The ranges of the previous turn's standalone question read on `clock` ([] for none): what that
    turn would have searched on a stream it did not ask about."""
    found = read_scope(str(previous.get("standalone_question") or ""), clock)
    return [[a, b] for a, b in found.ranges] if found is not None else []


def turn_on_stream(
    previous: HistoryTurn | None, stream: str, clock: StreamClock
) -> HistoryTurn | dict[str, Any] | None:
    """The previous turn as one stream's follow-up sees it (a thread moving from several streams to
    `stream`): that stream's own cited range and ranges instead of the union over the streams; a stream
    the turn did not ask about gets the turn's time words re-read on its clock. A turn without
    per-stream values is returned as it is."""
    if not previous:
        return previous
    per, cited = previous.get("stream_ranges"), previous.get("stream_cited")
    if per is None and cited is None:
        return previous
    view: dict[str, Any] = {**previous, "cited": (cited or {}).get(stream)}
    if per is not None:
        view["ranges"] = per[stream] if stream in per else _reread(previous, clock)
    return view


def cited_per_stream(citations: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
    """{stream: [first, last] cited second} over an answer's citations that name their stream."""
    by_stream: dict[str, list[dict[str, Any]]] = {}
    for c in citations:
        if c.get("stream"):
            by_stream.setdefault(str(c["stream"]), []).append(c)
    return {s: cited_range(cs) for s, cs in by_stream.items()}  # type: ignore[misc]


def _only_relative(reading: ScopeReading) -> bool:
    moved = {span for span, _ in reading.moved}
    return all(span in moved for span in reading.spans)


@dataclass(frozen=True)
class CrossReading:
    """A cross-stream question's time words read on every stream's clock."""

    question: str
    clocks: dict[str, StreamClock]
    readings: dict[str, ScopeReading | None]
    referenced: frozenset[str]  # streams the previous turn gave a reference ("that") on

    @property
    def relative(self) -> bool:
        """Whether the question moved relative to the previous turn on some stream."""
        return any(r is not None and r.relative for r in self.readings.values())

    def _base(self) -> tuple[str, ScopeReading] | None:
        """The stream whose reading words the standalone question: most moved phrases, then longest."""
        found = [(s, r) for s, r in self.readings.items() if r is not None]
        if not found:
            return None
        return max(found, key=lambda sr: (len(sr[1].moved), self.clocks[sr[0]].duration))

    def standalone(self, previous_standalone: str) -> str:
        """The deterministic standalone question of a follow-up that moved in time: each relative
        phrase becomes each stream's clock times ("after 5:00 on cam1, after 1:40 on cam2"), or one
        time when every stream gives the same."""
        base = self._base()
        assert base is not None and self.relative
        stream, reading = base

        def describe(span: tuple[int, int], _rng: Range) -> str:
            said: dict[str, list[str]] = {}
            for s, r in self.readings.items():
                for sp, rng in r.moved if r is not None else ():
                    if sp == span:
                        said.setdefault(span_text([rng], self.clocks[s].duration), []).append(s)
            if len(said) == 1:
                return next(iter(said))
            return ", ".join(f"{text} on {' and '.join(names)}" for text, names in said.items())

        return standalone_for(self.question, reading, previous_standalone, self.clocks[stream], describe)

    def scope(self) -> dict[str, Any] | None:
        """The turn's `TimeScope` dict with its per-stream map; None when no stream has a scope."""
        base = self._base()
        if base is None:
            return None
        _, reading = base
        per: dict[str, dict[str, Any]] = {}
        phrases = {r.phrase for r in self.readings.values() if r is not None}
        words = "; ".join(self.question[a:b] for a, b in reading.spans)
        for s, r in self.readings.items():
            if r is not None:
                per[s] = {**r.to_dict(), "note": None}
                continue
            d = self.clocks[s].duration
            if _only_relative(reading) and s not in self.referenced:
                note = f"nothing on {s} for {words!r} to refer to: searched all of it"
                per[s] = {**scope_dict([(0.0, d)], "whole stream"), "note": note}
            else:
                note = f"{s} covers 0:00–{format_clock(d)}: none of it is in the asked time; it adds nothing"
                per[s] = {"start": None, "end": None, "phrase": words, "ranges": [], "note": note}
        return _with_streams(per, next(iter(phrases)) if len(phrases) == 1 else f"{words} (on each stream's clock)")


def _with_streams(per: dict[str, dict[str, Any]], phrase: str) -> dict[str, Any]:
    """The one-stream `TimeScope` keys over the union of the streams' ranges, then `streams`."""
    merged: list[list[float]] = []
    for a, b in sorted((r["start"], r["end"]) for e in per.values() for r in e["ranges"]):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return {**scope_dict([(a, b) for a, b in merged], phrase), "streams": per}


def read_across(
    question: str, clocks: Mapping[str, StreamClock], previous: HistoryTurn | None
) -> CrossReading:
    """`question`'s time words on each stream's clock, relative words against each stream's reference
    from the `previous` turn."""
    readings: dict[str, ScopeReading | None] = {}
    referenced: set[str] = set()
    for s, clock in clocks.items():
        reference = stream_reference(previous, s)
        if reference:
            referenced.add(s)
        readings[s] = read_scope(question, clock, reference)
    return CrossReading(question, dict(clocks), readings, frozenset(referenced))


def cross_turn_scope(
    question: str, standalone: str, reading: CrossReading, previous: HistoryTurn | None
) -> dict[str, Any] | None:
    """A cross-stream turn's scope without an explicit range (as `scopes.turn_scope` for one stream):
    the question's own time words per stream, else for a follow-up each stream's ranges in the
    previous turn, else the time words of the standalone form; None: every stream whole."""
    if (scope := reading.scope()) is not None:
        return scope
    if previous and needs_context(question) and previous.get("ranges"):
        per_stream = previous.get("stream_ranges")
        if per_stream is None:  # a turn that kept one scope for all its streams
            return scope_dict([(float(a), float(b)) for a, b in previous["ranges"]], "previous turn")
        per: dict[str, dict[str, Any]] = {}
        for s, clock in reading.clocks.items():
            # A stream the previous turn did not ask about: its time words on this stream's clock.
            own = per_stream[s] if s in per_stream else _reread(previous, clock)
            ranges = [(float(a), float(b)) for a, b in own or []]
            note = None if ranges else f"{s} had no part in the previous turn's time; it adds nothing"
            got = scope_dict(ranges, "previous turn") if ranges else {"start": None, "end": None, "ranges": []}
            per[s] = {**got, "phrase": "previous turn", "note": note}
        if any(e["ranges"] for e in per.values()):
            return _with_streams(per, "previous turn")
        return None
    if standalone != question:
        return read_across(standalone, reading.clocks, None).scope()
    return None


def stream_ranges(scope: Mapping[str, Any] | None, streams: Sequence[str]) -> StreamRanges | None:
    """Each stream's ranges to search in: its own from the scope's `streams` map, else the scope's
    ranges for every stream; None without a scope (every stream whole)."""
    if not scope:
        return None
    ranges = scope.get("ranges") or [{"start": scope["start"], "end": scope["end"]}]
    shared = [(float(r["start"]), float(r["end"])) for r in ranges]
    per = scope.get("streams") or {}
    out: StreamRanges = {}
    for s in streams:
        entry = per.get(s)
        out[s] = shared if entry is None else [(float(r["start"]), float(r["end"])) for r in entry["ranges"]]
    return out


def asked_per_stream(scope: Mapping[str, Any] | None) -> dict[str, list[list[float]]] | None:
    """What a turn asked about on each stream (kept in the thread for the next turn's "that"); None
    when the scope was one for every stream."""
    if not scope or not scope.get("streams"):
        return None
    return {s: [[r["start"], r["end"]] for r in e["ranges"]] for s, e in scope["streams"].items()}


def retrieve_across(
    retrieve: Callable[[dict[str, Range | None], int], list[dict[str, Any]]],
    ranges: StreamRanges | None,
    streams: Sequence[str],
    k: int,
) -> list[dict[str, Any]]:
    """Candidates over the streams, each within its own ranges: `retrieve({stream: range or None}, k)`
    over the streams with something in scope (a stream with no range adds nothing). With several
    ranges on a stream, k is split over the range slots as `scopes.retrieve_in_ranges` does for one
    stream (slot j: each stream's j-th range); merged: ranked hits best first, then temporal
    neighbours (score 0), no (stream, index) twice."""
    if ranges is None:
        return retrieve({s: None for s in streams}, k)
    chosen = {s: ranges[s] for s in streams if ranges.get(s)}
    if not chosen:
        return []
    slots = max(len(r) for r in chosen.values())
    if slots == 1:
        return retrieve({s: r[0] for s, r in chosen.items()}, k)
    each = max(1, -(-k // slots))
    got = [h for j in range(slots) for h in retrieve({s: r[j] for s, r in chosen.items() if len(r) > j}, each)]
    ranked = sorted((h for h in got if h["score"] != 0.0), key=lambda h: -h["score"])
    seen: set[tuple[str, int]] = set()
    out = []
    for h in [*ranked, *(h for h in got if h["score"] == 0.0)]:
        if (h["stream"], h["index"]) not in seen:
            seen.add((h["stream"], h["index"]))
            out.append(h)
    return out
