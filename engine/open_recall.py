"""Answering from memory in the open-weights family (issue 23): ATA over renditions on a stream.

The steps of `RecallPipeline` stay (retrieve, the router's pass on the candidates through the query
cache, plan, answer); for a `Qwen3VLFamily` two of them change, through the hooks in engine/recall.py:

- `plan_memory_renditions`: every anchor gets the smallest rendition of its segment (one small
  frame); the candidates share the rest of the budget by ATA in Qwen3-VL visual tokens, each getting
  the costliest rendition within its allocation (`plan_renditions`, the reference mode's own rule, so
  with every segment a candidate this is the reference mode). The plan's counts are the renditions'
  costs and it carries the renditions.
- `answer_memory_renditions`: the planned segments' frames rendered at their renditions, in time
  order, to the answerer, each with the words the plan carries for it (`plan.cues`, after its first
  timestamp). A candidate's frames are re-read from the file (or the proxies of a live source:
  memory/replay.py); an anchor's one small frame is the thumbnail ingest stored with the segment
  (`anchor_thumbnail`, memory/thumbnails.py: the same pixels, without decoding the file;
  bench/open_weights.py --anchors measures both), re-read only where none is stored or where the
  answerer prices frames otherwise (a remote answerer's image sizes).
- `price_renditions` / `plan_clips`: the same two steps for a plan of several streams
  (tempo.engine.multi: one budget over all their segments; clips whose timestamps name their stream).

The renditions are priced from the segments' stored frame sizes and counts (`ladders`), so planning
reads no frames at all.

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
from tempo.engine.result import TEMPO_FAMILY, family_of
from tempo.engine.text_track import segment_words
from tempo.errors import InvalidInputError
from tempo.memory.errors import RecompressError
from tempo.memory.replay import load_segments
from tempo.memory.thumbnails import decode_thumbnail, encode_thumbnail
from tempo.models.renditions import RenderedClip, Rendition, render_clip, rendition_ladder

if TYPE_CHECKING:
    from tempo.engine.recall import AllocationPlan
    from tempo.memory.records import SegmentRecord
    from tempo.memory.store import RedisMemoryStore
    from tempo.memory.store_types import StreamInfo
    from tempo.models.processor import SegmentVideoProcessor
    from tempo.models.qwen3vl_family import Qwen3VLFamily
    from tempo.streaming.segment import Segment


def check_stream_family(info: StreamInfo, model: Any) -> None:
    """InvalidInputError (one sentence) when the stream was written by another family than `model`'s."""
    wrote, asks = info.settings.family, family_of(model)
    if wrote != asks:
        raise InvalidInputError(
            f"stream {info.name!r} was ingested by the {wrote} family and this model is {asks}: ask it with a "
            f"{wrote} checkpoint, or ingest the source again under a new stream name with this one"
        )


def _factor(processor: SegmentVideoProcessor) -> int:
    return processor.config.patch_size * processor.config.merge_size


def anchor_thumbnail(processor: SegmentVideoProcessor, segment: Segment) -> bytes:
    """The segment's anchor, its smallest rendition (one frame, one token high), as ingest stores it:
    exactly the pixels `render_clip` makes of the segment's frames for that rendition (its first frame).

    The processor resizes each frame on its own, to a size that depends on the clip's frame count only
    through a cap; where one frame gets the same size as the whole clip, only the first frame is
    resized (an eighth of the work at ingest)."""
    count, height, width = segment.frames.shape[:3]
    size = processor.frame_size(width, height, num_frames=count)  # (w, h) of the whole clip's frames
    first_alone = processor.frame_size(width, height, num_frames=1) == size
    frames = processor.compressor_frames(segment.frames[:1] if first_alone else segment.frames)
    smallest = rendition_ladder(count, size[1], size[0], factor=_factor(processor))[0]
    return encode_thumbnail(render_clip(segment.index, frames[:1], segment.timestamps[:1], smallest).frames[0])


def stored_anchor(family: str, processor: Any, segment: Segment) -> bytes | None:
    """What a segment of a stream written by `family` commits as its anchor thumbnail: the open
    family's (`anchor_thumbnail`, with its processor); None for Tempo (its anchors are memory tokens)."""
    return None if family == TEMPO_FAMILY else anchor_thumbnail(processor, segment)


def ladders(open_family: Qwen3VLFamily, records: list[SegmentRecord]) -> list[list[Rendition]]:
    """Each segment's renditions from its stored frame size and count (no frames read), priced in what
    the answerer pays (`Qwen3VLFamily.ladder`: video tokens, or a remote answerer's image tokens)."""
    out = []
    for r in records:
        width, height = open_family.processor.frame_size(r.frame_size[1], r.frame_size[0], num_frames=r.num_frames)
        out.append(open_family.ladder(r.num_frames, height, width))
    return out


def records_of(store: RedisMemoryStore, info: StreamInfo, indices: list[int]) -> list[SegmentRecord]:
    """The segments' records (no tokens, embeddings or references), or RecompressError for one gone."""
    records = store.get_segments(info.name, indices, tokens=False, embedding=False, recompress=False)
    missing = [i for i, r in zip(indices, records, strict=True) if r is None]
    if missing:
        raise RecompressError(f"segment {missing[0]} of stream {info.name!r} is no longer in memory")
    return records  # type: ignore[return-value]


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
    found = records_of(store, info, plan.indices.tolist()) if len(plan.indices) else []
    return price_renditions(ladders(open_family, found), plan, budget=budget, min_tokens=min_tokens)


def price_renditions(
    rungs: list[list[Rendition]], plan: AllocationPlan, *, budget: int, min_tokens: int
) -> AllocationPlan:
    """`plan` priced in renditions, `rungs` being its rows' rendition ladders in row order (of one
    stream, or of several in a cross-stream plan: one budget over all of them)."""
    if len(plan.indices) == 0:
        return dataclasses.replace(plan, renditions=())
    renditions: list[Rendition | None] = [None] * len(rungs)
    anchors = np.flatnonzero(~plan.candidate)
    smallest = np.array([rungs[row][0].tokens for row in anchors], dtype=np.int64)
    fit = fit_anchors(plan.indices[anchors], smallest, budget)  # anchors take at most half the budget
    for row in anchors[fit]:
        renditions[row] = rungs[row][0]
    spent = int(smallest[fit].sum())
    cands = np.flatnonzero(plan.candidate)
    if len(cands):
        _, picked = plan_renditions(
            plan.relevance[cands], [rungs[r] for r in cands], budget=max(0, budget - spent), min_tokens=min_tokens
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
    """The plan's segments at their renditions, in time order, and each one's words; `stream` names the
    stream in the clips' time tags (a cross-stream ask). Anchors come from their stored thumbnails where
    the thumbnail is the rendition asked for; everything else (candidates, anchors stored without one)
    from frames read again."""
    renditions = plan.renditions or ()
    rows = [i for i, r in enumerate(renditions) if r is not None]
    indices = [int(plan.indices[i]) for i in rows]
    thumbs = store.anchor_thumbnails(info.name, indices)
    clips: dict[int, RenderedClip] = {}
    from_thumbs = [j for j, row in enumerate(rows) if thumbs[j] is not None and not plan.candidate[row]]
    if from_thumbs:
        for j, record in zip(from_thumbs, records_of(store, info, [indices[j] for j in from_thumbs]), strict=True):
            rendition: Rendition = renditions[rows[j]]  # type: ignore[assignment]
            try:
                frame = decode_thumbnail(thumbs[j])  # type: ignore[arg-type]
            except ValueError as exc:
                raise RecompressError(f"segment {record.index} of stream {info.name!r}: {exc}") from exc
            if rendition.frames == 1 and frame.shape[:2] == (rendition.height, rendition.width):
                clips[j] = RenderedClip(record.index, frame[None], (float(record.timestamps[0]),), rendition, stream)
    reread = [j for j in range(len(rows)) if j not in clips]
    for j, seg in zip(reread, load_segments(store, info, [indices[j] for j in reread]), strict=True):
        frames = open_family.processor.compressor_frames(seg.frames)
        clips[j] = render_clip(seg.index, frames, seg.timestamps, renditions[rows[j]], stream)  # type: ignore[arg-type]
    texts = [segment_words(plan.cues.get(int(plan.indices[row]), ())) for row in rows]
    return [clips[j] for j in range(len(rows))], texts
