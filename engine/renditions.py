"""ATA in Qwen3-VL visual tokens: the open-weights family's reference mode and its rendition plan.

`answer_video_renditions(model, segments, question, settings=...)` is `answer_video` for a
`Qwen3VLFamily` (engine/reference.py hands over to it): every segment is scored by the router for the
question, ATA spends the budget B in the answerer's own unit (a segment's M is the cost of its full
rendition; `Qwen3VLFamily.rendition_ladder` prices it as a video, or as images for a remote answerer),
each segment's allocation picks its rendition (`plan_renditions`: the costliest
(frames × size) costing at most what ATA gave it; a segment given less than the smallest rendition is
dropped and counted in `anchors_dropped`), and the answerer reads the kept renditions in time order
with their stream times. Frames are held at their full-rendition size until the answer (an hour at
512 × 256 is about 2.8 GB of RAM).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from tempo.engine.recall import AllocationPlan
from tempo.engine.reference import _batches, reference_result
from tempo.engine.result import TurnResult, timeline_rows
from tempo.models.ata import allocate_tokens, average_tokens_per_frame
from tempo.models.config import CONTEXT_MARGIN
from tempo.models.renditions import RenderedClip, Rendition, pick_rendition, render_clip
from tempo.settings import AskSettings
from tempo.streaming.segment import Segment
from tqdm import tqdm

if TYPE_CHECKING:
    from tempo.models.qwen3vl_family import Qwen3VLFamily


def plan_renditions(
    scores: np.ndarray, ladders: Sequence[list[Rendition]], *, budget: int, min_tokens: int
) -> tuple[np.ndarray, list[Rendition | None]]:
    """ATA over the segments' scores with M = the costliest full rendition and the floor raised to the
    smallest rendition's cost; then each segment's rendition within its allocation. Returns (the
    allocation (n,), the rendition per segment or None when it got less than its smallest)."""
    if not ladders:
        return np.zeros(0, dtype=np.int64), []
    full = max(ladder[-1].tokens for ladder in ladders)
    floor = max(min_tokens, max(ladder[0].tokens for ladder in ladders))
    counts = allocate_tokens(scores, tokens_per_segment=full, budget=budget, min_tokens=min(floor, full))
    return counts, [pick_rendition(int(k), ladder) for k, ladder in zip(counts, ladders, strict=True)]


def fit_anchors(indices: np.ndarray, costs: np.ndarray, budget: int) -> np.ndarray:
    """(a,) bool: which anchors (segment `indices`, smallest-rendition `costs`) keep their rendition so
    that anchors take at most half the budget, as `plan_allocation`'s anchors do: all of them when they
    fit, else the grid of segment indices with the smallest power-of-two stride that fits (the same
    anchors question after question), else none. Matters where the smallest rendition is dear: a remote
    answerer's server scales every image up to its minimum size (64 tokens and more for Qwen3-VL)."""
    keep = np.ones(len(indices), dtype=bool)
    stride = 1
    while int(costs[keep].sum()) > budget // 2:
        if stride > int(np.max(indices, initial=0)):
            return np.zeros(len(indices), dtype=bool)
        stride *= 2
        keep = indices % stride == 0
    return keep


def answer_video_renditions(
    model: Qwen3VLFamily,
    segments: Iterable[Segment],
    question: str,
    *,
    settings: AskSettings,
    source: str | None = None,
    model_id: str = "",
    batch_size: int | None = None,
    on_text: Callable[[str], None] | None = None,
    progress: bool = False,
) -> TurnResult:
    """The reference mode of the open-weights family (module docstring); the same `TurnResult` as
    `answer_video`, with `tokens` in Qwen3-VL visual tokens and each row's `rendition`."""
    fam = model
    fam.check_question_fits(question)
    bs = batch_size or fam.config.compress_batch_size
    clock = {"decode_s": 0.0, "compress_s": 0.0, "allocate_s": 0.0, "answer_s": 0.0}
    t_start = time.perf_counter()
    kept: list[tuple[Segment, np.ndarray]] = []  # (segment without pixels, full-size frames)
    score_parts: list[np.ndarray] = []
    bar = tqdm(desc="route", unit="seg", disable=not progress, leave=False)
    for batch in _batches(segments, bs, clock):
        t0 = time.perf_counter()
        scores, _ = fam.compress(batch, question, batch_size=bs)
        for seg in batch:
            kept.append((seg, fam.processor.compressor_frames(seg.frames)))
        clock["compress_s"] += time.perf_counter() - t0
        score_parts.append(scores)
        bar.update(len(batch))
    bar.close()

    t0 = time.perf_counter()
    scores = np.concatenate(score_parts) if score_parts else np.zeros(0, dtype=np.float32)
    ladders = [fam.rendition_ladder(f) for _, f in kept]  # priced in what the answerer pays
    budget = settings.budget
    while True:
        _, renditions = plan_renditions(scores, ladders, budget=budget, min_tokens=settings.min_tokens)
        clips = [
            render_clip(seg.index, frames, seg.timestamps, r)
            for (seg, frames), r in zip(kept, renditions, strict=True)
            if r is not None
        ]
        overflow = _prompt_tokens(fam, question, clips) - (fam.config.context_limit - CONTEXT_MARGIN)
        if overflow <= 0 or budget <= 1:
            break
        budget = max(1, budget - overflow)  # the context guard: spend less until the prompt fits
    costs = np.array([r.tokens if r is not None else 0 for r in renditions], dtype=np.int64)
    frames = np.array([seg.num_frames for seg, _ in kept], dtype=np.int64)
    clock["allocate_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    text = fam.answer_clips(
        question, clips, max_new_tokens=settings.max_new_tokens, temperature=settings.temperature, on_text=on_text
    )
    clock["answer_s"] = time.perf_counter() - t0
    clock["total_s"] = time.perf_counter() - t_start

    plan = AllocationPlan(
        indices=np.array([s.index for s, _ in kept], dtype=np.int64),
        starts=np.array([s.start for s, _ in kept], dtype=np.float64),
        ends=np.array([s.end for s, _ in kept], dtype=np.float64),
        relevance=scores.astype(np.float64),
        counts=costs,
        candidate=np.ones(len(kept), dtype=bool),
    )
    rows = timeline_rows(plan)
    for row, r in zip(rows, renditions, strict=True):
        row["rendition"] = None if r is None else r.to_dict()
    first = kept[0][0] if kept else None
    return reference_result(
        rows,
        text,
        question=question,
        source=source,
        model_id=model_id,
        sampling=str(first.extra.get("sampling", "stream")) if first else "stream",
        real_fps=None if first is None else float(first.sample_fps),
        settings=settings,
        tokens=int(costs.sum()),
        avg_tokens_per_frame=average_tokens_per_frame(costs, frames),
        anchors_dropped=sum(r is None for r in renditions),
        timings=clock,
        family=fam.family,
        tokens_unit=fam.tokens_unit,
    )


def _prompt_tokens(fam: Qwen3VLFamily, question: str, clips: Sequence[RenderedClip]) -> int:
    """Tokens of the answerer's whole prompt for `clips` (text, time tags and visual tokens)."""
    return int(fam.build_inputs(question, clips)["input_ids"].shape[1])
