"""`MemoryBackend`: what the agent graph calls for its model and memory work, on a `TempoService`.

Each node of the graph calls one step of the service's `RecallPipeline` (tempo.engine.recall) and
hands its typed result to the next node through the graph state:

    retrieve  -> RecallPipeline.retrieve (FAISS top-K in scope + temporal neighbours)
    compress  -> RecallPipeline.compress through the QueryCache (Redis, TTL) -> Compression
    allocate  -> RecallPipeline.plan (ATA over the whole timeline, anchors for the rest) -> AllocationPlan
    answer    -> RecallPipeline.answer through the AnswerCache (assemble + TempoModel.answer, streamed)

Per-turn figures (cache hits, segments compressed, timings) go to the `TurnStats` set with
`track_turn()`, a context variable, so concurrent turns in other threads do not mix their counts.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tempo.agent.backend import HistoryTurn, SegmentHit, TextCallback
from tempo.agent.llm import rewrite_with_model
from tempo.agent.timescope import StreamClock
from tempo.engine.recall import AllocationPlan, Compression, RecallPipeline, RecallSettings
from tempo.streaming.segment import is_live

if TYPE_CHECKING:
    from tempo.service import TempoService

@dataclass
class TurnStats:
    """What one turn cost, filled by the backend while the graph runs."""

    cache_hits: int = 0  # candidates whose query-aware pass came from the cache
    compressed: int = 0  # candidates that ran through the SVLM for this turn
    answer_cached: bool = False
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step, summed over widening

    def add_time(self, step: str, seconds: float) -> None:
        self.timings[step] = self.timings.get(step, 0.0) + seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "cache_hits": self.cache_hits,
            "compressed": self.compressed,
            "answer_cached": self.answer_cached,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


_turn_stats: contextvars.ContextVar[TurnStats | None] = contextvars.ContextVar("tempo_turn_stats", default=None)


@contextlib.contextmanager
def track_turn() -> Iterator[TurnStats]:
    """Collect the backend's figures for the code inside (one turn)."""
    stats = TurnStats()
    token = _turn_stats.set(stats)
    try:
        yield stats
    finally:
        _turn_stats.reset(token)


@contextlib.contextmanager
def _timed(step: str) -> Iterator[TurnStats | None]:
    stats = _turn_stats.get()
    t0 = time.perf_counter()
    try:
        yield stats
    finally:
        if stats is not None:
            stats.add_time(step, time.perf_counter() - t0)


class MemoryBackend:
    """The graph's steps over a `TempoService`, with one `RecallSettings` (the defaults when None).

    Thread-safe: model calls are serialised by the service's model lock.
    """

    def __init__(
        self, service: TempoService, settings: RecallSettings | None = None, *, rewrite_tokens: int = 48
    ) -> None:
        self.service = service
        self.settings = settings or RecallSettings()
        self.rewrite_tokens = rewrite_tokens

    @property
    def pipeline(self) -> RecallPipeline:
        return self.service.recall(self.settings)

    # ----- the graph's steps -------------------------------------------------------------------------

    def stream_clock(self, stream: str) -> StreamClock:
        """The stream's covered duration (its "now", seconds) and wall-clock origin (Unix seconds of
        stream time 0, None for files), for resolving time words in questions. Raises
        `UnknownStreamError` (a TempoError) for an unknown stream."""
        info = self.service.stream(stream)  # UnknownStreamError names the known streams
        origin = None
        if is_live(info.source) and info.segments:
            first = self.service.store.get_segments(
                stream, [info.first], tokens=False, embedding=False, recompress=False
            )[0]
            if first is not None and first.wallclock_start is not None:
                # Wall-clock time of stream time 0 (the first retained segment may start later).
                origin = float(first.wallclock_start) - float(first.start)
        return StreamClock(duration=float(info.end or 0.0), origin=origin)

    def retrieve(
        self, stream: str, query: str, top_k: int, time_range: tuple[float, float] | None
    ) -> list[SegmentHit]:
        """The top_k segments closest to `query` (FAISS), restricted to segments overlapping
        `time_range` when given, plus their temporal neighbours (index ± 1 within the range); best
        first, no duplicates."""
        with _timed("retrieve_s"):
            got = self.pipeline.retrieve(stream, query, top_k=top_k, time_range=time_range)
        timeline = got.timeline
        rows = {int(i): r for r, i in enumerate(timeline.indices.tolist())}
        hits: list[SegmentHit] = []
        seen: set[int] = set()
        for h in got.hits:
            if h.index in rows and h.index not in seen:
                seen.add(h.index)
                hits.append(
                    SegmentHit(index=int(h.index), start=float(h.start), end=float(h.end), score=float(h.score))
                )
        # Neighbours were not ranked by FAISS: they follow the hits in time order with score 0.
        for i in got.candidates.tolist():
            if i not in seen and i in rows:
                seen.add(i)
                r = rows[i]
                hits.append(
                    SegmentHit(index=i, start=float(timeline.starts[r]), end=float(timeline.ends[r]), score=0.0)
                )
        return hits

    def compress(self, stream: str, question: str, indices: Sequence[int]) -> Compression:
        """The query-aware SVLM pass on these segments: relevance (0..1) and tokens per index. Results
        are cached per (stream, segment, question) with a TTL, so a repeated question costs no model call."""
        with _timed("compress_s") as stats:
            compression = self.pipeline.compress(self.service.stream(stream), question, [int(i) for i in indices])
        if stats is not None:
            stats.cache_hits += compression.cache_hits
            stats.compressed += len(compression.results) - compression.cache_hits
        return compression

    def allocate(self, stream: str, compression: Compression) -> AllocationPlan:
        """ATA over the stream's whole timeline: the compressed segments by their relevance, every
        other segment a minimal anchor from its stored generic tokens; in time order."""
        with _timed("allocate_s"):
            return self.pipeline.plan(self.service.stream(stream), compression)

    def answer(
        self,
        stream: str,
        question: str,
        plan: AllocationPlan,
        compression: Compression,
        on_text: TextCallback | None,
    ) -> str:
        """The global LLM's answer (with `<t seconds>` time tags in its input), text pieces passed to
        `on_text` as they are generated; returns the whole text."""
        with _timed("answer_s") as stats:
            text, cached = self.pipeline.answer(self.service.stream(stream), question, plan, compression, on_text)
        if stats is not None:
            stats.answer_cached = cached
        return text

    def rewrite_with_llm(self, history: Sequence[HistoryTurn], question: str) -> str:
        """The model's attempt at a standalone version of `question` given the thread's history (oldest
        first). May return anything: the graph validates it and falls back to a deterministic rewrite."""
        svc = self.service
        with _timed("rewrite_s"), svc.model_lock:
            return rewrite_with_model(svc.model, history, question, max_new_tokens=self.rewrite_tokens)
