"""What the agent graph needs from the model and the memory, as one protocol.

Each method is one step of tempo.memory.recall's pipeline. The typed results a step hands to the
next (`Compression`: query-aware tokens; `AllocationPlan`: the ATA plan) travel whole through the
graph state in channels that are never checkpointed; what is checkpointed and returned (candidates,
relevance, allocation rows, texts) is JSON-friendly.

Times are stream seconds (0 = the stream's first frame); segment indices are the memory's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypedDict, runtime_checkable

from tempo.agent.timescope import StreamClock
from tempo.memory.recall import AllocationPlan, Compression


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

    def compress(self, stream: str, question: str, indices: Sequence[int]) -> Compression:
        """The query-aware SVLM pass on these segments: relevance (0..1) and tokens per index. Results
        are cached per (stream, segment, question) with a TTL, so a repeated question costs no model call."""
        ...

    def allocate(self, stream: str, compression: Compression) -> AllocationPlan:
        """ATA over the stream's whole timeline: the compressed segments by their relevance, every
        other segment a minimal anchor from its stored generic tokens; in time order."""
        ...

    def answer(
        self,
        stream: str,
        question: str,
        plan: AllocationPlan,
        compression: Compression,
        on_text: TextCallback | None,
    ) -> str:
        """The global LLM's answer (with `<t seconds>` time tags in its input), text pieces passed to
        `on_text` as they are generated; returns the whole text."""
        ...

    def rewrite_with_llm(self, history: Sequence[HistoryTurn], question: str) -> str:
        """The model's attempt at a standalone version of `question` given the thread's history (oldest
        first). May return anything: the graph validates it and falls back to a deterministic rewrite."""
        ...
