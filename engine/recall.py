"""Answering from memory (DESIGN §3): retrieve → query-aware pass on candidates → ATA → answer.

The reference method recompresses a whole video for every question. From memory we only
recompress the *candidates* (FAISS top-K by SigLIP similarity, plus their temporal neighbours);
every other segment of the timeline enters the answer as a minimal anchor made of the first tokens
of its stored generic memory. When a stream has no more than K segments every segment is a
candidate and this is exactly the reference method.

`RecallPipeline` holds the steps — `retrieve`, `compress` (through `QueryCache`), `plan` (ATA over
the whole timeline), `answer` (through `AnswerCache`) — over one model and memory; each step takes the
per-question settings it needs (from `tempo.settings.AskSettings`). The agent's graph nodes call these
steps and pass their typed results on (tempo.agent.graph); every entry point (`tempo ask --stream`,
threads, chat, MCP, LangChain) runs that graph, so a question gets the same answer whichever way it
arrives. Frames for recompression come from memory/replay.py, the caches
from memory/caches.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tempo.engine.result import TEMPO_FAMILY, family_of
from tempo.engine.text_track import cues_key, fuse_hits, plan_with_cues, segment_words, text_reserve, token_counter
from tempo.memory.anchors import AnchorCache
from tempo.memory.caches import AnswerCache, QueryCache
from tempo.memory.index import SearchHit, SegmentIndex, Timeline
from tempo.memory.replay import load_segments
from tempo.memory.store import RedisMemoryStore
from tempo.memory.store_types import StreamInfo
from tempo.memory.text_index import KeywordHit, KeywordIndex, read_cues
from tempo.models.ata import allocate_tokens
from tempo.models.embedder import SegmentEmbedder
from tempo.models.family import ModelFamily, centre_time
from tempo.settings import AskSettings
from tempo.streaming.subtitles import Cue

__all__ = [
    "AllocationPlan",
    "Compression",
    "RecallPipeline",
    "Retrieval",
    "assemble",
    "compress_candidates",
    "plan_allocation",
    "retrieve",
    "retrieve_by_vector",
]


# ---------------------------------------------------------------------------------------------- retrieve
@dataclass(frozen=True)
class Retrieval:
    """The timeline in scope and the candidate segments chosen for the query-aware pass."""

    timeline: Timeline  # every indexed segment of the stream within the time scope, in order
    hits: list[SearchHit]  # FAISS top-K, best first
    candidates: np.ndarray  # (c,) int64 segment indices, sorted: hits + temporal neighbours


def retrieve(
    index: SegmentIndex,
    embedder: SegmentEmbedder,
    stream: str,
    question: str,
    *,
    top_k: int,
    neighbours: int = 1,
    time_range: tuple[float, float] | None = None,
) -> Retrieval:
    """FAISS top-K segments for `question` within the scope, plus `neighbours` on each side of each.

    With no more than `top_k` segments in scope every one is a candidate (the reference method).
    """
    return retrieve_by_vector(
        index,
        stream,
        embedder.embed_text(question),
        top_k=top_k,
        neighbours=neighbours,
        time_range=time_range,
    )


def retrieve_by_vector(
    index: SegmentIndex,
    stream: str,
    query: np.ndarray,
    *,
    top_k: int,
    neighbours: int = 1,
    time_range: tuple[float, float] | None = None,
) -> Retrieval:
    """`retrieve` for an already embedded query (E,)."""
    timeline = index.timeline(stream, time_range)
    n = len(timeline.indices)
    if n <= top_k:
        hits = index.search(query, max(n, 1), streams=[stream], time_range=time_range)
        return Retrieval(timeline, hits, timeline.indices.copy())
    hits = index.search(query, top_k, streams=[stream], time_range=time_range)
    rows = np.searchsorted(timeline.indices, [h.index for h in hits])
    near = (rows[:, None] + np.arange(-neighbours, neighbours + 1)[None, :]).reshape(-1)
    near = np.unique(near[(near >= 0) & (near < n)])
    return Retrieval(timeline, hits, timeline.indices[near])


def with_keyword_hits(got: Retrieval, keyword: Sequence[KeywordHit], *, top_k: int, neighbours: int) -> Retrieval:
    """`got` with keyword hits fused into its FAISS hits (reciprocal rank fusion) and the candidates
    widened to their temporal neighbours; `got` itself when no cue matched."""
    if not keyword:
        return got
    hits = fuse_hits(got.timeline.stream, got.hits, keyword, top_k)
    timeline, n = got.timeline, len(got.timeline.indices)
    rows = np.searchsorted(timeline.indices, [h.index for h in hits])
    near = (rows[:, None] + np.arange(-neighbours, neighbours + 1)[None, :]).reshape(-1)
    near = np.unique(near[(near >= 0) & (near < n)])
    return Retrieval(timeline, hits, np.union1d(got.candidates, timeline.indices[near]))


def compress_candidates(
    model: ModelFamily,
    store: RedisMemoryStore,
    info: StreamInfo,
    question: str,
    indices: Sequence[int],
    *,
    cache: QueryCache | None = None,
    model_id: str | None = None,
) -> tuple[dict[int, tuple[float, np.ndarray]], int]:
    """Query-aware pass on `indices` (cached): {index: (relevance, tokens (M, D))}, and how many hit the cache."""
    model_id = model_id or info.settings.model_id
    found = cache.get_many(info.name, model_id, question, indices) if cache is not None else {}
    missing = [int(i) for i in indices if int(i) not in found]
    if missing:
        segments = load_segments(store, info, missing)
        scores, memory = model.compress(segments, question)
        fresh = {i: (float(s), memory[j].numpy()) for j, (i, s) in enumerate(zip(missing, scores, strict=True))}
        if cache is not None:
            cache.put_many(info.name, model_id, question, fresh)
        found.update(fresh)
    return found, len(indices) - len(missing)


# ---------------------------------------------------------------------------------------------- allocate
@dataclass(frozen=True)
class AllocationPlan:
    """The answer's timeline: which segments, with how many tokens, from which pass."""

    indices: np.ndarray  # (r,) int64, timeline order
    starts: np.ndarray  # (r,) float64 seconds
    ends: np.ndarray  # (r,) float64 seconds
    relevance: np.ndarray  # (r,) float64; NaN for anchors (not recompressed for this question)
    counts: np.ndarray  # (r,) int64 tokens kept (ATA)
    candidate: np.ndarray  # (r,) bool
    anchors_dropped: int = 0  # anchors left out to keep the visual part within the budget
    renditions: tuple | None = None  # open weights (issue 23): per row the Rendition read (or None); Tempo: None
    cues: dict[int, tuple[Cue, ...]] = field(default_factory=dict)  # the words that enter the prompt, per index


def plan_allocation(
    timeline: Timeline,
    relevance: dict[int, float],
    *,
    tokens_per_segment: int,
    budget: int,
    min_tokens: int = 4,
    stored_tokens: int = 16,
    max_anchor_segments: int | None = None,
) -> AllocationPlan:
    """ATA over the timeline in scope: candidates by their relevance, every other segment an anchor.

    Anchors are scored as the least relevant candidate, so they get ATA's floor m (at most the
    stored head of their generic tokens). With all segments candidates this is plain ATA. Past
    `max_anchor_segments` (default budget / (2·m): anchors then take at most half the budget),
    anchors are thinned to a grid of segment indices with a power-of-two stride, so a month of
    memory still fits the LLM context and the same anchors come back question after question (and
    as a live stream grows, until it doubles): the anchor cache keeps hitting.
    """
    cand_mask = np.isin(timeline.indices, np.fromiter(relevance, dtype=np.int64, count=len(relevance)))
    anchor_rows = np.flatnonzero(~cand_mask)
    limit = budget // (2 * max(1, min_tokens)) if max_anchor_segments is None else max_anchor_segments
    dropped = 0
    if len(anchor_rows) > limit:
        stride = 1 << int(np.ceil(np.log2(len(anchor_rows) / max(limit, 1))))
        keep = anchor_rows[timeline.indices[anchor_rows] % stride == 0]
        dropped = len(anchor_rows) - len(keep)
        rows = np.union1d(np.flatnonzero(cand_mask), keep)
    else:
        rows = np.arange(len(timeline.indices))
    indices = timeline.indices[rows]
    is_cand = cand_mask[rows]
    rel = np.array([relevance.get(int(i), np.nan) for i in indices], dtype=np.float64)
    scores = rel.copy()
    if is_cand.any():
        scores[~is_cand] = np.nanmin(rel[is_cand])
    else:
        scores[:] = 0.0
    counts = allocate_tokens(scores, tokens_per_segment=tokens_per_segment, budget=budget, min_tokens=min_tokens)
    if (~is_cand).any():
        floor = max(1, min(min_tokens, budget // max(1, len(indices))))
        counts[~is_cand] = np.minimum(counts[~is_cand], min(floor, stored_tokens))
    return AllocationPlan(
        indices=indices,
        starts=timeline.starts[rows],
        ends=timeline.ends[rows],
        relevance=rel,
        counts=counts.astype(np.int64),
        candidate=is_cand,
        anchors_dropped=dropped,
    )


# ---------------------------------------------------------------------------------------------- answer
def assemble(
    store: RedisMemoryStore,
    info: StreamInfo,
    plan: AllocationPlan,
    compressed: dict[int, tuple[float, np.ndarray]],
    *,
    anchors: AnchorCache | None = None,
    rows: list[int] | None = None,
    anchor_heads: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[tuple[float, torch.Tensor]]:
    """(centre time seconds, kept tokens (k, D)) per planned segment, in timeline order: candidates'
    query-aware tokens (head k), anchors' stored generic tokens (head k: one batched Redis read, or
    the in-process `anchors` cache).

    Pieces are views (no copies): of the candidates' float32 model outputs, and of one (a, k, D)
    array of anchors (float16 from the cache: they were stored as int8 anyway); the model casts each
    piece to its own dtype when it projects it. `rows`, when given, receives each piece's plan row.
    `anchor_heads`: the anchors' heads already read ((a, k, D), (a,) present, for the plan's anchor
    rows in order, k at least their largest count), e.g. read for several streams at once (engine/multi.py).
    """
    settings = info.settings
    anchor_rows = np.flatnonzero(~plan.candidate)
    anchor_tokens = torch.zeros(0, 0, settings.token_dim)
    present = np.zeros(0, bool)
    if len(anchor_rows):
        wanted = plan.indices[anchor_rows]
        k_max = int(plan.counts[anchor_rows].max())
        if anchor_heads is not None:
            found, present = anchor_heads
        elif anchors is not None:
            found, present = anchors.get(info, wanted, k_max)  # (a, k_max, D)
        else:
            found, present = store.token_heads(info.name, wanted.tolist(), k_max, settings.token_dim)
        anchor_tokens = torch.from_numpy(found)
    anchor_of = np.full(len(plan.indices), -1, np.int64)
    anchor_of[anchor_rows] = np.arange(len(anchor_rows))
    counts = plan.counts.tolist()
    centres = centre_time(plan.starts, settings.window, settings.sample_fps).tolist()
    out: list[tuple[float, torch.Tensor]] = []
    for row, (i, j) in enumerate(zip(plan.indices.tolist(), anchor_of.tolist(), strict=True)):
        if j < 0:
            head = np.asarray(compressed[i][1][: counts[row]])
            # Tokens read from the cache are read-only buffers; torch wants writable memory.
            out.append((centres[row], torch.from_numpy(head if head.flags.writeable else head.copy())))
        elif present[j]:  # else removed by retention between planning and assembly
            out.append((centres[row], anchor_tokens[j, : counts[row]]))
        else:
            continue
        if rows is not None:
            rows.append(row)
    return out


@dataclass(frozen=True)
class Compression:
    """The query-aware pass on a question's candidates: {index: (relevance, tokens (M, D) float32)}."""

    results: dict[int, tuple[float, np.ndarray]]
    cache_hits: int  # candidates whose pass came from the QueryCache

    @property
    def relevance(self) -> dict[int, float]:
        return {i: score for i, (score, _) in self.results.items()}


class RecallPipeline:
    """The steps of answering from memory on one model and memory; each step takes the per-question
    settings it needs.

    Model calls are serialised by `lock` (one model, many threads: a server's concurrent calls).
    """

    def __init__(
        self,
        *,
        model: ModelFamily,
        embedder: SegmentEmbedder,
        store: RedisMemoryStore,
        index: SegmentIndex,
        model_id: str,
        query_cache: QueryCache | None = None,
        answer_cache: AnswerCache | None = None,
        anchors: AnchorCache | None = None,
        lock: threading.RLock | None = None,
        keywords: KeywordIndex | None = None,
    ) -> None:
        self.model = model
        self.embedder = embedder
        self.store = store
        self.index = index
        self.model_id = model_id
        self.query_cache = query_cache
        self.answer_cache = answer_cache
        self.anchors = anchors
        self.lock = lock or threading.RLock()
        self.keywords = keywords if keywords is not None else KeywordIndex(store)  # BM25 over the cues

    def retrieve(
        self,
        stream: str,
        question: str,
        *,
        top_k: int,
        neighbours: int,
        time_range: tuple[float, float] | None = None,
    ) -> Retrieval:
        """FAISS top-K ∪ keyword (BM25) top-K over the cues, fused by reciprocal rank, in the scope,
        plus `neighbours` on each side, on an up-to-date index (engine/text_track.py).

        The first step of every question: a question too long to leave room for video is refused
        here (QuestionTooLongError), before retrieval and compression.
        """
        from tempo.engine.open_recall import check_stream_family

        self.model.check_question_fits(question)
        check_stream_family(self.store.stream_info(stream), self.model)  # UnknownStreamError names the known streams
        self.index.sync()  # segments other processes committed since the index was loaded
        got = retrieve(
            self.index, self.embedder, stream, question, top_k=int(top_k), neighbours=int(neighbours),
            time_range=time_range,
        )
        return with_keyword_hits(got, self.keywords.search(stream, question, int(top_k), time_range),
                                 top_k=int(top_k), neighbours=int(neighbours))

    def compress(self, info: StreamInfo, question: str, indices: Sequence[int]) -> Compression:
        with self.lock:
            found, hits = compress_candidates(
                self.model, self.store, info, question, indices, cache=self.query_cache, model_id=self.model_id
            )
        return Compression(found, hits)

    def plan(
        self, info: StreamInfo, compression: Compression, *, budget: int, min_tokens: int, text_tokens: int = 0
    ) -> AllocationPlan:
        """ATA over the stream's whole timeline: candidates by relevance, every other segment an anchor.

        A stream with a text track gives up to `text_tokens` (at most half) of the budget to the kept
        segments' cue words, which the plan carries (`cues`) into the prompt."""
        reserve = text_reserve(text_tokens, budget, self.keywords.has_text(info.name))
        plan = plan_allocation(
            self.index.timeline(info.name),
            compression.relevance,
            tokens_per_segment=info.settings.tokens_per_segment,
            budget=int(budget) - reserve,
            min_tokens=int(min_tokens),
            stored_tokens=info.settings.stored_tokens,
        )
        if family_of(self.model) != TEMPO_FAMILY:  # open weights: the plan priced in renditions
            from tempo.engine.open_recall import plan_memory_renditions

            with self.lock:
                plan = plan_memory_renditions(  # type: ignore[arg-type]
                    self.model, self.store, info, plan, budget=int(budget) - reserve, min_tokens=min_tokens
                )
        if not reserve:
            return plan
        cues = read_cues(self.store, info.name, plan.indices.tolist())
        return plan_with_cues(plan, cues, cap=reserve, count=token_counter(self.model))

    def answer(
        self,
        info: StreamInfo,
        question: str,
        plan: AllocationPlan,
        compression: Compression,
        *,
        settings: AskSettings,
        on_text: Callable[[str], None] | None = None,
    ) -> tuple[str, bool]:
        """The global LLM's answer over the plan (`settings.max_new_tokens`, `settings.temperature`),
        and whether it came from the answer cache (greedy answers only, with `settings.answer_cache`)."""
        parts = [
            str(info.number),  # stream numbers are never reused, so a re-created stream misses
            question,
            str(settings.max_new_tokens),
            plan.indices.tobytes(),
            plan.counts.tobytes(),
            plan.candidate.tobytes(),
            cues_key(plan.cues),
        ]

        def generate() -> str:
            return self._generate(info, question, plan, compression, settings, on_text)

        return self.cached_answer(info.name, parts, settings, on_text, generate)

    def cached_answer(
        self,
        stream: str,
        parts: list[str | bytes],
        settings: AskSettings,
        on_text: Callable[[str], None] | None,
        generate: Callable[[], str],
    ) -> tuple[str, bool]:
        """`generate()`'s answer, or the cached one for the same model and key `parts` (greedy answers
        only, with `settings.answer_cache`; a cached answer is passed to `on_text` whole), and whether
        it came from the cache."""
        cache = self.answer_cache if settings.answer_cache and settings.temperature == 0 else None
        key = None if cache is None else cache.key(stream, [self.model_id, *parts])
        if cache is not None and key is not None:
            cached = cache.get(key)
            if cached is not None:
                if on_text is not None and cached:
                    on_text(cached)
                return cached, True
        text = generate()
        if cache is not None and key is not None:
            cache.put(key, text)
        return text, False

    def _generate(
        self,
        info: StreamInfo,
        question: str,
        plan: AllocationPlan,
        compression: Compression,
        settings: AskSettings,
        on_text: Callable[[str], None] | None,
    ) -> str:
        """The model's answer over the plan (the open-weights family from its renditions)."""
        if plan.renditions is not None:  # open weights: the frames at their renditions
            from tempo.engine.open_recall import answer_memory_renditions

            with self.lock:
                return answer_memory_renditions(
                    self.model, self.store, info, plan, question, max_new_tokens=settings.max_new_tokens,  # type: ignore[arg-type]
                    temperature=settings.temperature, on_text=on_text,
                )
        rows: list[int] = []
        memory = assemble(self.store, info, plan, compression.results, anchors=self.anchors, rows=rows)
        words = {"texts": [segment_words(plan.cues.get(int(plan.indices[r]), ())) for r in rows]} if plan.cues else {}
        with self.lock:
            return self.model.answer(
                question,
                memory,
                max_new_tokens=settings.max_new_tokens,
                temperature=settings.temperature,
                on_text=on_text,
                **words,
            )
