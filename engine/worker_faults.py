"""Faults a queue worker or producer rides out: dead jobs' gaps, and Redis going away and coming back.

- A dead-lettered job always becomes a gap at its place (`record_gap`), from its metadata or, when
  that is unreadable, from the entry's plain `place` field (memory/jobcheck.py), so the jobs after it
  land instead of staying staged with the stream "behind". A dead job of a stream that does not exist
  yet (its first jobs were poison) is remembered in the queue's state (`gap:{index}`) and landed by
  the worker that creates the stream (`land_orphan_gaps`).
- Redis restarts (`tempo memory stop; start`, a `kill -9` of redis-server, a failover): `RedisOutage`
  turns each failed round into a one-line notice and a wait with backoff (0.5 s doubling to 10 s),
  then one line when Redis answers again. Nothing is lost: jobs not acknowledged stay pending and are
  claimed again; a producer pushes again what it had not pushed (a job pushed twice lands once).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import redis
from tempo.memory.errors import MemoryUnavailableError
from tempo.memory.jobcheck import parse_place, place_field
from tempo.memory.jobqueue import Job

if TYPE_CHECKING:
    from tempo.engine.worker import Worker

log = logging.getLogger(__name__)

# What Redis going away looks like, through redis-py or through the store's one-sentence errors.
REDIS_DOWN: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError, MemoryUnavailableError)


def _lease_of(worker: Worker, job: Job) -> str:
    """The writer lease token the job's producer held: its settings', else the queue's record of it."""
    try:
        return job.spec.lease
    except (KeyError, TypeError, ValueError):
        return worker.queue.state(job.stream).get("lease", "")


def record_gap(worker: Worker, job: Job) -> None:
    """Record a dead job's stretch of time as a gap at its place (see the module doc)."""
    place = job.gap_place()
    if place is None:
        log.warning("dead job %s of stream %r: its place in the stream is unreadable, so no gap is recorded",
                    job.entry_id, job.stream)
        return
    lease = _lease_of(worker, job)
    if job.problem() is None:
        worker._open_stream(job)  # a good job that kept failing: the stream is made as for any job
    store = worker.store
    if not store.client.exists(store.keys.info(job.stream)):
        # No stream yet: whoever creates it lands this gap first (land_orphan_gaps).
        worker.queue.client.hset(worker.queue.k_state(job.stream), f"gap:{place[0]}", place_field(*place))
        if not store.client.exists(store.keys.info(job.stream)):
            return
        land_orphan_gaps(worker, job.stream, lease)  # created meanwhile: its creator may have looked already
        return
    store.land_segments([], lease=lease, skipped=[job.skipped_record()])


def land_orphan_gaps(worker: Worker, stream: str, lease: str) -> None:
    """Land the gaps of dead jobs recorded before `stream` existed, then forget them."""
    queue = worker.queue
    state = queue.client.hgetall(queue.k_state(stream))
    orphans = {k: v for k, v in state.items() if k.startswith(b"gap:")}
    if not orphans:
        return
    records = []
    for raw in orphans.values():
        place = parse_place(raw)
        if place is not None:
            job = Job(queue.k_jobs(stream), stream, "", {}, None, place=place)
            records.append(job.skipped_record())
    if records:
        worker.store.land_segments([], lease=lease, skipped=records)
    queue.client.hdel(queue.k_state(stream), *orphans)


class RedisOutage:
    """One-line notices and backoff while Redis is unreachable (see the module doc). `wait()` after a
    failed round: returns False when `stop` was set meanwhile. `ok()` after a round that worked."""

    def __init__(
        self, who: str, stop: threading.Event | None = None, *, first: float = 0.5, most: float = 10.0
    ) -> None:
        self.who, self.stop = who, stop
        self.first, self.most = first, most
        self.delay = 0.0
        self.since: float | None = None

    def wait(self, exc: BaseException) -> bool:
        if self.since is None:
            self.since = time.monotonic()
            log.warning("%s lost its connection to Redis (%s); reconnecting with backoff", self.who,
                        type(exc).__name__)
        self.delay = min(self.most, self.delay * 2 if self.delay else self.first)
        if self.stop is not None:
            return not self.stop.wait(self.delay)
        time.sleep(self.delay)
        return True

    def ok(self) -> None:
        if self.since is not None:
            log.warning("%s reconnected to Redis after %.1f s", self.who, time.monotonic() - self.since)
            self.since, self.delay = None, 0.0
