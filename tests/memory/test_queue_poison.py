"""Poison jobs (memory/jobcheck.py): every field of a queued job is checked before anything is
allocated for it, and a job whose metadata is unreadable still knows its place (its gap)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from tempo.memory.embedded import connect
from tempo.memory.errors import JobError
from tempo.memory.frames import decode_frames, encode_frames
from tempo.memory.jobqueue import Job, JobQueue, JobSpec, QueueSettings, job_fields
from tempo.streaming import SamplingConfig, Segment
from tempo.streaming.segment import SourceInfo

LIVE = SourceInfo(uri="rtsp://cam/1", kind="network", live=True)
SPEC = JobSpec(sampling=SamplingConfig())


def _segment(i: int) -> Segment:
    frames = np.full((8, 32, 48, 3), i, dtype=np.uint8)
    return Segment(stream_id="cam", index=i, start=4.0 * i, end=4.0 * i + 4, timestamps=4.0 * i + np.arange(8) / 2,
                   frames=frames, source=LIVE, sample_fps=2.0, first_frame_index=8 * i)


def _job(fields: dict[str, bytes]) -> Job:
    from tempo.memory.jobqueue import _parse_entry

    return _parse_entry("k", "cam", b"1-0", {k.encode(): v for k, v in fields.items()})


def _header(t: int, h: int, w: int) -> bytes:
    return b"TQF2" + np.array([t, h, w], dtype="<u4").tobytes() + b"\x28\xb5\x2f\xfd" + b"\0" * 32


def test_a_good_job_has_no_problem_and_knows_its_place() -> None:
    job = _job(job_fields(_segment(3), SPEC))
    assert job.problem() is None
    assert job.place == job.gap_place() == (3, 12.0, 16.0, 24)
    assert job.segment().frames.shape == (8, 32, 48, 3)


@pytest.mark.parametrize(("header", "says"), [
    ((1000, 10000, 10000), "claims 1000 frames for 8 timestamps"),
    ((8, 10000, 10000), "larger than its max edge"),
    ((8, 0, 48), "larger than its max edge"),
])
def test_a_frame_header_out_of_all_proportion_is_refused_before_any_allocation(header: tuple, says: str) -> None:
    fields = job_fields(_segment(1), SPEC)
    fields["frames"] = _header(*header)
    t0 = time.perf_counter()
    problem = _job(fields).problem()
    assert problem is not None and says in problem
    assert time.perf_counter() - t0 < 0.5
    with pytest.raises(JobError):  # the decoder refuses it on its own too, before allocating
        decode_frames(_header(1000, 10000, 10000))


def _with(meta_change: dict) -> dict[str, bytes]:
    fields = job_fields(_segment(2), SPEC)
    meta = json.loads(fields["job"])
    for key, value in meta_change.items():
        if value is KeyError:
            meta.pop(key)
        else:
            meta[key] = value
    fields["job"] = json.dumps(meta).encode()
    return fields


@pytest.mark.parametrize("change", [
    {"index": "2"}, {"index": -5}, {"index": 2.5}, {"index": True}, {"start": "x"}, {"end": 1.0},
    {"ts": "0,1"}, {"ts": []}, {"ts": [0.0] * 300}, {"ts": [0.0, "a"]}, {"ff": -1}, {"wc": "now"},
    {"gap": -1}, {"fps": 0}, {"skip": "yes"}, {"source": "rtsp://x"}, {"source": {"uri": 1, "live": True}},
    {"spec": None}, {"spec": {"sampling": {"window": 8}}}, {"stored_tokens": 1}, {"index": KeyError},
    {"ts": [0.0, 0.5]},  # 2 timestamps for 8 frames
])
def test_every_field_of_a_job_is_checked(change: dict) -> None:
    fields = _with(change)
    if "stored_tokens" in change:  # inside the settings
        meta = json.loads(fields["job"])
        meta["spec"]["stored_tokens"] = 10**9
        fields["job"] = json.dumps(meta).encode()
    job = _job(fields)
    problem = job.problem()
    assert problem is not None and "\n" not in problem
    assert job.gap_place() == (2, 8.0, 12.0, 16)  # from the metadata where readable, else the place field


def test_nan_and_infinity_are_refused() -> None:
    fields = job_fields(_segment(2), SPEC)
    fields["job"] = fields["job"].replace(b'"start":8.0', b'"start":NaN')
    assert _job(fields).problem() is not None


def test_unreadable_metadata_keeps_its_place_for_the_gap() -> None:
    fields = job_fields(_segment(5), SPEC)
    fields["job"] = b"{not json"
    job = _job(fields)
    assert job.problem() == "unreadable job metadata (JSONDecodeError)"
    record = job.skipped_record()
    assert (record.index, record.start, record.end, record.first_frame_index) == (5, 20.0, 24.0, 40)
    fields["place"] = b"garbage"
    assert _job(fields).gap_place() is None
    with pytest.raises(JobError, match="place in the stream is unreadable"):
        _job(fields).skipped_record()


def test_a_live_drop_marker_keeps_the_place_field(redis_url: str) -> None:
    queue = JobQueue(connect(redis_url), settings=QueueSettings(max_jobs=1))  # type: ignore[arg-type]
    queue.register("cam")
    queue.push(_segment(0), SPEC, live=True)
    queue.push(_segment(1), SPEC, live=True)  # drops job 0: a marker in its place
    jobs = queue.read("w", 10, ["cam"], block=0.1)
    assert sorted((j.index, j.skip, j.place) for j in jobs) == [
        (0, True, (0, 0.0, 4.0, 0)), (1, False, (1, 4.0, 8.0, 8))]


def test_a_zlib_clip_never_inflates_past_its_header() -> None:
    import zlib

    data = b"TQF1" + np.array([1, 16, 16], dtype="<u4").tobytes() + zlib.compress(b"\0" * (50 << 20))
    with pytest.raises(JobError, match="hold"):
        decode_frames(data)
    assert decode_frames(encode_frames(np.zeros((1, 16, 16, 3), np.uint8), codec="zlib")).shape == (1, 16, 16, 3)


def test_stale_worker_rows_are_pruned_from_the_status_and_the_metrics(redis_url: str) -> None:
    queue = JobQueue(connect(redis_url), settings=QueueSettings(worker_ttl=60.0))  # type: ignore[arg-type]
    queue.note_worker("alive", 3, 1.0)
    queue.note_worker("gone", 5, 2.0)
    queue.client.hset(queue.k_workers(), "gone:seen", repr(time.time() - 3600))
    assert set(queue.status()["workers"]) == {"alive"}
    assert queue.client.hkeys(queue.k_workers()) and all(k.startswith(b"alive:") for k in queue.client.hkeys(
        queue.k_workers()))
    from prometheus_client import CollectorRegistry, generate_latest
    from tempo.memory import RedisMemoryStore
    from tempo.memory.queue_metrics import QueueCollector

    queue.client.hset(queue.k_workers(), "old:seen", repr(time.time() - 10 * 86400))
    queue.client.hset(queue.k_workers(), "old:segments", 9)
    registry = CollectorRegistry()
    registry.register(QueueCollector(RedisMemoryStore.connect(redis_url)))
    metrics = generate_latest(registry).decode()
    assert 'worker="alive"' in metrics and 'worker="old"' not in metrics
    assert queue.forget_workers(["alive"]) == ["alive"]
    assert queue.status()["workers"] == {}


def test_queue_dead_of_an_unknown_stream_is_an_error(redis_url: str, tmp_path: object) -> None:
    import os
    import subprocess
    import sys

    if not redis_url.startswith("unix://"):
        pytest.skip("the CLI is run against the single server")
    env = {**os.environ, "TEMPO_REDIS_URL": redis_url, "TEMPO_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "tempo.tools.cli", "queue", "dead", "nosuch"], env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    assert proc.stderr.strip() == ("tempo: error: no stream 'nosuch' in the work queue or in memory "
                                   "(see `tempo queue status`)")
    queue = JobQueue(connect(redis_url))  # type: ignore[arg-type]
    queue.register("cam")
    known = subprocess.run([sys.executable, "-m", "tempo.tools.cli", "queue", "dead", "cam"], env=env,
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert known.returncode == 0 and known.stdout.strip() == "no dead letters for stream 'cam'"
