"""Prometheus metrics of the work queue: `QueueCollector` reads `JobQueue.status` at scrape time."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import redis
from tempo.errors import TempoError
from tempo.memory.jobqueue import JobQueue
from tempo.memory.store import RedisMemoryStore

log = logging.getLogger(__name__)


class QueueCollector:
    """Prometheus collector of `JobQueue.status`, read from Redis at scrape time. Register it in any
    prometheus_client registry: `registry.register(QueueCollector(store))` (`tempo serve` does).
    `store` may be a callable returning the store, so registering connects to nothing."""

    def __init__(self, store: RedisMemoryStore | Callable[[], RedisMemoryStore]) -> None:
        self._store = store

    def describe(self) -> list[Any]:
        return []  # no fixed description: a scrape reads Redis (avoids a Redis call at register time)

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        try:
            store = self._store if isinstance(self._store, RedisMemoryStore) else self._store()
            status = JobQueue.for_store(store).status(store)
        except (TempoError, redis.RedisError) as exc:  # Redis down: the rest of /metrics still answers
            log.warning("work-queue metrics unavailable: %s", exc)
            return
        gauges = {
            "queued": "jobs in the stream's queue (not yet acknowledged)",
            "pending": "jobs delivered to a worker and not yet acknowledged",
            "lag": "jobs not yet delivered to any worker",
            "behind": "segments produced but not yet contiguously committed",
            "dead_letters": "jobs in the stream's dead-letter stream",
        }
        for field_name, doc in gauges.items():
            g = GaugeMetricFamily(f"tempo_queue_{field_name}", doc, labels=["stream"])
            for name, row in status["streams"].items():
                g.add_metric([name], row[field_name])
            yield g
        dropped = CounterMetricFamily("tempo_queue_dropped", "live jobs dropped by backpressure", labels=["stream"])
        for name, row in status["streams"].items():
            dropped.add_metric([name], row["dropped"])
        yield dropped
        segs = CounterMetricFamily("tempo_worker_segments", "segments committed by the worker", labels=["worker"])
        busy = CounterMetricFamily("tempo_worker_busy_seconds", "seconds the worker spent on jobs", labels=["worker"])
        for consumer, row in status["workers"].items():
            segs.add_metric([consumer], row["segments"])
            busy.add_metric([consumer], row["busy_seconds"])
        yield segs
        yield busy
