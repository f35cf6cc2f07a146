"""Answering across streams: one question over several memory streams ("which camera saw the red truck?").

The same steps as one stream (tempo.engine.recall), over the union of the chosen streams:

1. the query is embedded once; FAISS gives the top-K over all chosen streams together (`SegmentIndex.search`
   with `streams=`), so the best segments win wherever they are; temporal neighbours are added per stream;
   each stream may have its own time range (`time_ranges`: the question's time words read on each
   stream's own clock, tempo.agent.stream_scopes);
2. the query-aware pass runs on the candidates, grouped per stream (each stream's own frames and cache);
3. ATA runs over the union of the streams' timelines under ONE visual budget: candidates by relevance,
   every other segment an anchor, anchors thinned together so the whole answer fits the budget;
4. the prompt holds each stream's segments together, in time order, each behind a tag naming its stream
   and time, `<cam2 42.0 seconds>`, so the answer can say "cam2 at 0:42" and be cited (tempo.engine.multi_cite);
   the anchors of every stream are read in one round trip.

The streams' headers are read once per question: one `CrossStreamRecall` per question keeps them (or is
given them, already read) for every step.

Segments of different streams are told apart by a composite key, `position << KEY_SHIFT | index`
(position: the stream's place in the sorted stream set), so the single-stream ATA code
(`plan_allocation`) runs unchanged over the union; its power-of-two anchor grid stays each stream's own
grid because the shift is far above any stride. One chosen stream is the single-stream path exactly.

In the open-weights family (tempo.engine.open_recall) step 3 also prices the union plan in renditions
(one budget over all streams' segments), and step 4 gives the answerer each kept segment's frames with
Qwen3-VL timestamps naming the stream, `<cam2 42.0 seconds>` per temporal patch. Streams written by
different families are refused in one sentence. With `text_tokens`, the words (cues) of kept segments
across the streams enter the prompt after their tags, their tokens reserved from the budget before ATA,
as for one stream (tempo.engine.text_track).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tempo.engine.errors import MixedFamiliesError, MixedStreamsError
from tempo.engine.open_recall import (
    check_stream_family,
    ladders,
    plan_clips,
    price_renditions,
    records_of,
)
from tempo.engine.recall import AllocationPlan, Compression, RecallPipeline, assemble, plan_allocation
from tempo.engine.result import TEMPO_FAMILY, SegmentHit, TimelineRow, family_of, timeline_rows
from tempo.engine.text_track import cues_key, plan_with_cues, segment_words, text_reserve, token_counter
from tempo.engine.union_thin import KEY_SHIFT, thinned_union
from tempo.memory.anchors import AnchorCache
from tempo.memory.index import SearchHit, SegmentIndex, Timeline
from tempo.memory.records import SegmentRecord
from tempo.memory.store import RedisMemoryStore
from tempo.memory.store_types import StreamInfo
from tempo.memory.text_index import read_cues
from tempo.models.text import time_tag
from tempo.settings import AskSettings
from tempo.streaming.subtitles import Cue

_INDEX_MASK = (1 << KEY_SHIFT) - 1

__all__ = [
    "KEY_SHIFT",
    "CrossStreamRecall",
    "MixedFamiliesError",
    "MixedStreamsError",
    "MultiRetrieval",
    "composite",
    "retrieve_streams",
    "split_key",
    "split_plan",
    "stream_hits",
    "stream_infos",
    "stream_rows",
    "stream_tag",
    "union_cues",
    "union_plan",
    "union_records",
    "union_timeline",
]


def stream_infos(store: RedisMemoryStore, streams: Sequence[str]) -> dict[str, StreamInfo]:
    """The streams' headers in one round trip whatever their number (UnknownStreamError for a missing one)."""
    return store.stream_infos(streams)


def composite(position: int, index: int) -> int:
    """The union's key of segment `index` of the stream at `position` in the stream set."""
    return (int(position) << KEY_SHIFT) | int(index)


def split_key(key: int) -> tuple[int, int]:
    """(stream position, segment index) of a composite key."""
    return int(key) >> KEY_SHIFT, int(key) & _INDEX_MASK


def stream_tag(stream: str, seconds: float) -> str:
    """The anchor placed before a segment's tokens in a cross-stream prompt: its stream and centre time."""
    return time_tag(seconds, stream)


@dataclass(frozen=True)
class MultiRetrieval:
    """Per chosen stream its timeline in scope and candidates; the FAISS hits over all of them."""

    streams: tuple[str, ...]  # the stream set, in key order
    timelines: dict[str, Timeline]  # each stream's indexed segments in scope
    hits: list[SearchHit]  # FAISS top-K over all chosen streams, best first
    candidates: dict[str, np.ndarray]  # per stream: sorted segment indices (hits + temporal neighbours)


TimeRange = tuple[float, float]


def retrieve_streams(
    index: SegmentIndex,
    streams: Sequence[str],
    query: np.ndarray,
    *,
    top_k: int,
    neighbours: int = 1,
    time_range: TimeRange | None = None,
    time_ranges: Mapping[str, TimeRange | None] | None = None,
) -> MultiRetrieval:
    """FAISS top-K over all `streams` together for an embedded query (E,), grouped per stream, plus
    `neighbours` on each side of each hit within its stream. With no more than `top_k` segments in
    scope over all streams every one is a candidate.

    `time_range` scopes every stream; `time_ranges` gives a stream its own range instead (each stream's
    time words read on its own clock, tempo.agent.stream_scopes; None there: that whole stream)."""
    names = tuple(streams)
    ranges = {s: time_ranges[s] if time_ranges is not None and s in time_ranges else time_range for s in names}
    timelines = {s: index.timeline(s, ranges[s]) for s in names}
    total = sum(len(t.indices) for t in timelines.values())
    if total <= top_k:
        hits = _search_ranges(index, query, max(total, 1), ranges)
        return MultiRetrieval(names, timelines, hits, {s: t.indices.copy() for s, t in timelines.items()})
    hits = _search_ranges(index, query, top_k, ranges)
    by_stream: dict[str, list[int]] = {}
    for h in hits:
        by_stream.setdefault(h.stream, []).append(h.index)
    candidates: dict[str, np.ndarray] = {}
    offsets = np.arange(-neighbours, neighbours + 1)
    for s, found in by_stream.items():
        t = timelines[s]
        rows = np.searchsorted(t.indices, found)
        near = (rows[:, None] + offsets[None, :]).reshape(-1)
        near = np.unique(near[(near >= 0) & (near < len(t.indices))])
        candidates[s] = t.indices[near]
    return MultiRetrieval(names, timelines, hits, candidates)


def _search_ranges(
    index: SegmentIndex, query: np.ndarray, k: int, ranges: Mapping[str, TimeRange | None]
) -> list[SearchHit]:
    """Top k over the streams of `ranges`, each within its own range: one search per distinct range
    (one in all when every stream shares it), merged best first as `SegmentIndex.search` orders them."""
    groups: dict[TimeRange | None, list[str]] = {}
    for s, r in ranges.items():
        groups.setdefault(None if r is None else (float(r[0]), float(r[1])), []).append(s)
    if len(groups) == 1:
        (r, names), = groups.items()
        return index.search(query, k, streams=names, time_range=r)
    hits = [h for r, names in groups.items() for h in index.search(query, k, streams=names, time_range=r)]
    hits.sort(key=lambda h: (-h.score, h.stream, h.index))
    return hits[:k]


def stream_hits(got: MultiRetrieval) -> list[SegmentHit]:
    """The candidates as the agent reports them: FAISS hits best first (each with its stream), then the
    temporal neighbours with score 0, per stream in time order; no duplicates."""
    out: list[SegmentHit] = []
    seen: set[tuple[str, int]] = set()
    for h in got.hits:
        if (h.stream, h.index) not in seen:
            seen.add((h.stream, h.index))
            out.append(SegmentHit(index=int(h.index), start=float(h.start), end=float(h.end), score=float(h.score),
                                  stream=h.stream))  # fmt: skip
    for s in got.streams:
        t = got.timelines[s]
        found = got.candidates.get(s)
        if found is None or not len(found):
            continue
        rows = np.searchsorted(t.indices, found)
        for i, r in zip(found.tolist(), rows.tolist(), strict=True):
            if (s, i) not in seen:
                seen.add((s, i))
                start, end = float(t.starts[r]), float(t.ends[r])
                out.append(SegmentHit(index=int(i), start=start, end=end, score=0.0, stream=s))
    return out


def union_timeline(streams: Sequence[str], timelines: dict[str, Timeline]) -> Timeline:
    """The streams' timelines end to end under composite keys (sorted: stream by stream, time order)."""
    keys = [np.asarray(timelines[s].indices, np.int64) | (np.int64(p) << KEY_SHIFT) for p, s in enumerate(streams)]
    starts = [timelines[s].starts for s in streams]
    ends = [timelines[s].ends for s in streams]
    if not keys:
        empty = np.zeros(0, np.int64)
        return Timeline("", empty, np.zeros(0), np.zeros(0))
    return Timeline("", np.concatenate(keys), np.concatenate(starts), np.concatenate(ends))


def union_plan(
    streams: Sequence[str],
    timelines: dict[str, Timeline],
    compression: Compression,
    *,
    tokens_per_segment: int,
    budget: int,
    min_tokens: int,
    stored_tokens: int,
) -> AllocationPlan:
    """ATA over the union of the streams' whole timelines under one budget (`compression` keyed by
    composite keys): the single-stream `plan_allocation`, run once over all of them (given only the
    rows it keeps: tempo.engine.union_thin)."""
    relevance = compression.relevance
    keys = np.fromiter(relevance, dtype=np.int64, count=len(relevance))
    union, anchors, dropped = thinned_union(streams, timelines, keys, anchor_limit=budget // (2 * max(1, min_tokens)))
    plan = plan_allocation(
        union,
        relevance,
        tokens_per_segment=tokens_per_segment,
        budget=budget,
        min_tokens=min_tokens,
        stored_tokens=stored_tokens,
        max_anchor_segments=anchors,
    )
    return dataclasses.replace(plan, anchors_dropped=plan.anchors_dropped + dropped)


def split_plan(plan: AllocationPlan, streams: Sequence[str]) -> dict[str, AllocationPlan]:
    """The union plan cut back into one plan per stream (real segment indices), in stream order; a
    stream without any planned segment is left out."""
    out: dict[str, AllocationPlan] = {}
    for p, s, rows in _rows_per_stream(plan, streams):
        cues = {split_key(k)[1]: v for k, v in plan.cues.items() if split_key(k)[0] == p}
        out[s] = AllocationPlan(
            indices=plan.indices[rows] & _INDEX_MASK,
            starts=plan.starts[rows],
            ends=plan.ends[rows],
            relevance=plan.relevance[rows],
            counts=plan.counts[rows],
            candidate=plan.candidate[rows],
            renditions=None if plan.renditions is None else tuple(plan.renditions[r] for r in rows),
            cues=cues,
        )
    return out


def _rows_per_stream(plan: AllocationPlan, streams: Sequence[str]) -> Iterator[tuple[int, str, np.ndarray]]:
    """(position, stream, the union plan's rows of that stream) per stream with planned segments."""
    positions = plan.indices >> KEY_SHIFT
    for p, s in enumerate(streams):
        rows = np.flatnonzero(positions == p)
        if len(rows):
            yield p, s, rows


def union_records(store: RedisMemoryStore, infos: dict[str, StreamInfo], plan: AllocationPlan) -> list[SegmentRecord]:
    """The union plan's segment records (sizes and times, no frames), in plan row order."""
    out: list[SegmentRecord | None] = [None] * len(plan.indices)
    for _, s, rows in _rows_per_stream(plan, list(infos)):
        found = records_of(store, infos[s], (plan.indices[rows] & _INDEX_MASK).tolist())
        for row, record in zip(rows.tolist(), found, strict=True):
            out[row] = record
    return out  # type: ignore[return-value]


def union_cues(store: RedisMemoryStore, streams: Sequence[str], plan: AllocationPlan) -> dict[int, list[Cue]]:
    """{composite key: cues in time order} of the union plan's segments (segments without words: no entry)."""
    out: dict[int, list[Cue]] = {}
    for p, s, rows in _rows_per_stream(plan, streams):
        found = read_cues(store, s, (plan.indices[rows] & _INDEX_MASK).tolist())
        out.update({composite(p, i): cues for i, cues in found.items()})
    return out


def stream_rows(plan: AllocationPlan, streams: Sequence[str]) -> list[TimelineRow]:
    """The union plan's rows: stream by stream (in set order), each in time order, each naming its stream."""
    rows: list[TimelineRow] = []
    for s, sub in split_plan(plan, streams).items():
        rows += timeline_rows(sub, s)
    return rows


def split_compression(
    compression: Compression, streams: Sequence[str]
) -> dict[str, dict[int, tuple[float, np.ndarray]]]:
    """Composite-keyed query-aware results -> per stream {segment index: (relevance, tokens)}."""
    out: dict[str, dict[int, tuple[float, np.ndarray]]] = {s: {} for s in streams}
    for key, value in compression.results.items():
        p, i = split_key(key)
        out[streams[p]][i] = value
    return out


def assemble_streams(
    store: RedisMemoryStore,
    infos: dict[str, StreamInfo],
    plan: AllocationPlan,
    compression: Compression,
    *,
    anchors: AnchorCache | None = None,
    texts: list[str] | None = None,
) -> list[tuple[str, torch.Tensor]]:
    """(tag naming stream and centre time, kept tokens (k, D)) per planned segment: stream by stream in
    set order, time order within a stream (each stream's part is `recall.assemble`). `texts`, when
    given, receives each piece's words (the plan's cues, `segment_words`; "" for none)."""
    streams = list(infos)
    per_stream = split_compression(compression, streams)
    parts = split_plan(plan, streams)
    heads = _anchor_heads(store, infos, parts, anchors)
    out: list[tuple[str, torch.Tensor]] = []
    for s, sub in parts.items():
        rows: list[int] = []
        for centre, tokens in assemble(store, infos[s], sub, per_stream[s], rows=rows, anchor_heads=heads.get(s)):
            out.append((stream_tag(s, centre), tokens))
        if texts is not None:
            texts += [segment_words(sub.cues.get(int(sub.indices[r]), ())) for r in rows]
    return out


def _anchor_heads(
    store: RedisMemoryStore,
    infos: dict[str, StreamInfo],
    parts: dict[str, AllocationPlan],
    anchors: AnchorCache | None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every stream's anchors (the first k of their stored tokens, k each stream's largest anchor
    count) read together: one Redis round trip for all streams (through the `anchors` cache when
    given, which reads only what it lacks)."""
    wanted: list[tuple[str, np.ndarray, int]] = []
    for s, sub in parts.items():
        rows = np.flatnonzero(~sub.candidate)
        if len(rows):
            wanted.append((s, sub.indices[rows], int(sub.counts[rows].max())))
    if not wanted:
        return {}
    if anchors is not None:
        got = anchors.get_many([(infos[s], idx, k) for s, idx, k in wanted])
    else:
        got = store.token_heads_many([(s, idx.tolist(), k, infos[s].settings.token_dim) for s, idx, k in wanted])
    return {s: heads for (s, _, _), heads in zip(wanted, got, strict=True)}


class CrossStreamRecall:
    """The steps of answering across streams over one `RecallPipeline` (its model, memory, caches and
    lock): `retrieve` (one embedding, one FAISS search), `compress` (per stream, cached), `plan` (one
    ATA over the union), `answer` (tags naming streams; the answer cache keyed by the stream set)."""

    def __init__(self, recall: RecallPipeline, infos: Mapping[str, StreamInfo] | None = None) -> None:
        self.recall = recall
        # The streams' headers, read once for a question (or given, already read) and reused by every
        # step: one object per question.
        self._infos: dict[str, StreamInfo] = dict(infos or {})

    def infos(self, streams: Sequence[str]) -> dict[str, StreamInfo]:
        """The streams' headers (UnknownStreamError names the known ones), read once per object in one
        round trip; refused in one sentence when their memories were made by different models (their
        tokens cannot share one prompt)."""
        if missing := [s for s in streams if s not in self._infos]:
            self._infos.update(stream_infos(self.recall.store, missing))
        infos = {s: self._infos[s] for s in streams}
        families = {s: i.settings.family for s, i in infos.items()}
        if len(set(families.values())) > 1:
            raise MixedFamiliesError(families)
        kinds = {(i.settings.model_id, i.settings.token_dim) for i in infos.values()}
        if len(kinds) > 1:
            raise MixedStreamsError(sorted(infos))
        for info in infos.values():
            check_stream_family(info, self.recall.model)  # a family reads only its own memory
        return infos

    def retrieve(
        self,
        streams: Sequence[str],
        question: str,
        *,
        top_k: int,
        neighbours: int,
        time_range: TimeRange | None = None,
        time_ranges: Mapping[str, TimeRange | None] | None = None,
    ) -> MultiRetrieval:
        r = self.recall
        r.model.check_question_fits(question)
        self.infos(streams)
        r.index.sync()
        query = r.embedder.embed_text(question)  # once, for every stream
        return retrieve_streams(
            r.index, streams, query, top_k=int(top_k), neighbours=int(neighbours), time_range=time_range,
            time_ranges=time_ranges,
        )

    def compress(self, streams: Sequence[str], question: str, hits: Sequence[SegmentHit]) -> Compression:
        """The query-aware pass on the candidates, stream by stream, merged under composite keys."""
        position = {s: p for p, s in enumerate(streams)}
        infos = self.infos(streams)
        grouped: dict[str, list[int]] = {}
        for h in hits:
            grouped.setdefault(str(h["stream"]), []).append(int(h["index"]))
        results: dict[int, tuple[float, np.ndarray]] = {}
        cache_hits = 0
        for s, indices in grouped.items():
            got = self.recall.compress(infos[s], question, indices)
            results.update({composite(position[s], i): v for i, v in got.results.items()})
            cache_hits += got.cache_hits
        return Compression(results, cache_hits)

    def plan(
        self, streams: Sequence[str], compression: Compression, *, budget: int, min_tokens: int, text_tokens: int = 0
    ) -> AllocationPlan:
        """One ATA over the union, as `RecallPipeline.plan` for one stream: `text_tokens` (at most half the
        budget, when a chosen stream has a text track) reserved for the kept segments' words first; in
        the open-weights family the plan priced in renditions over all streams' segments."""
        r = self.recall
        infos = self.infos(streams)
        settings = [i.settings for i in infos.values()]
        reserve = text_reserve(text_tokens, budget, any(r.keywords.has_text(s) for s in streams))
        plan = union_plan(
            streams,
            {s: r.index.timeline(s) for s in streams},
            compression,
            tokens_per_segment=min(x.tokens_per_segment for x in settings),
            budget=int(budget) - reserve,
            min_tokens=int(min_tokens),
            stored_tokens=min(x.stored_tokens for x in settings),
        )
        if family_of(r.model) != TEMPO_FAMILY:
            with r.lock:
                rungs = ladders(r.model, union_records(r.store, infos, plan))  # type: ignore[arg-type]
                plan = price_renditions(rungs, plan, budget=int(budget) - reserve, min_tokens=int(min_tokens))
        if not reserve:
            return plan
        return plan_with_cues(plan, union_cues(r.store, streams, plan), cap=reserve, count=token_counter(r.model))

    def answer(
        self,
        streams: Sequence[str],
        question: str,
        plan: AllocationPlan,
        compression: Compression,
        *,
        settings: AskSettings,
        on_text: Callable[[str], None] | None = None,
    ) -> tuple[str, bool]:
        """The global LLM's answer over the union plan, and whether it came from the answer cache."""
        r = self.recall
        infos = self.infos(streams)
        numbers = ",".join(f"{s}={i.number}" for s, i in infos.items())  # a re-created stream misses
        parts = [numbers, question, str(settings.max_new_tokens), plan.indices.tobytes(), plan.counts.tobytes(),
                 plan.candidate.tobytes(), cues_key(plan.cues)]  # fmt: skip
        sampling = {"max_new_tokens": settings.max_new_tokens, "temperature": settings.temperature, "on_text": on_text}

        def generate() -> str:
            if plan.renditions is not None:  # open weights: each stream's frames, tags naming the stream
                with r.lock:
                    clips, texts = [], []
                    for s, sub in split_plan(plan, list(infos)).items():
                        c, t = plan_clips(r.model, r.store, infos[s], sub, stream=s)  # type: ignore[arg-type]
                        clips += c
                        texts += t
                    return r.model.answer_clips(question, clips, texts=texts, **sampling)  # type: ignore[attr-defined]
            words: list[str] = []
            memory = assemble_streams(r.store, infos, plan, compression, anchors=r.anchors, texts=words)
            with r.lock:
                return r.model.answer(question, memory, **sampling, **({"texts": words} if plan.cues else {}))

        return r.cached_answer(streams[0], parts, settings, on_text, generate)
