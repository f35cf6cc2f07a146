"""`MemoryBackend`: the agent's `AgentBackend` on the real memory and model (a `TempoService`).

Each node of the graph calls one step of tempo.memory.recall — the same steps `tempo ask --stream`
runs in one go — so an agent turn and a single-shot question do the same work:

    retrieve  -> recall.retrieve (FAISS top-K in scope + temporal neighbours)
    compress  -> recall.compress_candidates through the service's QueryCache (Redis, TTL)
    allocate  -> recall.plan_allocation (ATA over the whole timeline, anchors for the rest)
    answer    -> recall.assemble + TempoModel.answer (streamed)

The graph state stays JSON-only: query-aware tokens (M, D) stay here, in process (`_compressed`, a
small LRU keyed by stream and question) and in Redis (the QueryCache), and the ATA plan is kept
beside them between `allocate` and `answer`. A greedy answer is itself cached in Redis, keyed by
everything it depends on (model, question, the planned segments and their token counts), so asking
the same question of an unchanged memory costs a FAISS search and two Redis reads.

Per-turn figures (cache hits, segments compressed, timings) go to the `TurnStats` set with
`track_turn()`, a context variable, so concurrent turns in other threads do not mix their counts.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from tempo.agent.backend import AllocatedSegment, HistoryTurn, SegmentHit, TextCallback
from tempo.agent.llm import rewrite_with_model
from tempo.agent.rewrite import StreamClock
from tempo.memory import recall

if TYPE_CHECKING:
    from tempo.service import TempoService

# Questions whose query-aware tokens stay in process between `compress` and `answer`; older ones
# are read back from the QueryCache. Few, because they are large: the released model's M × D =
# 128 × 2048 float32 is 1 MiB per segment, ~200 MiB for a widened question's candidates.
IN_PROCESS_QUESTIONS = 4


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


class AnswerCache:
    """Greedy answers in Redis, keyed by what they are a function of, with a TTL."""

    def __init__(self, client: Any, *, prefix: str = "tempo", ttl: float = 3600.0) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = ttl

    def key(self, stream: str, parts: Sequence[bytes | str]) -> str:
        h = hashlib.sha1()
        for part in parts:
            data = part.encode() if isinstance(part, str) else part
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)
        return f"{self.prefix}:ac:{{{stream}}}:{h.hexdigest()[:24]}"

    def get(self, key: str) -> str | None:
        raw = self.client.get(key)
        return None if raw is None else (raw.decode() if isinstance(raw, bytes) else str(raw))

    def put(self, key: str, text: str) -> None:
        self.client.set(key, text.encode(), px=int(self.ttl * 1000))


class MemoryBackend:
    """`AgentBackend` over a `TempoService`. Thread-safe: model calls are serialised by one lock.

    Args:
        service: memory + model + embedder (loaded lazily by the service).
        neighbours: temporal neighbours added on each side of each FAISS hit.
        budget: visual token budget of the answer (default: the model's inference config).
        max_new_tokens: longest answer (default: the model's inference config).
        answer_cache: cache greedy answers (same question, same memory → same text).
        rewrite_tokens: longest model rewrite of a follow-up.
    """

    def __init__(
        self,
        service: TempoService,
        *,
        neighbours: int = 1,
        budget: int | None = None,
        max_new_tokens: int | None = None,
        answer_cache: bool = True,
        rewrite_tokens: int = 48,
    ) -> None:
        self.service = service
        self.neighbours = neighbours
        self.budget = budget
        self.max_new_tokens = max_new_tokens
        self.use_answer_cache = answer_cache
        self.rewrite_tokens = rewrite_tokens
        self.in_process_questions = IN_PROCESS_QUESTIONS
        self._model_lock = threading.RLock()
        self._lock = threading.Lock()
        # (stream, question) -> {index: (relevance, tokens (M, D) float32)}
        self._compressed: OrderedDict[tuple[str, str], dict[int, tuple[float, np.ndarray]]] = OrderedDict()
        # (stream, question) -> indices of its last `compress` call: the answer's candidates
        self._candidates: OrderedDict[tuple[str, str], list[int]] = OrderedDict()

    # ----- helpers ----------------------------------------------------------------------------------

    @property
    def answer_cache(self) -> AnswerCache:
        store = self.service.store
        return AnswerCache(store.client, prefix=store.prefix, ttl=self.service.cache_ttl)

    def _remember(self, table: OrderedDict, key: tuple[str, str], value: Any, limit: int | None = None) -> None:
        with self._lock:
            table[key] = value
            table.move_to_end(key)
            while len(table) > (limit or self.in_process_questions):
                table.popitem(last=False)

    def _budget(self) -> int:
        return self.service.model.config.budget if self.budget is None else int(self.budget)

    # ----- AgentBackend -----------------------------------------------------------------------------

    def stream_clock(self, stream: str) -> StreamClock:
        info = self.service.stream(stream)  # UnknownStreamError names the known streams
        origin = None
        live = bool(info.source.get("live")) or info.source.get("kind") not in (None, "file")
        if live and info.segments:
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
        svc = self.service
        with _timed("retrieve_s"):
            svc.stream(stream)
            svc.index.sync()
            got = recall.retrieve(
                svc.index, svc.embedder, stream, query, top_k=top_k, neighbours=self.neighbours, time_range=time_range
            )
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

    def _compress(
        self, stream: str, question: str, indices: Sequence[int], *, count: bool = True
    ) -> dict[int, tuple[float, np.ndarray]]:
        svc = self.service
        key = (stream, question)
        with self._lock:
            have = dict(self._compressed.get(key, {}))
        wanted = [int(i) for i in indices]
        missing = [i for i in wanted if i not in have]
        hits = len(wanted) - len(missing)
        if missing:
            info = svc.stream(stream)
            with self._model_lock:
                found, cached = recall.compress_candidates(
                    svc.model, svc.store, info, question, missing, cache=svc.cache
                )
            have.update(found)
            hits += cached
        stats = _turn_stats.get()
        if count and stats is not None:
            stats.cache_hits += hits
            stats.compressed += len(wanted) - hits
        self._remember(self._compressed, key, have)
        return {i: have[i] for i in wanted}

    def compress(self, stream: str, question: str, indices: Sequence[int]) -> dict[int, float]:
        with _timed("compress_s"):
            found = self._compress(stream, question, indices)
        self._remember(self._candidates, (stream, question), [int(i) for i in indices], limit=256)
        return {i: float(score) for i, (score, _) in found.items()}

    def allocate(self, stream: str, relevance_by_index: Mapping[int, float]) -> list[AllocatedSegment]:
        svc = self.service
        with _timed("allocate_s"):
            info = svc.stream(stream)
            svc.index.sync()
            model = svc.model
            plan = recall.plan_allocation(
                svc.index.timeline(stream),
                {int(i): float(r) for i, r in relevance_by_index.items()},
                tokens_per_segment=info.settings.tokens_per_segment,
                budget=self._budget(),
                min_tokens=model.config.min_tokens,
                stored_tokens=info.settings.stored_tokens,
            )
        floor = min(relevance_by_index.values(), default=0.0)
        return [
            AllocatedSegment(
                index=int(i),
                start=float(s),
                end=float(e),
                relevance=float(floor if math.isnan(r) else r),
                tokens=int(k),
            )
            for i, s, e, r, k in zip(plan.indices, plan.starts, plan.ends, plan.relevance, plan.counts, strict=True)
        ]

    @staticmethod
    def _plan_from(allocation: Sequence[AllocatedSegment], candidates: set[int]) -> recall.AllocationPlan:
        """The ATA plan back from the state's copy of it (`allocate`'s output)."""
        is_cand = np.array([a["index"] in candidates for a in allocation], dtype=bool)
        relevance = np.array([a["relevance"] if c else np.nan for a, c in zip(allocation, is_cand, strict=True)])
        return recall.AllocationPlan(
            indices=np.array([a["index"] for a in allocation], dtype=np.int64),
            starts=np.array([a["start"] for a in allocation], dtype=np.float64),
            ends=np.array([a["end"] for a in allocation], dtype=np.float64),
            relevance=relevance.astype(np.float64),
            counts=np.array([a["tokens"] for a in allocation], dtype=np.int64),
            candidate=is_cand,
        )

    def _answer_candidates(self, stream: str, question: str, allocation: Sequence[AllocatedSegment]) -> set[int]:
        planned = {int(a["index"]) for a in allocation}
        with self._lock:
            last = self._candidates.get((stream, question))
        if last is not None:
            return planned & set(last)
        # Compressed by another process (the graph resumed elsewhere): the cache says which were.
        svc = self.service
        info = svc.stream(stream)
        cached = svc.cache.get_many(stream, info.settings.model_id, question, sorted(planned))
        return set(cached)

    def answer(
        self,
        stream: str,
        question: str,
        allocation: Sequence[AllocatedSegment],
        on_text: TextCallback | None,
    ) -> str:
        svc = self.service
        info = svc.stream(stream)
        stats = _turn_stats.get()
        plan = self._plan_from(allocation, self._answer_candidates(stream, question, allocation))
        model = svc.model
        max_new = model.config.max_new_tokens if self.max_new_tokens is None else int(self.max_new_tokens)
        cache_key = None
        if self.use_answer_cache and model.config.temperature == 0:
            cache_key = self.answer_cache.key(
                stream,
                [
                    svc.model_name,
                    str(info.number),  # stream numbers are never reused, so a re-created stream misses
                    question,
                    str(max_new),
                    plan.indices.tobytes(),
                    plan.counts.tobytes(),
                    plan.candidate.tobytes(),
                ],
            )
            with _timed("answer_s"):
                cached = self.answer_cache.get(cache_key)
            if cached is not None:
                if stats is not None:
                    stats.answer_cached = True
                if on_text is not None and cached:
                    on_text(cached)
                return cached
        with _timed("answer_s"):
            compressed = self._compress(stream, question, plan.indices[plan.candidate].tolist(), count=False)
            # The service's in-process anchor cache: repeated questions skip the anchors' Redis reads.
            memory = recall.assemble(svc.store, info, plan, compressed, anchors=svc.anchors)
            with self._model_lock:
                text = model.answer(question, memory, max_new_tokens=max_new, on_text=on_text)
        if cache_key is not None:
            self.answer_cache.put(cache_key, text)
        return text

    def rewrite_with_llm(self, history: Sequence[HistoryTurn], question: str) -> str:
        with _timed("rewrite_s"), self._model_lock:
            return rewrite_with_model(self.service.model, history, question, max_new_tokens=self.rewrite_tokens)

