"""What the agent graph needs from the model and the memory, as one protocol.

The graph (`tempo.agent.graph`) only moves JSON-friendly values (segment indices, times, scores,
token counts, texts) between its nodes; everything heavy — FAISS, the SVLM pass, memory tokens, the
global LLM — stays behind this protocol, in the process that owns the model. In particular the
query-aware memory tokens computed by `compress` are kept by the backend (in its TTL cache keyed by
(stream, segment, question)) and reused by `answer`; the graph only ever sees their relevance.

Times are stream seconds (0 = the stream's first frame); segment indices are the memory's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypedDict, runtime_checkable

from tempo.agent.rewrite import StreamClock


class SegmentHit(TypedDict):
    """A retrieval candidate."""

    index: int
    start: float  # seconds
    end: float  # seconds
    score: float  # retrieval similarity; higher is closer


class AllocatedSegment(TypedDict):
    """One segment's share of the visual budget after ATA (DESIGN §2)."""

    index: int
    start: float  # seconds
    end: float  # seconds
    relevance: float  # 0..1 from the relevance head; anchors carry the backend's prior for them
    tokens: int  # memory tokens kept for this segment


class HistoryTurn(TypedDict):
    """A previous turn of the thread, as the rewrite model sees it."""

    question: str
    standalone_question: str
    answer: str


TextCallback = Callable[[str], None]


@runtime_checkable
class AgentBackend(Protocol):
    def stream_clock(self, stream: str) -> StreamClock:
        """The stream's covered duration (its "now", seconds) and wall-clock origin (Unix seconds of
        stream time 0, None for files), for resolving time words in questions. Raises
        `UnknownStreamError` (a TempoError) for an unknown stream."""
        ...

    def retrieve(
        self, stream: str, query: str, top_k: int, time_range: tuple[float, float] | None
    ) -> list[SegmentHit]:
        """The top_k segments closest to `query` (FAISS), restricted to segments overlapping
        `time_range` when given, plus their temporal neighbours (index ± 1 within the range); best
        first, no duplicates."""
        ...

    def compress(self, stream: str, question: str, indices: Sequence[int]) -> dict[int, float]:
        """The query-aware SVLM pass on these segments: relevance (0..1) per index. Results are cached
        per (stream, segment, question) with a TTL, so a repeated question costs no model call."""
        ...

    def allocate(self, stream: str, relevance_by_index: Mapping[int, float]) -> list[AllocatedSegment]:
        """ATA over the stream's whole timeline: the given segments by their relevance, every other
        segment a minimal anchor from its stored generic tokens; in time order."""
        ...

    def answer(
        self,
        stream: str,
        question: str,
        allocation: Sequence[AllocatedSegment],
        on_text: TextCallback | None,
    ) -> str:
        """The global LLM's answer (with `<t seconds>` time tags in its input), text pieces passed to
        `on_text` as they are generated; returns the whole text."""
        ...

    def rewrite_with_llm(self, history: Sequence[HistoryTurn], question: str) -> str:
        """The model's attempt at a standalone version of `question` given the thread's history (oldest
        first). May return anything: the graph validates it and falls back to a deterministic rewrite."""
        ...
