"""`TurnResult`: what one question gives back, whichever way it was asked.

`tempo ask --stream`, a thread turn (`tempo ask --thread`, `tempo chat`), REST, MCP, LangChain and alert
verification all return this one typed dict, and each renders it (CLI text or `--json`, an HTTP body,
a tool result). It is plain JSON: seconds as floats, segment indices of the memory, no tensors.

    segments   the whole timeline the answer saw, in time order: per segment its relevance (None for
               an anchor that was not recompressed for this question), the memory tokens ATA kept,
               and its kind ("candidate" or "anchor")
    evidence   the candidates among them, most relevant first (at most `AskSettings.evidence_segments`)
    candidates what retrieval returned (FAISS hits with their similarity, then temporal neighbours)

Citations are the times the answer mentions, on the timeline's segments (tempo.engine.citations).
In reference mode (`tempo ask VIDEO`, tempo.engine.reference) every segment is a candidate, `stream`
is None and `source` names the video. `timeline_rows` is the one conversion of an ATA plan into rows.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal, NotRequired

import numpy as np
from tempo.models.ata import average_tokens_per_frame
from typing_extensions import TypedDict  # pydantic (REST response models) needs it before Python 3.12

if TYPE_CHECKING:
    from tempo.engine.recall import AllocationPlan

SegmentKind = Literal["candidate", "anchor"]
TEMPO_FAMILY = "tempo"
TEMPO_TOKENS_UNIT = "memory tokens"


def family_of(model: object) -> str:
    """The family of a loaded model (`TEMPO_FAMILY` unless it says otherwise): the one test of which
    family wrote or reads a stream, for ingest, recall, reference mode, workers and the agent."""
    return str(getattr(model, "family", TEMPO_FAMILY))


class TimelineRow(TypedDict):
    """One segment of an answer's timeline (ATA made visible)."""

    index: int
    start: float  # seconds of stream time
    end: float  # seconds
    relevance: float | None  # 0..1 from the query-aware pass; None: an anchor, not scored for this question
    tokens: int  # memory tokens ATA kept for it
    kind: SegmentKind
    gap_before: float  # seconds without video right before this segment (0 when contiguous)
    # open weights (issue 23): {frames, width, height} the Qwen3-VL answerer read; None for Tempo
    rendition: dict[str, int] | None
    stream: str | None  # cross-stream (issue 22): the segment's stream; None in reference mode
    cues: list[dict[str, Any]]  # speech (issue 24): the cues (text, start, end, source, language) the prompt carried


class SegmentHit(TypedDict):
    """A retrieval candidate."""

    index: int
    start: float  # seconds
    end: float  # seconds
    score: float  # retrieval similarity (higher is closer); 0 for a temporal neighbour
    stream: str | None  # cross-stream (issue 22): the segment's stream; None in reference mode


class StreamTimeScope(TypedDict):
    """One stream's part of a cross-stream time scope: its time words read on its own clock."""

    start: float | None  # seconds; None when nothing of the stream is in the asked time
    end: float | None  # seconds
    phrase: str  # how its scope was read (with that stream's clock times for relative words)
    ranges: list[dict[str, float]]  # {start, end} each, ascending; [] : the stream adds nothing
    note: str | None  # why a stream adds nothing, or was searched whole; None otherwise


class TimeScope(TypedDict):
    start: float  # seconds
    end: float  # seconds
    phrase: str  # the question's words, "explicit" for a given range, "previous turn" when inherited
    # follow-ups (issue 21): every range looked at, {start, end} each, ascending (one for a single
    # range); start/end above are their envelope. Candidates are retrieved from each.
    ranges: list[dict[str, float]]
    # cross-stream (issue 22): each stream's own scope when its time words were read on its own clock
    # ("the last minute" of each); the keys above are then the union over the streams. Absent for one
    # stream, an explicit range, or a scope shared by every stream.
    streams: NotRequired[dict[str, StreamTimeScope]]


class TurnResult(TypedDict):
    """One answered question (see the module docstring)."""

    thread_id: str | None  # None: a one-shot question, outside any thread
    stream: str | None  # the memory stream asked about; None in reference mode (a video file)
    source: str | None  # reference mode: the video asked about (credentials redacted); None from memory
    model: str  # the model (checkpoint directory or hub id) that answered
    sampling: str  # how the frames were sampled: "stream" (the 2 fps grid of memory) or "release"
    real_fps: float | None  # sampled frames per second every time was computed with
    question: str
    standalone_question: str  # the question as asked, or a follow-up rewritten to stand alone
    rewrite_source: str  # "question" | "model" | "fallback" | "alerts"
    time_scope: TimeScope | None  # the stream time the answer looked at; None: the whole stream
    alerts_scope: dict[str, Any] | None  # for a question about alerts: the wall-clock scope read
    answer: str
    citations: list[dict[str, Any]]  # times in the answer, each on the segments it falls in
    segments: list[TimelineRow]
    evidence: list[TimelineRow]
    candidates: list[SegmentHit]
    top_relevance: float | None
    widened: bool
    widen_reason: str | None
    budget: int  # visual tokens B
    tokens: int  # memory tokens kept over the whole timeline
    avg_tokens_per_frame: float
    anchors_dropped: int  # anchors thinned out to keep the visual part within the budget
    gaps: list[dict[str, Any]]  # stretches with no video in scope, each with a "no video from ..." note
    cache_hits: int  # candidates whose query-aware pass came from the cache
    compressed: int  # candidates that ran through the compressor for this question
    answer_cached: bool
    timings: dict[str, float]  # seconds per step
    # open weights (issue 23): the model family that answered and the unit of `tokens`/`budget`
    family: str  # "tempo" | "qwen3-vl"
    tokens_unit: str  # "memory tokens" (Tempo) | "qwen3-vl visual tokens"
    streams: list[str] | None  # cross-stream (issue 22): the streams asked about; None in reference mode


def timeline_rows(plan: AllocationPlan, stream: str | None = None) -> list[TimelineRow]:
    """The plan's rows in time order, with candidates and anchors told apart (each of `stream`)."""
    rows: list[TimelineRow] = []
    previous_end: float | None = None
    renditions = plan.renditions if plan.renditions is not None else [None] * len(plan.indices)
    for i, s, e, r, k, c, rd in zip(
        plan.indices.tolist(),
        plan.starts.tolist(),
        plan.ends.tolist(),
        plan.relevance.tolist(),
        plan.counts.tolist(),
        plan.candidate.tolist(),
        renditions,
        strict=True,
    ):
        gap = 0.0 if previous_end is None else max(0.0, s - previous_end)
        rows.append(
            TimelineRow(
                index=int(i),
                start=round(float(s), 3),
                end=round(float(e), 3),
                relevance=round(float(r), 6) if c and not math.isnan(r) else None,
                tokens=int(k),
                kind="candidate" if c else "anchor",
                gap_before=round(gap, 3) if gap > 1e-3 else 0.0,
                rendition=None if rd is None else rd.to_dict(),
                stream=stream,
                cues=[c.to_dict() for c in plan.cues.get(int(i), ())],
            )
        )
        previous_end = float(e)
    return rows


def evidence_rows(rows: list[TimelineRow], limit: int) -> list[TimelineRow]:
    """The candidates of `rows`, most relevant first (ties: earlier first), at most `limit`."""
    scored = [r for r in rows if r["kind"] == "candidate" and r["relevance"] is not None]
    scored.sort(key=lambda r: (-float(r["relevance"] or 0.0), r["index"]))
    return scored[: max(0, limit)]


def tokens_per_frame(plan: AllocationPlan, fps: float, window: int) -> float:
    """Average memory tokens per sampled frame over the plan (a segment's frames: its duration × fps,
    at most a window; its end is its last frame plus one interval)."""
    frames = np.clip(np.rint((plan.ends - plan.starts) * fps), 1, window).astype(np.int64)
    return average_tokens_per_frame(plan.counts, frames)


def rounded_timings(timings: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in timings.items()}
