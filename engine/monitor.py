"""`SegmentMonitor`: the one protocol for standing questions scored as segments are ingested.

Both ingest paths drive a monitor (tempo.agent.monitoring.RuleMonitor implements it):

- the single-process ingest (engine/ingest.py), per batch on its model thread: `queries()` →
  `encode_batch` scores them in the generic pass → `observe(batch, scores)` returns, per segment,
  the script to commit with it → the writer thread calls `committed(records)` → `idle()`;
- a queue worker (engine/worker.py), which makes a monitor afresh from Redis for each use (other
  workers move the stream's rule state): `queries()` and `rule_ids()` → `encode_batch` → the landing
  steps the rules over each segment it commits with `observe_scored(...)` → `landed()` → `idle()`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    from tempo.memory.records import SegmentRecord
    from tempo.streaming.segment import Segment

# What to queue in the transaction that commits a segment (its rule state and alert events), or None.
Then = Callable[[Any], None] | None


class SegmentMonitor(Protocol):
    """A stream's standing questions (rules), scored on every segment an ingest or a worker commits."""

    def queries(self) -> list[str]:
        """The texts to score on the next batch besides the generic query (re-read cheaply per batch)."""
        ...

    def rule_ids(self) -> list[str]:
        """The ids of the rules of the last `queries()`, in the same order as its texts."""
        ...

    def observe(self, batch: Sequence[Segment], scores: np.ndarray) -> list[Then]:
        """scores (n, R) of the last `queries()`; per segment, what to commit with it (or None)."""
        ...

    def observe_scored(
        self, index: int, start: float, end: float, wallclock_start: float | None, scores: dict[str, float]
    ) -> Then:
        """`observe` of one segment a work-queue landing commits, with rule id → score as its worker
        scored them (seconds for `start`/`end`, Unix seconds for `wallclock_start`)."""
        ...

    def committed(self, records: Sequence[SegmentRecord]) -> None:
        """The single-process writer committed `records` (called from its thread)."""
        ...

    def landed(self) -> None:
        """The work-queue landing that queued `observe_scored`'s scripts committed."""
        ...

    def idle(self) -> None:
        """Work for the model thread between batches (e.g. verifying an alert with the global LLM)."""
        ...
