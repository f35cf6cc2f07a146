"""Answering from memory in the open-weights family (issue 23): ATA over renditions on a stream.

The steps of `RecallPipeline` stay (retrieve, the router's pass on the candidates through the query
cache, plan, answer); for a `Qwen3VLFamily` two of them change, through the hooks in engine/recall.py:

- `plan_memory_renditions`: every anchor gets the smallest rendition of its segment (one small
  frame); the candidates share the rest of the budget by ATA in Qwen3-VL visual tokens, each getting
  the costliest rendition within its allocation (`plan_renditions`, the reference mode's own rule, so
  with every segment a candidate this is the reference mode). The plan's counts are the renditions'
  costs and it carries the renditions.
- `answer_memory_renditions`: the planned segments' frames (re-read from the file, or the proxies of
  a live source: memory/replay.py) rendered at their renditions, in time order, to the answerer, each
  with the words the plan carries for it (`plan.cues`, after its first timestamp).
- `price_renditions` / `plan_clips`: the same two steps for a plan of several streams
  (tempo.engine.multi: one budget over all their segments; clips whose timestamps name their stream).

A stream remembers the family that wrote it (`StreamSettings.family`); asking it with the other
family is refused in one sentence (`check_stream_family`): Tempo anchors are memory tokens, this
family's are frames, so neither can read the other's memory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from tempo.engine.renditions import fit_anchors, plan_renditions
from tempo.engine.text_track import segment_words
from tempo.errors import InvalidInputError
from tempo.memory.replay import load_segments
from tempo.models.renditions import RenderedClip, Rendition, render_clip

if TYPE_CHECKING:
    from tempo.engine.recall import AllocationPlan
    from tempo.memory.store import RedisMemoryStore
    from tempo.memory.store_types import StreamInfo
    from tempo.models.qwen3vl_family import Qwen3VLFamily
    from tempo.streaming.segment import Segment


def family_of(model: Any) -> str:
    """The family of a loaded model ("tempo" unless it says otherwise)."""
    return str(getattr(model, "family", "tempo"))


def check_stream_family(info: StreamInfo, model: Any) -> None:
    """InvalidInputError (one sentence) when the stream was written by another family than `model`'s."""
    wrote, asks = info.settings.family, family_of(model)
    if wrote != asks:
        raise InvalidInputError(
            f"stream {info.name!r} was ingested by the {wrote} family and this model is {asks}: ask it with a "
            f"{wrote} checkpoint, or ingest the source again under a new stream name with this one"
        )


def _ladders(open_family: Qwen3VLFamily, segments: list[Segment]) -> tuple[list[list[Rendition]], list[np.ndarray]]:
    frames = [open_family.processor.compressor_frames(s.frames) for s in segments]
    return [open_family.rendition_ladder(f) for f in frames], frames


def plan_memory_renditions(
    open_family: Qwen3VLFamily,
    store: RedisMemoryStore,
    info: StreamInfo,
    plan: AllocationPlan,
    *,
    budget: int,
    min_tokens: int,
) -> AllocationPlan:
    """`plan` (the timeline's rows, candidates and anchors) priced in renditions (module docstring)."""
    segments = load_segments(store, info, plan.indices.tolist()) if len(plan.indices) else []
    return price_renditions(open_family, segments, plan, budget=budget, min_tokens=min_tokens)


def price_renditions(
    open_family: Qwen3VLFamily, segments: list[Segment], plan: AllocationPlan, *, budget: int, min_tokens: int
) -> AllocationPlan:
    """`plan` priced in renditions, `segments` being its rows' segments in row order (of one stream, or
    of several in a cross-stream plan: one budget over all of them)."""
    if len(plan.indices) == 0:
        return dataclasses.replace(plan, renditions=())
    ladders, _ = _ladders(open_family, segments)
    renditions: list[Rendition | None] = [None] * len(ladders)
    anchors = np.flatnonzero(~plan.candidate)
    smallest = np.array([ladders[row][0].tokens for row in anchors], dtype=np.int64)
    fit = fit_anchors(plan.indices[anchors], smallest, budget)  # anchors take at most half the budget
    for row in anchors[fit]:
        renditions[row] = ladders[row][0]
    spent = int(smallest[fit].sum())
    cands = np.flatnonzero(plan.candidate)
    if len(cands):
        _, picked = plan_renditions(
            plan.relevance[cands], [ladders[r] for r in cands], budget=max(0, budget - spent), min_tokens=min_tokens
        )
        for row, r in zip(cands, picked, strict=True):
            renditions[row] = r
    costs = np.array([r.tokens if r is not None else 0 for r in renditions], dtype=np.int64)
    dropped = plan.anchors_dropped + int((~fit).sum())
    return dataclasses.replace(plan, counts=costs, renditions=tuple(renditions), anchors_dropped=dropped)


def answer_memory_renditions(
    open_family: Qwen3VLFamily,
    store: RedisMemoryStore,
    info: StreamInfo,
    plan: AllocationPlan,
    question: str,
    *,
    max_new_tokens: int,
    temperature: float,
    on_text: Callable[[str], None] | None = None,
) -> str:
    """The answer from the plan's segments at their renditions (time order), with stream times, each
    with the words the plan carries for it (`plan.cues`) after its first timestamp."""
    clips, texts = plan_clips(open_family, store, info, plan)
    return open_family.answer_clips(
        question, clips, max_new_tokens=max_new_tokens, temperature=temperature, on_text=on_text, texts=texts
    )


def plan_clips(
    open_family: Qwen3VLFamily, store: RedisMemoryStore, info: StreamInfo, plan: AllocationPlan,
    stream: str | None = None,
) -> tuple[list[RenderedClip], list[str]]:
    """The plan's segments rendered at their renditions (time order), and each one's words; `stream`
    names the stream in the clips' time tags (a cross-stream ask)."""
    rows = [i for i, r in enumerate(plan.renditions or ()) if r is not None]
    segments = load_segments(store, info, [int(plan.indices[i]) for i in rows])
    clips: list[RenderedClip] = []
    for row, seg in zip(rows, segments, strict=True):
        frames = open_family.processor.compressor_frames(seg.frames)
        clips.append(render_clip(seg.index, frames, seg.timestamps, plan.renditions[row], stream))  # type: ignore[index,arg-type]
    texts = [segment_words(plan.cues.get(int(plan.indices[row]), ())) for row in rows]
    return clips, texts
