"""The reference mode end to end: every segment gets the query-aware pass, ATA, then the global LLM.

`answer_video(model, segments, question)` is what `tempo ask VIDEO QUESTION` runs; the memory-backed
path (agent) reuses `ModelFamily.compress` / `ModelFamily.answer` with tokens from Redis instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tempo.models.ata import allocate_tokens, average_tokens_per_frame, truncate_memory
from tempo.models.family import ModelFamily
from tempo.streaming.segment import Segment
from tqdm import tqdm


@dataclass(frozen=True)
class SegmentAllocation:
    """One row of the answer's timeline. Seconds; relevance in [0, 1]; tokens kept (ATA)."""

    index: int
    start: float
    end: float
    relevance: float
    tokens: int

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "relevance": round(self.relevance, 6),
            "tokens": self.tokens,
        }


@dataclass
class AskResult:
    """An answer with its evidence: the per-segment allocation and where the time went (seconds)."""

    answer: str
    segments: list[SegmentAllocation]
    avg_tokens_per_frame: float
    budget: int
    timings: dict[str, float] = field(default_factory=dict)
    sampling: str | None = None  # "release" or "stream": how the video's frames were sampled
    real_fps: float | None = None  # sampled frames per second of video every time was computed with

    def to_json(self) -> dict[str, Any]:
        """The JSON of `tempo ask --json`: answer, segments, avg_tokens_per_frame, budget, sampling,
        real_fps, timings."""
        return {
            "answer": self.answer,
            "segments": [s.to_json() for s in self.segments],
            "avg_tokens_per_frame": round(self.avg_tokens_per_frame, 4),
            "budget": self.budget,
            "sampling": self.sampling,
            "real_fps": None if self.real_fps is None else round(self.real_fps, 6),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


def _batches(segments: Iterable[Segment], size: int, clock: dict[str, float]) -> Iterator[list[Segment]]:
    """Groups of `size` segments; time spent producing them (decoding) is added to clock["decode_s"]."""
    it = iter(segments)
    while True:
        t0 = time.perf_counter()
        batch = []
        for seg in it:
            batch.append(seg)
            if len(batch) == size:
                break
        clock["decode_s"] += time.perf_counter() - t0
        if not batch:
            return
        yield batch
        if len(batch) < size:
            return


def answer_video(
    model: ModelFamily,
    segments: Iterable[Segment],
    question: str,
    *,
    budget: int | None = None,
    min_tokens: int | None = None,
    batch_size: int | None = None,
    max_new_tokens: int | None = None,
    temperature: float | None = None,
    on_text: Callable[[str], None] | None = None,
    progress: bool = False,
) -> AskResult:
    """Answer `question` about a whole video in the reference mode (DESIGN §2).

    Segments are consumed lazily and compressed in batches, so frames of a long video are never all
    in memory; only the (n, M, D) memory tokens are.
    """
    model.check_question_fits(question)  # before any compression: a too-long question fails in a second
    budget = model.config.budget if budget is None else int(budget)
    min_tokens = model.config.min_tokens if min_tokens is None else int(min_tokens)
    bs = batch_size or model.config.compress_batch_size
    clock = {"decode_s": 0.0, "compress_s": 0.0, "allocate_s": 0.0, "answer_s": 0.0}
    t_start = time.perf_counter()

    kept_meta: list[tuple[int, float, float, int, float]] = []  # index, start, end, frames, centre time
    real_fps: float | None = None
    sampling: str | None = None
    score_parts: list[np.ndarray] = []
    memory_parts: list[torch.Tensor] = []
    bar = tqdm(desc="compress", unit="seg", disable=not progress, leave=False)
    for batch in _batches(segments, bs, clock):
        t0 = time.perf_counter()
        scores, memory = model.compress(batch, question, batch_size=bs)
        clock["compress_s"] += time.perf_counter() - t0
        score_parts.append(scores)
        memory_parts.append(memory)
        kept_meta += [(s.index, s.start, s.end, s.num_frames, model.centre_time(s)) for s in batch]
        real_fps = batch[0].sample_fps
        sampling = str(batch[0].extra.get("sampling", "stream"))
        bar.update(len(batch))
    bar.close()

    t0 = time.perf_counter()
    scores = np.concatenate(score_parts) if score_parts else np.zeros(0, dtype=np.float32)
    memory = (
        torch.cat(memory_parts) if memory_parts else torch.zeros(0, model.num_memory_tokens, model.memory_dim)
    )
    counts = allocate_tokens(
        scores, tokens_per_segment=model.num_memory_tokens, budget=budget, min_tokens=min_tokens
    )
    kept = truncate_memory(memory, counts)
    frames = np.array([meta[3] for meta in kept_meta], dtype=np.int64)
    avg = average_tokens_per_frame(counts, frames)
    clock["allocate_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    text = model.answer(
        question,
        [(meta[4], tokens) for meta, tokens in zip(kept_meta, kept, strict=True)],
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        on_text=on_text,
    )
    clock["answer_s"] = time.perf_counter() - t0
    clock["total_s"] = time.perf_counter() - t_start

    rows = [
        SegmentAllocation(index=i, start=float(st), end=float(en), relevance=float(sc), tokens=int(k))
        for (i, st, en, _, _), sc, k in zip(kept_meta, scores.tolist(), counts.tolist(), strict=True)
    ]
    return AskResult(
        answer=text,
        segments=rows,
        avg_tokens_per_frame=avg,
        budget=budget,
        timings=clock,
        sampling=sampling,
        real_fps=real_fps,
    )
