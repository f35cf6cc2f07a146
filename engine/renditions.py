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

Words (issue 24): with a `text_track` (the video's subtitles and speech, as engine/reference.py reads
them), the words' share of the budget is taken first (`text_reserve`), ATA spends the rest, and the
cues of the segments given a rendition compete for that share (`plan_with_cues`), each kept clip's
words after its first timestamp: the rule memory mode follows (engine/recall.py `plan`,
engine/open_recall.py `plan_clips`), so memory mode equals reference mode with subtitles too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from tempo.engine.recall import AllocationPlan
from tempo.engine.reference import _batches, reference_result
from tempo.engine.result import TurnResult, timeline_rows
from tempo.engine.text_track import plan_with_cues, segment_words, text_reserve, token_counter
from tempo.models.ata import allocate_tokens, average_tokens_per_frame
from tempo.models.config import CONTEXT_MARGIN
from tempo.models.renditions import RenderedClip, Rendition, pick_rendition, render_clip
from tempo.settings import AskSettings
from tempo.streaming.segment import Segment
from tempo.streaming.subtitles import Cue, CueTrack
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
    text_track: CueTrack | None = None,
) -> TurnResult:
    """The reference mode of the open-weights family (module docstring); the same `TurnResult` as
    `answer_video`, with `tokens` in Qwen3-VL visual tokens, each row's `rendition` and the `cues` that
    entered the prompt (`text_track`: the video's cues)."""
    fam = model
    fam.check_question_fits(question)
    bs = batch_size or fam.config.compress_batch_size
    clock = {"decode_s": 0.0, "compress_s": 0.0, "allocate_s": 0.0, "answer_s": 0.0}
    t_start = time.perf_counter()
    kept: list[tuple[Segment, np.ndarray]] = []  # (segment without pixels, full-size frames)
    cues: dict[int, list[Cue]] = {}  # index -> the cues overlapping the segment
    score_parts: list[np.ndarray] = []
    bar = tqdm(desc="route", unit="seg", disable=not progress, leave=False)
    for batch in _batches(segments, bs, clock):
        t0 = time.perf_counter()
        scores, _ = fam.compress(batch, question, batch_size=bs)
        for seg in batch:
            kept.append((seg, fam.processor.compressor_frames(seg.frames)))
        if text_track is not None and len(text_track):
            cues.update({s.index: text_track.overlapping(s.start, s.end) for s in batch})
        clock["compress_s"] += time.perf_counter() - t0
        score_parts.append(scores)
        bar.update(len(batch))
    bar.close()

    t0 = time.perf_counter()
    scores = np.concatenate(score_parts) if score_parts else np.zeros(0, dtype=np.float32)
    plan, clips, texts = _fit_plan(fam, question, kept, scores, cues, settings)
    frames = np.array([seg.num_frames for seg, _ in kept], dtype=np.int64)
    clock["allocate_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    text = fam.answer_clips(
        question, clips, max_new_tokens=settings.max_new_tokens, temperature=settings.temperature, on_text=on_text,
        texts=texts if plan.cues else None,
    )
    clock["answer_s"] = time.perf_counter() - t0
    clock["total_s"] = time.perf_counter() - t_start

    first = kept[0][0] if kept else None
    return reference_result(
        timeline_rows(plan),
        text,
        question=question,
        source=source,
        model_id=model_id,
        sampling=str(first.extra.get("sampling", "stream")) if first else "stream",
        real_fps=None if first is None else float(first.sample_fps),
        settings=settings,
        tokens=int(plan.counts.sum()),
        avg_tokens_per_frame=average_tokens_per_frame(plan.counts, frames),
        anchors_dropped=sum(r is None for r in plan.renditions or ()),
        timings=clock,
        family=fam.family,
        tokens_unit=fam.tokens_unit,
    )


def _fit_plan(
    fam: Qwen3VLFamily,
    question: str,
    kept: Sequence[tuple[Segment, np.ndarray]],
    scores: np.ndarray,
    cues: dict[int, list[Cue]],
    settings: AskSettings,
) -> tuple[AllocationPlan, list[RenderedClip], list[str]]:
    """The plan (every segment a candidate, priced in renditions, carrying the cues that enter the
    prompt), its clips in time order and each clip's words. The words' share comes off the budget first,
    as from memory; then the context guard: while the whole prompt is over the answerer's context, the
    visual budget shrinks by the overflow."""
    reserve = text_reserve(settings.text_tokens, settings.budget, any(cues.values()))
    count = token_counter(fam)
    ladders = [fam.rendition_ladder(f) for _, f in kept]  # priced in what the answerer pays
    budget = settings.budget - reserve
    while True:
        _, renditions = plan_renditions(scores, ladders, budget=budget, min_tokens=settings.min_tokens)
        plan = AllocationPlan(
            indices=np.array([s.index for s, _ in kept], dtype=np.int64),
            starts=np.array([s.start for s, _ in kept], dtype=np.float64),
            ends=np.array([s.end for s, _ in kept], dtype=np.float64),
            relevance=scores.astype(np.float64),
            counts=np.array([r.tokens if r is not None else 0 for r in renditions], dtype=np.int64),
            candidate=np.ones(len(kept), dtype=bool),
            renditions=tuple(renditions),
        )
        if reserve:
            plan = plan_with_cues(plan, cues, cap=reserve, count=count)
        clips, texts = [], []
        for (seg, frames), r in zip(kept, renditions, strict=True):
            if r is not None:
                clips.append(render_clip(seg.index, frames, seg.timestamps, r))
                texts.append(segment_words(plan.cues.get(int(seg.index), ())))
        overflow = _prompt_tokens(fam, question, clips, texts) - (fam.config.context_limit - CONTEXT_MARGIN)
        if overflow <= 0 or budget <= 1:
            return plan, clips, texts
        budget = max(1, budget - overflow)  # the context guard: spend less until the prompt fits


def _prompt_tokens(fam: Qwen3VLFamily, question: str, clips: Sequence[RenderedClip], texts: Sequence[str]) -> int:
    """Tokens of the answerer's whole prompt for `clips` and their words (text, time tags, words and
    visual tokens)."""
    return int(fam.build_inputs(question, clips, texts)["input_ids"].shape[1])
