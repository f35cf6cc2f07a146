"""Scale-out: what the Redis work queue costs per segment, and segments/s with 1 and 2 workers.

1. Queue overhead per segment, without the model, step by step: encoding the frames losslessly
   (producer CPU), the push (XADD + state; the share of it that is fsync), the worker's read
   (XREADGROUP), decoding the frames (worker CPU), and the out-of-order commit plus acknowledgement
   (`land_segments` + XACK/XDEL) beyond the single-process commit (`put_segments`) of the same records.
   Side by side in one run: "before" (zlib jobs, one job per push, each job committed and acknowledged
   on its own, as the queue first landed) and "after" (zstd jobs, a file producer's 4 jobs per push,
   a batch of 8 committed and acknowledged at once; `push_1_ms`: one job per push, as a live
   producer pushes).
   Frames are 8 × 288 × 512 RGB (the released chain's size for a 16:9 source) from a generated
   camera-like video. Redis runs as the embedded default does (AOF, `appendfsync always`). Target:
   ≤ 2 ms per segment.
   Then the Redis server's own CPU per segment (INFO cpu) for a job's whole life in the queue and its
   commit, against a single-process commit of the same records (`shard_cpu`): what a shard's main
   thread spends, so how many queued segments/s one Redis Cluster shard carries.
2. Throughput with the tiny checkpoint on this machine: a single-process `tempo ingest` of a video,
   then the same video's jobs drained by 1 and by 2 `tempo worker` processes. Rates are steady-state:
   committed segments over the span of their commit times (model loading excluded).
3. Redis RAM per stream-day with the cold tier and a 1-hour hot window (`cold_tier_ram`; target
   ≤ 50 MiB): `--ram-hours` of real-size live segments, 3 by default (extrapolated), 25 to measure a day.

    .venv/bin/python bench/scale.py [--segments 24] [--ram-hours 3] [--only-ram] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import redis
from tempo.engine.producer import FILE_PUSH_BATCH
from tempo.memory import RedisMemoryStore, StreamSettings
from tempo.memory.embedded import spawn_redis_server
from tempo.memory.frames import decode_frames, encode_frames
from tempo.memory.jobqueue import JobQueue, JobSpec, job_fields
from tempo.memory.records import SegmentRecord
from tempo.streaming import SamplingConfig, Segment, iter_segments
from tempo.streaming.segment import SourceInfo

MIB = float(1 << 20)


def _camera_segments(root: Path, n: int) -> list[Segment]:
    """n segments of 8 × 288 × 512 frames from a generated camera-like video (a still textured scene
    with a textured object moving across it), as the producer would queue them."""
    from tempo.streaming.synthetic import write_test_video

    video = write_test_video(root / "camera.mp4", duration=4.0 * n, fps=2.0, size=(512, 288), texture=True)
    segments = list(iter_segments(str(video), stream_id="bench"))[:n]
    live = SourceInfo(uri="rtsp://cam/1", kind="network", live=True)
    return [dataclasses.replace(s, source=live) for s in segments]


def _records(n: int, rng: np.random.Generator) -> list[SegmentRecord]:
    """n records the size a worker commits: a 16 × 2048 token head, a 768-d embedding, a 28 KB proxy."""
    return [SegmentRecord(stream="x", index=i, start=4.0 * i, end=4.0 * i + 4, timestamps=np.arange(8) / 2.0,
                          frame_size=(288, 512), first_frame_index=8 * i,
                          tokens=rng.normal(size=(16, 2048)).astype(np.float32),
                          embedding=np.ones(768, np.float32) / np.sqrt(768), proxy=b"p" * 28_000)
            for i in range(n)]


@dataclasses.dataclass
class _Rig:
    """What both queue measurements use: one Redis client, its queue and store, n camera segments
    and n real-size records of the same segments (made once: the video takes a while to encode)."""

    client: redis.Redis
    queue: JobQueue
    store: RedisMemoryStore
    segments: list[Segment]
    records: list[SegmentRecord]
    spec: JobSpec = dataclasses.field(default_factory=lambda: JobSpec(sampling=SamplingConfig()))
    settings: StreamSettings = dataclasses.field(default_factory=lambda: StreamSettings(
        model_id="bench", embedder_id="bench", embedding_dim=768, token_dim=2048))
    live: SourceInfo = dataclasses.field(default_factory=lambda: SourceInfo(uri="rtsp://cam/1", kind="network",
                                                                            live=True))

    @classmethod
    def make(cls, url: str, root: Path, n: int) -> _Rig:
        client = redis.Redis.from_url(url)
        return cls(client, JobQueue(client), RedisMemoryStore(client), _camera_segments(root, n),
                   _records(n, np.random.default_rng(0)))

    @property
    def n(self) -> int:
        return len(self.segments)

    def reset(self) -> None:
        """An empty server fsyncing every write, as the embedded Redis (tempo.memory.embedded) runs."""
        self.client.flushall()
        self.client.config_set("appendfsync", "always")


def _per_segment(n: int, fn: Any) -> float:
    """Seconds per segment of fn() (which handles all n segments)."""
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) / n


# The two ways compared side by side: the queue as it first landed (zlib jobs; every job committed
# and acknowledged on its own) and as it is now (zstd jobs; a batch lands and is acknowledged at once).
# A file producer now queues FILE_PUSH_BATCH jobs per transaction (a live one still one at a time:
# `push_1_ms`).
VARIANTS = {"before": ("zlib", False), "after": ("zstd", True)}


def queue_overhead(rig: _Rig, batch: int = 8, rounds: int = 5) -> dict[str, Any]:
    """Per segment, each step of the queue that a single-process ingest does not have, in ms:
    encode (producer CPU), push (XADD + state, Redis; its fsync share measured as the same pushes
    under `appendfsync no` subtracted from `always`), read (XREADGROUP), decode (worker CPU), and
    commit + ack beyond the single-process commit (`put_segments` per batch). Medians of `rounds`."""
    rig.reset()
    client, queue, store, segments, records = rig.client, rig.queue, rig.store, rig.segments, rig.records
    spec, settings, live, n = rig.spec, rig.settings, rig.live, rig.n
    batches = [range(i, min(n, i + batch)) for i in range(0, n, batch)]

    def commit(fn: Any, per_job: bool) -> float:
        store.create_stream("x", live, settings)
        try:
            if per_job:
                return _per_segment(n, lambda: [fn([r]) for r in records])
            return _per_segment(n, lambda: [fn([records[i] for i in b]) for b in batches])
        finally:
            store.delete_stream("x")

    out: dict[str, Any] = {"frame_shape": list(segments[0].frames.shape),
                           "raw_frame_bytes": float(segments[0].frames.nbytes),
                           "commit_put_ms": commit(store.put_segments, False) * 1e3}
    def measure(variant: str, codec: str, batched: bool) -> dict[str, float]:
        name = f"bench-{variant}"
        queue.register(name)
        row: dict[str, float] = {}
        row["encode_ms"] = _per_segment(n, lambda: [encode_frames(s.frames, codec=codec) for s in segments])
        entries = [job_fields(s, spec, codec=codec) for s in segments]
        row["job_bytes"] = float(np.mean([len(e["frames"]) for e in entries]))
        rows = [(s.index, s.end, None, e) for s, e in zip(segments, entries, strict=True)]
        per_push = FILE_PUSH_BATCH if batched else 1
        def push_all(size: int) -> None:
            for i in range(0, n, size):
                queue.push_fields(name, rows[i:i + size], live=True)

        pushes = {}
        for fsync, size in (("no", per_push), ("always", 1), ("always", per_push)):  # the last one is read below
            client.config_set("appendfsync", fsync)
            client.delete(queue.k_jobs(name))
            queue.register(name)
            pushes[fsync, size] = _per_segment(n, functools.partial(push_all, size))
        row["push_ms"] = pushes["always", per_push]
        row["push_1_ms"] = pushes["always", 1]
        row["push_fsync_ms"] = pushes["always", per_push] - pushes["no", per_push]
        jobs: list[Any] = []

        def read() -> None:
            while len(jobs) < n:
                jobs.extend(queue.read("bench-worker", batch, [name], block=0.1))

        row["read_ms"] = _per_segment(n, read)
        row["decode_ms"] = _per_segment(n, lambda: [decode_frames(j.frames or b"") for j in jobs])

        def land_and_ack(chunk: list[SegmentRecord]) -> None:
            store.land_segments(chunk)
            queue.ack([jobs[r.index] for r in chunk])

        row["commit_ack_ms"] = commit(land_and_ack, not batched)
        for k in ("encode_ms", "push_ms", "push_1_ms", "push_fsync_ms", "read_ms", "decode_ms", "commit_ack_ms"):
            row[k] *= 1e3
        row["commit_extra_ms"] = row["commit_ack_ms"] - out["commit_put_ms"]
        row["redis_side_ms"] = row["push_ms"] + row["read_ms"] + max(0.0, row["commit_extra_ms"])
        row["total_ms"] = row["redis_side_ms"] + row["encode_ms"] + row["decode_ms"]
        queue.delete(name)
        return row

    # The machine is shared (other processes write to the same disk): the variants take turns, and
    # each figure is the median of its rounds.
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    for _ in range(rounds):
        for variant, (codec, batched) in VARIANTS.items():
            runs[variant].append(measure(variant, codec, batched))
    for variant, rows in runs.items():
        out[variant] = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
    return out


def _server_cpu(client: redis.Redis) -> dict[str, float]:
    """The Redis server's CPU seconds so far: its main thread (which runs every command, and so is
    what a shard saturates) and the whole process (with the background threads that close files)."""
    cpu = client.info("cpu")
    return {"main": float(cpu["used_cpu_user_main_thread"]) + float(cpu["used_cpu_sys_main_thread"]),
            "all": float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])}


def shard_cpu(rig: _Rig, batch: int = 8, rounds: int = 3) -> dict[str, float]:
    """Redis server CPU per segment for a job's whole life in the queue and its commit, in ms: a file
    producer's pushes (FILE_PUSH_BATCH jobs a transaction), a worker's reads (XREADGROUP, `batch`
    jobs), its out-of-order landing of real-size records and the acknowledgement; against the same
    records committed by a single-process ingest (`put_segments`). Median of `rounds`.

    This is what sizes Redis shards: a shard's main thread runs every command of the streams whose
    slots it serves, so one shard carries at most 1000 / `queue_ms_main` segments/s of queue work.
    CPU time, unlike the client's waits in `queue_overhead`, does not count the time the server sits
    in fsync or the clients take to send and parse the bytes, and it is steady on a loaded machine."""
    rig.reset()
    client, queue, store, records, settings, live, n = (rig.client, rig.queue, rig.store, rig.records, rig.settings,
                                                        rig.live, rig.n)
    entries = [(s.index, s.end, None, job_fields(s, rig.spec)) for s in rig.segments]

    def cycle(queued: bool) -> dict[str, float]:
        store.create_stream("x", live, settings)
        before = _server_cpu(client)
        if queued:
            queue.register("x")
            for i in range(0, n, FILE_PUSH_BATCH):
                queue.push_fields("x", entries[i:i + FILE_PUSH_BATCH], live=False)
            jobs: list[Any] = []
            while len(jobs) < n:
                jobs += queue.read("bench-worker", batch, ["x"], block=0.1)
            for i in range(0, n, batch):
                store.land_segments(records[i:i + batch])
                queue.ack(jobs[i:i + batch])
        else:
            for i in range(0, n, batch):
                store.put_segments(records[i:i + batch])
        after = _server_cpu(client)
        if queued:
            queue.delete("x")
        store.delete_stream("x")
        return {k: 1e3 * (after[k] - before[k]) / n for k in after}

    runs = [(cycle(False), cycle(True)) for _ in range(rounds)]
    out = {}
    for k in ("main", "all"):
        single = float(np.median([r[0][k] for r in runs]))
        queued = float(np.median([r[1][k] for r in runs]))
        out[f"single_ms_{k}"], out[f"queue_ms_{k}"] = single, queued
        out[f"queue_extra_ms_{k}"] = queued - single
    out["shard_segments_per_s"] = 1e3 / out["queue_ms_main"]
    return out


def _commit_rate(store: RedisMemoryStore, stream: str) -> float:
    """Steady-state segments per second: the segments committed after the first batch's commits,
    over the time from those to the last commit (model loading and the first batch excluded)."""
    info = store.stream_info(stream)
    times = sorted(r.committed_at for r in store.get_segments(stream, list(range(info.committed + 1)),
                                                              tokens=False, embedding=False)
                   if r is not None and r.committed_at is not None)
    first_batch = sum(1 for t in times if t - times[0] < 0.05)  # committed together with the first
    later = len(times) - first_batch
    span = times[-1] - times[0]
    return later / span if later > 0 and span > 0 else 0.0


def throughput(url: str, root: Path, segments: int) -> dict[str, float]:
    from tempo.models.tiny import write_tiny_checkpoint
    from tempo.streaming.synthetic import write_test_video

    model = write_tiny_checkpoint(root / "tiny")
    video = write_test_video(root / "v.mp4", duration=4.0 * segments, size=(320, 180), texture=True)
    env = dict(os.environ, TEMPO_REDIS_URL=url, TEMPO_MODEL=str(model), TEMPO_HOME=str(root / "home"),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cli = [sys.executable, "-m", "tempo.tools.cli"]
    store = RedisMemoryStore.connect(url)
    out = {}
    subprocess.run([*cli, "ingest", str(video), "--stream", "single", "--batch-size", "4"], env=env, check=True,
                   capture_output=True)
    out["single_process_segments_per_s"] = _commit_rate(store, "single")
    for k in (1, 2):
        name = f"queue{k}"
        subprocess.run([*cli, "ingest", str(video), "--stream", name, "--queue"], env=env, check=True,
                       capture_output=True, timeout=600)
        procs = [subprocess.Popen([*cli, "worker", "--batch-size", "4", "--idle-exit", "3", "--name", f"{name}-w{j}"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for j in range(k)]
        for p in procs:
            p.wait(timeout=900)
        assert store.stream_info(name).committed == segments - 1, store.stream_info(name)
        out[f"workers_{k}_segments_per_s"] = _commit_rate(store, name)
    return out


def cold_tier_ram(root: Path, hours: float, *, hot_window: float = 3600.0) -> dict[str, float]:
    """Redis RAM of one live stream with the cold tier on and a `hot_window` (seconds) hot window.

    Writes `hours` of real-size segments (4 s each: a token head of 16 × 2048 int8 + scales, a
    SigLIP-base embedding of 768 float16, metadata, a 24,000-byte proxy clip), committed through the
    store and moved by the retention pass as ingest runs it, on a Redis of its own (no AOF: RAM is
    what is measured). Measured: INFO used_memory over the empty server's, and MEMORY USAGE of the
    keys of hot and cold segments; at the end the hot hour is moved too, and used_memory over all
    segments gives the bytes per cold segment. A stream-day is 21,600 segments; with `hours` < 25 the
    per-day figure is extrapolated from the measured bytes per cold segment (and says so)."""
    from tempo.memory import RetentionPolicy, enforce_retention

    seconds, dim, emb = 4.0, 2048, 768
    (root / "ram-redis").mkdir(parents=True, exist_ok=True)
    proc, url = spawn_redis_server(root / "ram-redis", appendonly=False)
    try:
        client = redis.Redis.from_url(url)
        base = int(client.info("memory")["used_memory"])
        store = RedisMemoryStore(client, home=root)
        settings = StreamSettings(model_id="Vision-CAIR/Tempo-6B", embedder_id="google/siglip-base-patch16-224",
                                  embedding_dim=emb, token_dim=dim, stored_tokens=16)
        policy = RetentionPolicy(cold_after=hot_window, cold_url=str(root / "cold"))
        store.create_stream("cam", {"uri": "rtsp://cam/1", "kind": "network", "live": True}, settings, policy)
        rng = np.random.default_rng(0)
        tokens = rng.normal(size=(32, 16, dim)).astype(np.float32)  # content does not change the sizes
        n = round(hours * 3600 / seconds)
        now = time.time()
        moving = 0.0
        for lo in range(0, n, 450):
            records = []
            for i in range(lo, min(lo + 450, n)):
                start = i * seconds
                e = rng.normal(size=emb).astype(np.float32)
                records.append(SegmentRecord(
                    stream="cam", index=i, start=start, end=start + seconds,
                    timestamps=start + np.arange(8) / 2.0, frame_size=(256, 512), first_frame_index=8 * i,
                    wallclock_start=now - (n - i) * seconds, tokens=tokens[i % 32],
                    embedding=e / np.linalg.norm(e), proxy=rng.bytes(24_000),
                ))
            store.put_segments(records)
            t = time.perf_counter()
            enforce_retention(store, "cam", now=now, max_batches=None)  # what ingest's retention worker does
            moving += time.perf_counter() - t
        info = store.stream_info("cam")
        cold = int(store.client.hget(store.keys.info("cam"), "cold_next") or 0)
        # The bulk writes' client buffers are not the stream's: drop the connections, then measure.
        client.connection_pool.disconnect()
        time.sleep(0.5)
        used = int(client.info("memory")["used_memory"]) - base

        def usage(keys: list[str]) -> float:
            return float(sum(client.memory_usage(k, samples=0) or 0 for k in keys))

        sample_cold = list(range(0, cold, max(1, cold // 200)))
        sample_hot = list(range(cold, n, max(1, (n - cold) // 200)))
        cold_key = usage([store.keys.segment("cam", i) for i in sample_cold]) / max(1, len(sample_cold))
        hot_key = usage([k for i in sample_hot for k in (store.keys.segment("cam", i), store.keys.tokens("cam", i))])
        hot_key /= max(1, len(sample_hot))
        zset_per_segment = usage([store.keys.times("cam")]) / n
        # Then the hot hour goes cold too: used_memory over all n cold segments is the per-segment
        # cost of the cold past with everything included (zset entries, the keyspace's own
        # entries, the info hash, allocator rounding), and the hot hour is what it added on top.
        enforce_retention(store, "cam", now=now + 2 * hot_window, max_batches=None)
        client.connection_pool.disconnect()
        time.sleep(0.5)
        per_cold = (int(client.info("memory")["used_memory"]) - base) / n
        hot_window_bytes = used - cold * per_cold
        day = 21_600
        return {
            "segments": float(n), "cold_segments": float(cold), "hot_segments": float(n - cold),
            "redis_used_mib": used / MIB,
            "hot_window_mib": hot_window_bytes / MIB,
            "cold_segment_key_bytes": cold_key, "hot_segment_keys_bytes": hot_key,
            "zset_bytes_per_segment": zset_per_segment, "redis_bytes_per_cold_segment": per_cold,
            "mib_per_stream_day_cold": day * per_cold / MIB,
            "mib_first_day_with_hot_window": (day * per_cold + hot_window_bytes) / MIB,
            "extrapolated": float(hours < 25),
            "cold_bytes_on_disk_per_segment": info.bytes.cold / max(1, cold),
            "move_ms_per_segment": 1e3 * moving / max(1, cold),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segments", type=int, default=24, help="segments per throughput run (4 s each)")
    parser.add_argument("--overhead-segments", type=int, default=64, help="segments for the overhead run")
    parser.add_argument("--skip-throughput", action="store_true", help="measure the queue overhead only")
    parser.add_argument("--ram-hours", type=float, default=3.0,
                        help="hours of a live stream for the cold-tier RAM run (25: a measured day + the hot hour)")
    parser.add_argument("--only-ram", action="store_true", help="run the cold-tier RAM measurement only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.ram_hours > 1:  # the hot window is an hour: with less, nothing goes cold to measure
        parser.error(f"--ram-hours must be more than 1 (the 1-hour hot window), not {args.ram_hours:g}")
    if args.only_ram:
        with tempfile.TemporaryDirectory() as tmp:
            ram = cold_tier_ram(Path(tmp), args.ram_hours)
        print(json.dumps({"cold_tier_ram": ram}) if args.json else describe_ram(ram))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = spawn_redis_server(Path(tmp), appendonly=True)
        try:
            rig = _Rig.make(url, Path(tmp), args.overhead_segments)
            result: dict[str, Any] = {"overhead": queue_overhead(rig), "shard_cpu": shard_cpu(rig)}
            if not args.skip_throughput:
                result["throughput"] = throughput(url, Path(tmp), args.segments)
            result["cold_tier_ram"] = cold_tier_ram(Path(tmp), args.ram_hours)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    if args.json:
        print(json.dumps(result))
        return 0
    o = result["overhead"]
    print(f"queue overhead per segment (ms; {o['frame_shape']} frames, {o['raw_frame_bytes'] / 1024:.0f} KiB raw; "
          f"single-process commit {o['commit_put_ms']:.3f}):")
    print(f"  {'':24s} {'before':>9s} {'after':>9s}")
    for key in ("encode_ms", "push_ms", "push_1_ms", "push_fsync_ms", "read_ms", "decode_ms", "commit_ack_ms",
                "commit_extra_ms", "redis_side_ms", "total_ms"):
        print(f"  {key:24s} {o['before'][key]:9.3f} {o['after'][key]:9.3f}")
    print(f"  {'job frames (KiB)':24s} {o['before']['job_bytes'] / 1024:9.0f} {o['after']['job_bytes'] / 1024:9.0f}")
    c = result["shard_cpu"]
    print("Redis server CPU per segment (ms; main thread / whole process): single-process commit "
          f"{c['single_ms_main']:.3f} / {c['single_ms_all']:.3f}; queued, whole job life "
          f"{c['queue_ms_main']:.3f} / {c['queue_ms_all']:.3f} (extra {c['queue_extra_ms_main']:.3f} / "
          f"{c['queue_extra_ms_all']:.3f}): one shard's main thread carries ≤ {c['shard_segments_per_s']:.0f} "
          "queued segments/s")
    for key, value in result.get("throughput", {}).items():
        print(f"{key:34s} {value:8.2f}")
    print(describe_ram(result["cold_tier_ram"]))
    return 0


def describe_ram(r: dict[str, float]) -> str:
    how = "extrapolated from" if r["extrapolated"] else "measured on"
    verdict = "meets" if r["mib_per_stream_day_cold"] <= 50 else "MISSES"
    return "\n".join([
        f"cold tier, 1-hour hot window ({how} {r['segments']:.0f} segments, {r['cold_segments']:.0f} moved):",
        f"  Redis RAM per stream-day of cold past  {r['mib_per_stream_day_cold']:8.1f} MiB "
        f"(target ≤ 50: {verdict}); {r['redis_bytes_per_cold_segment']:.0f} B per cold segment "
        f"(of which MEMORY USAGE: segment hash {r['cold_segment_key_bytes']:.0f} B, time index "
        f"{r['zset_bytes_per_segment']:.0f} B)",
        f"  the hot hour                           {r['hot_window_mib']:8.1f} MiB "
        f"({r['hot_segment_keys_bytes']:.0f} B of keys per hot segment); first day with it "
        f"{r['mib_first_day_with_hot_window']:.1f} MiB",
        f"  Redis used_memory now                  {r['redis_used_mib']:8.1f} MiB; on disk "
        f"{r['cold_bytes_on_disk_per_segment']:.0f} B per cold segment; moving took "
        f"{r['move_ms_per_segment']:.2f} ms per segment",
    ])


if __name__ == "__main__":
    raise SystemExit(main())
