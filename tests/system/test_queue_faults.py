"""Faults in the work queue, with the tiny model and real Redis: poison jobs in a batch, a stream whose
first job is poison, and a worker and a producer riding out a Redis restart (kill -9 of redis-server)."""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from tempo.engine.producer import produce
from tempo.engine.worker import Worker
from tempo.memory import RedisMemoryStore
from tempo.memory.embedded import spawn_redis_server
from tempo.memory.jobqueue import Job, JobQueue, JobSpec, QueueSettings
from tempo.service import TempoService
from tempo.streaming import SamplingConfig
from tempo.streaming.synthetic import write_test_video

SPEC = JobSpec(sampling=SamplingConfig())


@pytest.fixture(scope="module")
def model(redis_server: str, tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> TempoService:
    """The tiny model and embedder (loaded once); each test's worker has its own store."""
    service = TempoService(model=str(tiny_checkpoint), redis_url=redis_server, home=tmp_path_factory.mktemp("home"))
    service.model  # noqa: B018 (loaded here, once)
    service.embedder  # noqa: B018
    return service


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_video(tmp_path_factory.mktemp("faults") / "v.mp4", duration=20.0, size=(96, 64))


def _worker(model: TempoService, store: RedisMemoryStore, queue: JobQueue) -> Worker:
    return Worker(queue, store, model=model.model, embedder=model.embedder, model_id=model.model_name, batch_size=8)


def _tamper(client: redis.Redis, key: str, index: int, change: Callable[[dict[bytes, bytes]], None]) -> None:
    """Replace job `index`'s entry by a damaged copy (as anything with access to Redis could)."""
    eid, fields = next((e, f) for e, f in client.xrange(key) if json.loads(f[b"job"])["index"] == index)
    fields = dict(fields)
    change(fields)
    client.xdel(key, eid)
    client.xadd(key, fields)  # type: ignore[arg-type]


def _huge_header(fields: dict[bytes, bytes]) -> None:
    fields[b"frames"] = fields[b"frames"][:4] + np.array([1000, 10000, 10000], "<u4").tobytes() + fields[b"frames"][16:]


def _bad_json(fields: dict[bytes, bytes]) -> None:
    fields[b"job"] = b'{"index": 3, "start": '


def test_poison_jobs_in_a_batch_are_dead_lettered_alone_and_become_gaps_at_their_places(
    model: TempoService, redis_url: str, clip: Path,
) -> None:
    store = RedisMemoryStore.connect(redis_url)
    queue = JobQueue.for_store(store)
    assert produce(str(clip), "p", queue=queue, store=store, spec=SPEC).queued == 5
    key = queue.k_jobs("p")
    _tamper(store.client, key, 1, _huge_header)
    _tamper(store.client, key, 3, _bad_json)
    jobs = queue.read("w", 10, ["p"], block=0.1)
    assert len(jobs) == 5
    worker = _worker(model, store, queue)
    worker.process("w", jobs)  # one batch: the good jobs with the poison ones
    assert (worker.stats.segments, worker.stats.dead) == (3, 2)
    info = store.stream_info("p")
    assert info.committed == 2 and info.end == pytest.approx(20.0)
    assert [r.start for r in store.get_segments("p", [0, 1, 2])] == [0.0, 8.0, 16.0]
    assert sorted(store.client.zrange(store.keys.gaps("p"), 0, -1)) == [b"12.0 16.0", b"4.0 8.0"]
    dead = sorted(queue.dead_letters("p"), key=lambda d: d["job"]["index"])
    assert [(d["job"]["index"], d["attempts"]) for d in dead] == [(1, 1), (3, 1)]  # at once: no retry mends them
    assert "claims 1000 frames" in dead[0]["error"] and "unreadable job metadata" in dead[1]["error"]
    row = queue.status(store)["streams"]["p"]
    assert (row["queued"], row["pending"], row["behind"]) == (0, 0, 0)
    assert not store.client.exists(store.keys.staged("p", 4))  # nothing left staged behind a missing job


def test_a_stream_whose_first_job_is_poison_still_gets_its_gap(model: TempoService, redis_url: str, clip: Path) -> None:
    store = RedisMemoryStore.connect(redis_url)
    queue = JobQueue.for_store(store)
    produce(str(clip), "p", queue=queue, store=store, spec=SPEC, max_segments=3)
    _tamper(store.client, queue.k_jobs("p"), 0, _bad_json)
    jobs = sorted(queue.read("w", 10, ["p"], block=0.1), key=lambda j: j.entry_id)
    worker = _worker(model, store, queue)
    worker.process("w", [j for j in jobs if j.problem() is not None])  # before the stream exists
    assert "p" not in store.stream_names()
    worker.process("w", [j for j in jobs if j.problem() is None])
    info = store.stream_info("p")
    assert info.committed == 1 and store.landed_through("p") == 2
    assert store.client.zrange(store.keys.gaps("p"), 0, -1) == [b"0.0 4.0"]
    assert queue.status(store)["streams"]["p"]["behind"] == 0


@pytest.fixture()
def own_redis(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A redis-server of the test's own (AOF on) that the test kills with -9 and starts again."""
    server: dict[str, Any] = {"dir": tmp_path / "redis"}
    server["dir"].mkdir()
    server["proc"], server["url"] = spawn_redis_server(server["dir"])
    yield server
    server["proc"].kill()
    server["proc"].wait()


def _restart(server: dict[str, Any], down: float) -> None:
    proc: subprocess.Popen[bytes] = server["proc"]
    proc.kill()
    proc.wait()
    time.sleep(down)
    server["proc"], _ = spawn_redis_server(server["dir"])


def test_a_worker_rides_out_a_redis_restart(
    model: TempoService, own_redis: dict[str, Any], clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisMemoryStore.connect(own_redis["url"])
    queue = JobQueue.for_store(store, QueueSettings(claim_idle=1.0))
    produce(str(clip), "r", queue=queue, store=store, spec=SPEC, max_segments=2)
    worker = _worker(model, store, queue)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.run(stop=stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    with caplog.at_level(logging.WARNING, logger="tempo.engine.worker_faults"):
        thread.start()
        deadline = time.monotonic() + 120
        while store.landed_through("r") < 1:
            assert time.monotonic() < deadline and not errors, errors
            time.sleep(0.1)
        _restart(own_redis, down=1.5)  # idle worker: Redis goes away and comes back
        produce(str(clip), "r", queue=queue, store=store, spec=SPEC)  # the rest, after the restart
        while store.landed_through("r") < 4:
            assert time.monotonic() < deadline and not errors and thread.is_alive(), errors
            time.sleep(0.1)
        stop.set()
        thread.join(30)
    assert not errors and not thread.is_alive()
    assert [s.index for s in store.segments_in_time_range("r", 0.0, 1e9)] == [0, 1, 2, 3, 4]
    notices = [r.getMessage() for r in caplog.records]
    assert any("lost its connection to Redis" in m for m in notices)
    assert any("reconnected to Redis after" in m for m in notices)
    assert all("\n" not in m for m in notices)


def test_a_producer_rides_out_a_redis_kill(own_redis: dict[str, Any], tmp_path: Path) -> None:
    video = write_test_video(tmp_path / "long.mp4", duration=60.0, size=(96, 64))
    store = RedisMemoryStore.connect(own_redis["url"])
    queue = JobQueue.for_store(store, QueueSettings(max_jobs=4))
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["report"] = produce(str(video), "r", queue=queue, store=store, spec=SPEC, progress=False)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while int(queue.state("r").get("produced", -1)) < 3:  # full: the producer waits for room
        assert time.monotonic() < deadline and thread.is_alive(), result
        time.sleep(0.05)
    _restart(own_redis, down=1.0)
    seen: list[int] = []
    while thread.is_alive() or queue.client.xlen(queue.k_jobs("r")):  # a consumer making room
        assert time.monotonic() < deadline, result
        jobs: list[Job] = queue.read("c", 4, ["r"], block=0.1)
        seen += [j.index for j in jobs]
        queue.ack(jobs)
    assert "error" not in result, result.get("error")
    assert result["report"].queued == 15 and not result["report"].interrupted
    assert sorted(seen) == list(range(15))  # nothing lost, nothing twice
