"""Retention: drop a stream's oldest segments past an age and/or size limit, without blocking ingest.

Deletion goes in small atomic batches (`RedisMemoryStore.trim_oldest`, one Lua script per batch of
at most `batch` segments), so Redis never stalls the ingester's commits for long, and the ingester
never waits for retention at all: `RetentionWorker` runs it on its own thread. The FAISS index
learns the new oldest segment (`first`) on its next `sync` and drops the removed ids.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from tempo.memory.records import RetentionPolicy
from tempo.memory.store import RedisMemoryStore

log = logging.getLogger(__name__)


def _segment_time(meta: dict[str, object]) -> float:
    """When a segment happened: capture wall clock (live) or commit time (files)."""
    wc = meta.get("wc")
    return float(wc if wc is not None else meta["c"])  # type: ignore[arg-type]


def enforce_retention(
    store: RedisMemoryStore,
    name: str,
    *,
    policy: RetentionPolicy | None = None,
    now: float | None = None,
    batch: int = 32,
    max_batches: int | None = None,
) -> int:
    """Remove the segments of `name` beyond its retention policy (or `policy`); returns how many.

    Works `batch` segments at a time, oldest first; stops after `max_batches` batches if given.
    """
    info = store.stream_info(name)
    policy = policy or info.retention
    if policy.unlimited:
        return 0
    removed = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        info = store.stream_info(name)
        if info.segments == 0:
            break
        count = 0
        if policy.max_bytes is not None and info.bytes.total > policy.max_bytes:
            per_segment = info.bytes.total / info.segments
            count = min(batch, math.ceil((info.bytes.total - policy.max_bytes) / per_segment))
        if policy.max_age is not None and count < batch:
            horizon = (time.time() if now is None else now) - policy.max_age
            lo = info.first + count
            probe = store.get_segments(
                name, range(lo, min(lo + batch - count, info.committed + 1)),
                tokens=False, embedding=False, recompress=False,
            )
            for record in probe:
                if record is None:
                    continue
                when = record.wallclock_start if record.wallclock_start is not None else record.committed_at
                if when is None or when >= horizon:
                    break
                count += 1
        if count <= 0:
            break
        removed += store.trim_oldest(name, count)
        batches += 1
    return removed


class RetentionWorker:
    """Enforces every stream's retention policy every `interval` seconds on a daemon thread."""

    def __init__(self, store: RedisMemoryStore, *, interval: float = 10.0, batch: int = 32) -> None:
        self.store = store
        self.interval = interval
        self.batch = batch
        self.removed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tempo-retention", daemon=True)

    def start(self) -> RetentionWorker:
        self._thread.start()
        return self

    def run_once(self) -> int:
        total = 0
        for info in self.store.list_streams():
            if info.retention.unlimited:
                continue
            # Small batches with a pause between them: ingest commits interleave freely.
            total += enforce_retention(self.store, info.name, batch=self.batch, max_batches=64)
        self.removed += total
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a transient Redis hiccup must not kill the thread
                log.exception("retention pass failed")
            self._stop.wait(self.interval)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> RetentionWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
