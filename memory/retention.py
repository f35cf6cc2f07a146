"""Retention: drop a stream's oldest segments past an age and/or size limit, without blocking ingest.

Deletion goes in small atomic batches (`trim_oldest`, one Lua script per batch of
at most `batch` segments), so Redis never stalls the ingester's commits for long, and the ingester
never waits for retention at all: `RetentionWorker` runs it on its own thread. The FAISS index
learns the new oldest segment (`first`) on its next `sync` and drops the removed ids.

Who runs it: `tempo ingest` (a worker for its stream while it ingests, then one bounded pass),
every long-running server (`TempoService.start_retention`: `tempo mcp`, `tempo serve`), and
`tempo memory gc` on demand (`collect_garbage`, one bounded pass over every stream).

Compaction (`RetentionPolicy.compact_after`) is the gentler tier: segments older than that keep
their metadata, embedding and proxy / file reference but only the first `compact_tokens` of their
stored token head (all an anchor reads), e.g. 30 days of a live stream at 16 → 4 tokens need about
2.6× less memory. It advances a per-stream pointer in the same small atomic batches.

The cold tier (`RetentionPolicy.cold_after`, memory/cold.py) moves older segments' token heads and
proxy clips out of Redis into checksummed shards per stream-hour, in the same bounded batches and
behind its own pointer (`cold_next`); trimming forgets the shards of hours no segment is left in.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence

from tempo.errors import TempoError
from tempo.memory import codec, scripts
from tempo.memory.cold import (
    SHARD_SECONDS,
    cold_position,
    cold_root,
    default_root,
    move_to_cold,
    mover_lease,
)
from tempo.memory.errors import UnknownStreamError, redis_errors
from tempo.memory.records import RetentionPolicy, SegmentRecord
from tempo.memory.store import RedisMemoryStore

log = logging.getLogger(__name__)

# One pass removes or compacts at most this many batches per stream (64 × 32 segments), so a pass
# holds Redis for many short scripts, never one long one, and ends; the next pass continues.
MAX_BATCHES_PER_PASS = 64


# ---- the atomic steps (memory/scripts.py's TRIM and COMPACT on the store's keys) -------------------
@redis_errors
def trim_oldest(store: RedisMemoryStore, name: str, count: int) -> int:
    """Remove up to `count` oldest segments of `name` in one atomic step; returns how many went."""
    trim = store.client.register_script(scripts.TRIM)
    keys_of = store.keys
    for _ in range(8):  # `first` moved under us (another trimmer): read again and retry
        info = store.stream_info(name)
        n = min(count, info.segments)
        if n <= 0:
            return 0
        indices = list(range(info.first, info.first + n))
        keys = [keys_of.info(name), keys_of.times(name), keys_of.gaps(name)]
        for i in indices:
            keys += [keys_of.segment(name, i), keys_of.tokens(name, i)]
        removed = int(trim(keys=keys, args=[info.first, *indices]))
        if removed >= 0:
            return removed
    return 0


@redis_errors
def compact_position(store: RedisMemoryStore, name: str) -> int:
    """The first segment index of `name` not yet compacted (the compaction pointer)."""
    return int(store.client.hget(store.keys.info(name), "compact_next") or 0)


@redis_errors
def compact_oldest(store: RedisMemoryStore, name: str, upto: int, tokens: int) -> int:
    """Shrink the stored token heads of segments [compact position, upto) to `tokens` tokens, in one
    atomic step; returns how many segments the compaction pointer advanced."""
    compact = store.client.register_script(scripts.COMPACT)
    for _ in range(8):
        info = store.stream_info(name)
        start = compact_position(store, name)
        lo = max(start, info.first)
        hi = min(upto, info.committed + 1)
        if hi <= lo:
            return 0
        keep = tokens * codec.token_record_bytes(info.settings.token_dim)
        keys = [store.keys.info(name)] + [store.keys.tokens(name, i) for i in range(lo, hi)]
        # Step over already-removed segments too (the pointer moves from `start` to `hi`).
        if int(compact(keys=keys, args=[start, keep, hi - start])) >= 0:
            return hi - start
    return 0


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
    Then compacts (policy.compact_after) the token heads of old segments the same way, then moves
    older ones to the cold tier (policy.cold_after).
    """
    info = store.stream_info(name)
    policy = policy or info.retention
    if policy.unlimited:
        return 0
    removed = 0
    batches = 0
    while (policy.max_age is not None or policy.max_bytes is not None) and (
        max_batches is None or batches < max_batches
    ):
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
                if _when(record) >= horizon:
                    break
                count += 1
        if count <= 0:
            break
        removed += trim_oldest(store, name, count)
        batches += 1
    if policy.compact_after is not None:
        horizon = (time.time() if now is None else now) - policy.compact_after
        while max_batches is None or batches < max_batches:
            lo, old = _older_run(store, name, compact_position(store, name), batch, horizon)
            if old == 0:
                break
            compact_oldest(store, name, lo + old, policy.compact_tokens)
            batches += 1
    if policy.cold_after is not None:
        horizon = (time.time() if now is None else now) - policy.cold_after
        root = policy.cold_url or default_root(store.home)
        with mover_lease(store, name) as mine:  # another process moving this stream: its turn
            while mine and (max_batches is None or batches < max_batches):
                lo, old = _older_run(store, name, cold_position(store, name), batch, horizon)
                if old == 0:
                    break
                move_to_cold(store, name, range(lo, lo + old), root)
                batches += 1
    if removed:
        _forget_trimmed_shards(store, name)
    return removed


def _older_run(store: RedisMemoryStore, name: str, pointer: int, batch: int, horizon: float) -> tuple[int, int]:
    """(lo, n): the segments [lo, lo + n) from a tier's pointer (at most `batch`) that happened
    before `horizon` (Unix seconds); removed ones count as old, so the pointer steps over them."""
    info = store.stream_info(name)
    lo = max(pointer, info.first)
    probe = store.get_segments(
        name, range(lo, min(lo + batch, info.committed + 1)), tokens=False, embedding=False, recompress=False
    )
    old = 0
    for record in probe:
        if record is not None and _when(record) >= horizon:
            break
        old += 1
    return lo, old


def _forget_trimmed_shards(store: RedisMemoryStore, name: str) -> None:
    """Delete the stream's cold-tier shards of hours before its oldest retained segment's (every
    segment in them is gone: starts grow with the index)."""
    root = cold_root(store, name)
    info = store.stream_info(name)
    if root is None or info.start is None:
        return
    store.cold.shards(root).remove_before(info.number, int(info.start // SHARD_SECONDS))


def collect_garbage(
    store: RedisMemoryStore,
    streams: Sequence[str] | None = None,
    *,
    now: float | None = None,
    batch: int = 32,
    max_batches: int | None = MAX_BATCHES_PER_PASS,
) -> dict[str, int]:
    """One retention pass over `streams` (default: every stream with a policy): {name: removed}.

    A stream deleted meanwhile is skipped. Bounded by `max_batches` per stream (None: until done).
    """
    names = [info.name for info in store.list_streams() if not info.retention.unlimited] if streams is None else streams
    removed: dict[str, int] = {}
    for name in names:
        try:
            removed[name] = enforce_retention(store, name, now=now, batch=batch, max_batches=max_batches)
        except UnknownStreamError:
            continue
    return removed


def _when(record: SegmentRecord) -> float:
    """When a segment happened: capture wall clock (live) or commit time (files), Unix seconds."""
    if record.wallclock_start is not None:
        return record.wallclock_start
    return record.committed_at if record.committed_at is not None else 0.0


class RetentionWorker:
    """Enforces the retention policy of every stream (or of `streams`) every `interval` seconds on a
    daemon thread, one bounded pass at a time.

    `store` may be a function giving the store: a server then starts even while Redis is down (its
    tools answer with the reason), and retention starts working once Redis answers.
    """

    def __init__(
        self,
        store: RedisMemoryStore | Callable[[], RedisMemoryStore],
        *,
        interval: float = 10.0,
        batch: int = 32,
        streams: Sequence[str] | None = None,
    ) -> None:
        self._store = store
        self.interval = interval
        self.batch = batch
        self.streams = None if streams is None else list(streams)
        self.removed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tempo-retention", daemon=True)

    def start(self) -> RetentionWorker:
        """Start the thread (once: `with service.start_retention():` enters a started worker)."""
        if self._thread.ident is None:
            self._thread.start()
        return self

    def run_once(self) -> int:
        # Small batches with a pause between them: ingest commits interleave freely.
        store = self._store if isinstance(self._store, RedisMemoryStore) else self._store()
        total = sum(collect_garbage(store, self.streams, batch=self.batch).values())
        self.removed += total
        return total

    def _run(self) -> None:
        said = None
        while not self._stop.is_set():
            try:
                self.run_once()
                said = None
            except TempoError as exc:  # Redis down or unreachable: say so once, try again later
                if str(exc) != said:
                    log.warning("retention pass skipped: %s", exc)
                    said = str(exc)
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
