"""The typed values the agent graph and its backend (`tempo.agent.memory_backend.MemoryBackend`)
hand each other: retrieval candidates, allocation rows, history turns, the answer-text callback.

The step results that travel whole through the graph state (`Compression`: query-aware tokens;
`AllocationPlan`: the ATA plan) are tempo.engine.recall's, in channels that are never checkpointed;
what is checkpointed and returned (candidates, relevance, allocation rows, texts) is JSON-friendly.

Times are stream seconds (0 = the stream's first frame); segment indices are the memory's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict


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
