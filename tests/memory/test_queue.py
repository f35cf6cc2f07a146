"""The work queue on real Redis (memory/jobqueue.py, engine/producer.py): backpressure, claims, dead letters."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest
import redis
from tempo.memory.embedded import connect
from tempo.memory.errors import JobError
from tempo.memory.frames import decode_frames, encode_frames
from tempo.memory.jobqueue import GROUP, JobQueue, JobSpec, QueueSettings
from tempo.streaming import SamplingConfig, Segment
from tempo.streaming.segment import SourceInfo

LIVE = SourceInfo(uri="rtsp://cam/1", kind="network", live=True)
SPEC = JobSpec(sampling=SamplingConfig())


def _segment(i: int) -> Segment:
    frames = np.full((8, 32, 48, 3), i, dtype=np.uint8)
    return Segment(stream_id="cam", index=i, start=4.0 * i, end=4.0 * i + 4, timestamps=4.0 * i + np.arange(8) / 2,
                   frames=frames, source=LIVE, sample_fps=2.0, first_frame_index=8 * i)


def _queue(redis_url: str, **settings: float) -> JobQueue:
    queue = JobQueue(connect(redis_url), settings=QueueSettings(**settings))  # type: ignore[arg-type]
    queue.register("cam")
    return queue


def test_a_live_producer_drops_the_oldest_job_and_leaves_a_skip_marker(redis_url: str) -> None:
    queue = _queue(redis_url, max_jobs=2)
    dropped = [queue.push(_segment(i), SPEC, live=True) for i in range(4)]
    assert dropped == [0, 0, 1, 1]
    jobs = queue.read("w", 10, ["cam"], block=0.1)
    assert [(j.index, j.skip) for j in jobs] == [(0, True), (2, False), (1, True), (3, False)]
    assert jobs[1].segment().frames[0, 0, 0, 0] == 2
    assert queue.status()["streams"]["cam"]["dropped"] == 2
    assert jobs[0].skipped_record().start == 0.0 and jobs[0].skipped_record().end == 4.0
    queue.ack(jobs)
    queue.ack(jobs)  # a second acknowledgement changes nothing
    assert queue.state("cam")["markers"] == "0"
    assert [queue.push(_segment(i), SPEC, live=True) for i in (4, 5)] == [0, 0]  # room again


def test_a_file_producer_waits_for_room(redis_url: str) -> None:
    queue = _queue(redis_url, max_jobs=1)
    queue.push(_segment(0), SPEC, live=False)
    first = queue.read("w", 1, ["cam"], block=0.1)
    timer = threading.Timer(0.5, queue.ack, args=(first,))
    timer.start()
    t0 = time.monotonic()
    assert queue.push(_segment(1), SPEC, live=False) == 0
    assert time.monotonic() - t0 >= 0.4  # it waited for the acknowledgement
    assert [j.index for j in queue.read("w", 5, ["cam"], block=0.1)] == [1]
    stop = threading.Event()
    stop.set()
    assert queue.push(_segment(2), SPEC, live=False, stop=stop) == -1  # still full: a stop ends the wait


def test_jobs_left_by_a_dead_consumer_are_claimed_after_the_idle_time_with_their_delivery_count(
    redis_url: str,
) -> None:
    queue = _queue(redis_url, claim_idle=0.2)
    for i in range(3):
        queue.push(_segment(i), SPEC, live=False)
    taken = queue.read("dead-worker", 2, ["cam"], block=0.1)
    assert queue.claim("other", 5, ["cam"]) == []  # not idle long enough yet
    time.sleep(0.3)
    claimed = queue.claim("other", 5, ["cam"])
    assert [j.entry_id for j in claimed] == [j.entry_id for j in taken]
    assert [j.deliveries for j in claimed] == [2, 2]
    queue.ack(claimed)
    assert queue.client.xpending("tempo:q:{cam}:jobs", GROUP)["pending"] == 0
    assert queue.client.xlen("tempo:q:{cam}:jobs") == 1


def test_a_dead_letter_keeps_the_error_and_leaves_the_queue(redis_url: str) -> None:
    queue = _queue(redis_url)
    queue.push(_segment(5), SPEC, live=False)
    job = queue.read("w", 1, ["cam"], block=0.1)[0]
    assert queue.record_failure(job) == 1
    assert queue.record_failure(job) == 2
    queue.dead_letter(job, "boom", 2)
    letters = queue.dead_letters("cam")
    assert [(d["job"]["index"], d["error"], d["attempts"]) for d in letters] == [(5, "boom", 2)]
    status = queue.status()["streams"]["cam"]
    assert (status["queued"], status["pending"], status["dead_letters"]) == (0, 0, 1)


@pytest.mark.parametrize("codec", ["zstd", "zlib"])
def test_damaged_frames_are_a_job_error(codec: str) -> None:
    data = encode_frames(np.zeros((2, 16, 16, 3), np.uint8), codec=codec)
    with pytest.raises(JobError, match="corrupt"):
        decode_frames(data[:16] + b"junk")
    with pytest.raises(JobError, match="hold"):  # a valid stream of the wrong size
        decode_frames(data[:4] + np.array([3, 16, 16], "<u4").tobytes() + data[16:])
    with pytest.raises(JobError, match="not a Tempo frame clip"):
        decode_frames(b"nope")


def test_queue_status_is_exported_as_prometheus_metrics(redis_url: str) -> None:
    from prometheus_client import CollectorRegistry, generate_latest
    from tempo.memory import RedisMemoryStore
    from tempo.memory.queue_metrics import QueueCollector

    queue = _queue(redis_url, max_jobs=1)
    for i in range(3):
        queue.push(_segment(i), SPEC, live=True)
    queue.note_worker("gpu-1", 4, 2.0)
    registry = CollectorRegistry()
    registry.register(QueueCollector(RedisMemoryStore(queue.client)))
    text = generate_latest(registry).decode()
    assert 'tempo_queue_queued{stream="cam"} 3.0' in text  # one job + two skip markers
    assert 'tempo_queue_lag{stream="cam"} 3.0' in text
    assert 'tempo_queue_dropped_total{stream="cam"} 2.0' in text
    assert 'tempo_worker_segments_total{worker="gpu-1"} 4.0' in text
    assert 'tempo_worker_busy_seconds_total{worker="gpu-1"} 2.0' in text


def test_a_producer_run_again_resumes_after_what_it_queued(redis_url: str, tmp_path: object) -> None:
    from pathlib import Path

    from tempo.engine.producer import produce
    from tempo.memory import RedisMemoryStore
    from tempo.streaming.synthetic import write_test_video

    video = write_test_video(Path(str(tmp_path)) / "v.mp4", duration=20.0, size=(96, 64))
    store = RedisMemoryStore.connect(redis_url)
    queue = JobQueue.for_store(store)
    first = produce(str(video), "cam", queue=queue, store=store, spec=SPEC, max_segments=2)
    again = produce(str(video), "cam", queue=queue, store=store, spec=SPEC)
    assert (first.resumed_from, first.queued, again.resumed_from, again.queued) == (0, 2, 2, 3)
    jobs = queue.read("w", 10, ["cam"], block=0.1)
    assert [j.index for j in jobs] == [0, 1, 2, 3, 4]
    assert [j.segment().start for j in jobs] == [0.0, 4.0, 8.0, 12.0, 16.0]
    assert produce(str(video), "cam", queue=queue, store=store, spec=SPEC).queued == 0  # all queued already


def test_a_producer_holds_the_writer_lease_and_its_jobs_carry_the_token(redis_url: str, tmp_path: object) -> None:
    import sys
    from pathlib import Path

    from tempo.engine.producer import produce
    from tempo.memory import RedisMemoryStore
    from tempo.memory.errors import StreamBusyError
    from tempo.memory.store_types import CommitStatus
    from tempo.streaming.synthetic import write_test_video

    factory = sys.modules["memory_records_factory"]  # loaded by tests/memory/conftest.py
    video = write_test_video(Path(str(tmp_path)) / "v.mp4", duration=12.0, size=(96, 64))
    store = RedisMemoryStore.connect(redis_url)
    queue = JobQueue.for_store(store)
    other = store.acquire_writer("cam", 30.0)  # a single-process ingest of the stream is running
    with pytest.raises(StreamBusyError, match="being ingested by another process"):
        produce(str(video), "cam", queue=queue, store=store, spec=SPEC, lease_wait=0)
    assert queue.state("cam") == {}  # refused before anything was queued
    store.release_writer("cam", other)

    first = produce(str(video), "cam", queue=queue, store=store, spec=SPEC, max_segments=1, lease_seconds=5.0)
    assert store.client.get(store.keys.writer("cam")) is None  # released when the run ends
    again = produce(str(video), "cam", queue=queue, store=store, spec=SPEC, max_segments=1)
    assert (first.queued, again.queued) == (1, 1)
    jobs = queue.read("w", 10, ["cam"], block=0.1)
    tokens = {j.spec.lease for j in jobs}
    assert len(tokens) == 1 and "" not in tokens  # a producer run again reuses the queued jobs' token
    token = tokens.pop()

    # While the producer holds the lease, its jobs land and a job under another token does not.
    store.create_stream("cam", factory.FILE_SOURCE, factory.SETTINGS)
    store.acquire_writer("cam", 30.0, token)
    record = factory.make_record("cam", 0)
    assert store.land_segments([record], lease="not-the-producer")[0].status is CommitStatus.NOT_WRITER
    assert store.land_segments([record], lease=token)[0].status is CommitStatus.COMMITTED


def test_a_resumed_file_producer_seeks_instead_of_decoding_what_it_queued(redis_url: str, tmp_path: object) -> None:
    from pathlib import Path

    from tempo.engine.producer import produce
    from tempo.memory import RedisMemoryStore
    from tempo.streaming import iter_segments
    from tempo.streaming.parallel_decode import JOBS_PER_DECODER, default_file_decoders
    from tempo.streaming.synthetic import write_test_video

    # 60 s at 30 fps, a keyframe every 2 s: resuming after 10 of 15 segments (40 s) needs ~20 s of it.
    video = write_test_video(Path(str(tmp_path)) / "v.mp4", duration=60.0, size=(96, 64))
    store = RedisMemoryStore.connect(redis_url)
    queue = JobQueue.for_store(store)
    first = produce(str(video), "cam", queue=queue, store=store, spec=SPEC, max_segments=10)
    assert first.queued == 10 and queue.state("cam")["produced_slot"] == "80"
    again = produce(str(video), "cam", queue=queue, store=store, spec=SPEC)
    assert (again.resumed_from, again.queued) == (10, 5)
    full = iter_segments(str(video), stream_id="cam")
    segments = list(full)
    # Only the tail was decoded (from the keyframe before 40 s: ~22 s of the 60), not the 40 s before it.
    assert again.decode["frames_decoded"] <= 0.45 * full.stats.frames_decoded
    # The first run decoded its 10 segments' share and no more than the GOP-parallel decoders had in
    # flight when it stopped (JOBS_PER_DECODER jobs of one 60-frame GOP per decoder): so the two runs
    # together decode about one full run, never the first 40 s twice.
    in_flight = JOBS_PER_DECODER * max(1, default_file_decoders()) * 60
    assert first.decode["frames_decoded"] <= 10 / 15 * full.stats.frames_decoded + in_flight
    # And the resumed jobs are exactly the segments a full run makes.
    jobs = queue.read("w", 20, ["cam"], block=0.1)
    assert [j.index for j in jobs] == list(range(15))
    for job, segment in zip(jobs[10:], segments[10:], strict=True):
        got = job.segment()
        assert np.array_equal(got.timestamps, segment.timestamps) and got.first_frame_index == segment.first_frame_index
        assert np.array_equal(got.frames, segment.frames)


def test_the_jobs_of_a_file_carry_its_fingerprint_and_a_replaced_file_is_refused(redis_url: str,
                                                                                  tmp_path: object) -> None:
    import os
    from pathlib import Path

    from tempo.engine.producer import produce
    from tempo.memory import RedisMemoryStore
    from tempo.memory.errors import SourceChangedError
    from tempo.streaming.sources import fingerprint_file
    from tempo.streaming.synthetic import write_test_video

    video = write_test_video(Path(str(tmp_path)) / "v.mp4", duration=12.0, size=(96, 64))
    store = RedisMemoryStore.connect(redis_url)
    queue = JobQueue.for_store(store)
    produce(str(video), "cam", queue=queue, store=store, spec=SPEC, max_segments=1)
    job = queue.read("w", 1, ["cam"], block=0.1)[0]
    assert job.spec.fingerprint == fingerprint_file(video)
    # A worker creates the stream with it (Worker._open_stream: the source plus the spec's fingerprint).
    import sys

    factory = sys.modules["memory_records_factory"]
    store.create_stream("cam", {**job.meta["source"], "fingerprint": job.spec.fingerprint}, factory.SETTINGS)
    store.land_segments([factory.make_record("cam", 0)], lease="")
    os.utime(video, (1_000_000_000, 1_000_000_000))  # the file is replaced (same name, another time)
    with pytest.raises(SourceChangedError, match="has changed since stream 'cam' was ingested"):
        produce(str(video), "cam", queue=queue, store=store, spec=SPEC)
    with pytest.raises(SourceChangedError):
        store.stream_info("cam").check_source_unchanged()  # what recall checks


def test_a_worker_reads_jobs_of_streams_on_every_shard(redis_url: str, admin) -> None:
    queue = _queue(redis_url)
    names = [f"cam{i}" for i in range(6)]
    for n, name in enumerate(names):
        queue.register(name)
        queue.push(dataclasses.replace(_segment(n), stream_id=name), SPEC, live=False)
    if isinstance(admin, redis.RedisCluster):  # the six job streams really are spread over the shards
        assert len({admin.get_node_from_key(queue.k_jobs(name)).name for name in names}) == 3
    jobs = queue.read("w", 10, [*names, "cam"], block=0.1)
    assert sorted((j.stream, j.index) for j in jobs) == [(name, n) for n, name in enumerate(names)]
    queue.ack(jobs)
    assert all(queue.status()["streams"][name]["queued"] == 0 for name in names)
    t0 = time.monotonic()
    assert queue.read("w", 10, names, block=0.3) == []  # nothing left: it waited, then gave up
    assert time.monotonic() - t0 >= 0.25
