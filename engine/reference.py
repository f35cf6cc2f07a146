"""The reference mode end to end: every segment gets the query-aware pass, ATA, then the global LLM.

`answer_video(model, segments, question, settings=AskSettings())` is what `tempo ask VIDEO QUESTION`
runs; the memory-backed path (agent) reuses `ModelFamily.compress` / `ModelFamily.answer` with tokens
from Redis instead. Both give the one `TurnResult`; here every segment is a candidate, and no
retrieval ranked them (their `candidates` score is 0).

Words (issue 24): with a `text_track` (the video's subtitles: `tempo ask --subtitles PATH`, else the
sidecar VIDEO.srt/.vtt, plus the container's text subtitle streams, read as `tempo ingest` reads them),
each segment's overlapping cues compete for `settings.text_tokens` taken from the budget, exactly as
from memory (engine/recall.py `plan`), so memory mode equals reference mode with subtitles too. The
open-weights family follows the same rule over renditions (engine/renditions.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
from tempo.engine.citations import cite
from tempo.engine.recall import AllocationPlan
from tempo.engine.result import (
    TEMPO_FAMILY,
    TEMPO_TOKENS_UNIT,
    SegmentHit,
    TimelineRow,
    TurnResult,
    evidence_rows,
    family_of,
    rounded_timings,
    timeline_rows,
)
from tempo.engine.text_track import choose_prompt_cues, segment_words, token_counter
from tempo.models.ata import allocate_tokens, average_tokens_per_frame, truncate_memory
from tempo.models.family import ModelFamily
from tempo.settings import AskSettings
from tempo.streaming.segment import Segment
from tempo.streaming.subtitles import Cue, CueTrack
from tqdm import tqdm


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
    settings: AskSettings,
    source: str | None = None,
    model_id: str = "",
    batch_size: int | None = None,
    on_text: Callable[[str], None] | None = None,
    progress: bool = False,
    text_track: CueTrack | None = None,
) -> TurnResult:
    """Answer `question` about a whole video in the reference mode (DESIGN §2), with the question's
    `settings` (budget, ATA floor, answer length, temperature, text tokens); `source` and `model_id`
    name the video and the model in the result; `text_track`: the video's cues (subtitles, speech).

    Segments are consumed lazily and compressed in batches, so frames of a long video are never all
    in memory; only the (n, M, D) memory tokens are.
    """
    if family_of(model) != TEMPO_FAMILY:  # open weights: ATA over renditions
        from tempo.engine.renditions import answer_video_renditions

        return answer_video_renditions(
            model, segments, question, settings=settings, source=source, model_id=model_id,  # type: ignore[arg-type]
            batch_size=batch_size, on_text=on_text, progress=progress, text_track=text_track,
        )
    model.check_question_fits(question)  # before any compression: a too-long question fails in a second
    bs = batch_size or model.config.compress_batch_size
    clock = {"decode_s": 0.0, "compress_s": 0.0, "allocate_s": 0.0, "answer_s": 0.0}
    t_start = time.perf_counter()

    kept_meta: list[tuple[int, float, float, int, float]] = []  # index, start, end, frames, centre time
    cues: dict[int, list[Cue]] = {}  # index -> the cues overlapping the segment
    real_fps: float | None = None
    sampling = "stream"
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
        if text_track is not None and len(text_track):
            cues.update({s.index: text_track.overlapping(s.start, s.end) for s in batch})
        real_fps = batch[0].sample_fps
        sampling = str(batch[0].extra.get("sampling", "stream"))
        bar.update(len(batch))
    bar.close()

    t0 = time.perf_counter()
    scores = np.concatenate(score_parts) if score_parts else np.zeros(0, dtype=np.float32)
    memory = (
        torch.cat(memory_parts) if memory_parts else torch.zeros(0, model.num_memory_tokens, model.memory_dim)
    )
    reserve = min(int(settings.text_tokens), int(settings.budget) // 2) \
        if settings.text_tokens > 0 and any(cues.values()) else 0  # as from memory: words take their share
    counts = allocate_tokens(
        scores, tokens_per_segment=model.num_memory_tokens, budget=settings.budget - reserve,
        min_tokens=settings.min_tokens,
    )
    indices = np.array([m[0] for m in kept_meta], dtype=np.int64)
    chosen = choose_prompt_cues(indices, scores.astype(np.float64), np.ones(len(indices), dtype=bool), cues,
                                cap=reserve, count=token_counter(model)) if reserve else {}
    words = {"texts": [segment_words(chosen.get(int(i), ())) for i in indices]} if chosen else {}
    kept = truncate_memory(memory, counts)
    frames = np.array([meta[3] for meta in kept_meta], dtype=np.int64)
    avg = average_tokens_per_frame(counts, frames)
    clock["allocate_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    text = model.answer(
        question,
        [(meta[4], tokens) for meta, tokens in zip(kept_meta, kept, strict=True)],
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        on_text=on_text,
        **words,
    )
    clock["answer_s"] = time.perf_counter() - t0
    clock["total_s"] = time.perf_counter() - t_start

    plan = AllocationPlan(  # every segment a candidate: the reference compresses them all
        indices=indices,
        starts=np.array([m[1] for m in kept_meta], dtype=np.float64),
        ends=np.array([m[2] for m in kept_meta], dtype=np.float64),
        relevance=scores.astype(np.float64),
        counts=np.asarray(counts, dtype=np.int64),
        candidate=np.ones(len(kept_meta), dtype=bool),
        cues=chosen,
    )
    rows = timeline_rows(plan)
    return reference_result(
        rows,
        text,
        question=question,
        source=source,
        model_id=model_id,
        sampling=sampling,
        real_fps=real_fps,
        settings=settings,
        tokens=int(plan.counts.sum()),
        avg_tokens_per_frame=avg,
        anchors_dropped=0,
        timings=clock,
        family=TEMPO_FAMILY,
        tokens_unit=TEMPO_TOKENS_UNIT,
    )


def reference_result(
    rows: list[TimelineRow],
    text: str,
    *,
    question: str,
    source: str | None,
    model_id: str,
    sampling: str,
    real_fps: float | None,
    settings: AskSettings,
    tokens: int,
    avg_tokens_per_frame: float,
    anchors_dropped: int,
    timings: dict[str, float],
    family: str,
    tokens_unit: str,
) -> TurnResult:
    """The TurnResult of a question about a video file, whatever family answered: every segment a
    candidate, no stream, no thread, no retrieval (each row is its own candidate, similarity 0)."""
    return TurnResult(
        thread_id=None,
        stream=None,
        source=source,
        model=model_id,
        sampling=sampling,
        real_fps=None if real_fps is None else round(float(real_fps), 6),
        question=question,
        standalone_question=question,
        rewrite_source="question",
        time_scope=None,
        alerts_scope=None,
        answer=text,
        citations=[c.to_dict() for c in cite(text, rows)],
        segments=rows,
        evidence=evidence_rows(rows, settings.evidence_segments),
        candidates=[
            SegmentHit(index=r["index"], start=r["start"], end=r["end"], score=0.0, stream=None) for r in rows
        ],
        top_relevance=max((r["relevance"] or 0.0 for r in rows), default=None),
        widened=False,
        widen_reason=None,
        budget=settings.budget,
        tokens=tokens,
        avg_tokens_per_frame=round(avg_tokens_per_frame, 4),
        anchors_dropped=anchors_dropped,
        gaps=[],
        cache_hits=0,
        compressed=len(rows),
        answer_cached=False,
        timings=rounded_timings(timings),
        family=family,
        tokens_unit=tokens_unit,
        streams=None,
    )
