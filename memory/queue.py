"""The work queue: ingest split into producers and workers that meet in Redis Streams (DESIGN §3).

A **producer** (`tempo ingest SOURCE --stream S --queue`, `produce`) decodes and segments on CPU and
pushes one job per segment to the stream's job queue, a Redis Stream:

    tempo:q:{name}:jobs    STREAM  one entry per segment job: `job` (metadata JSON), `frames` (clip)
    tempo:q:{name}:dead    STREAM  dead letters: the job's metadata, its error, how often it failed
    tempo:q:{name}:state   HASH    produced (last index pushed), produced_end (its end, seconds),
                                   produced_slot (the grid window after it: where a file resumes by
                                   seeking), lease (the writer lease token its jobs carry),
                                   dropped (live jobs dropped by backpressure), dead (dead letters)
    tempo:q:{name}:fails   HASH    entry id → failed attempts so far
    tempo:q:streams        SET     names of the streams that have a job queue
    tempo:q:workers        HASH    {consumer}:segments / :busy (seconds) / :seen (Unix seconds)

All keys of one stream share the hash tag `{name}` (the memory's keys do too), so they live on one
Redis Cluster shard. A job's frames are the sampled frames exactly (zstd of the raw pixels: the proxy
encoder is lossy, and a worker must compress what a single-process ingest would, so that both give
the same memory); the metadata carries times, the source, the sampling and storage settings.

Backpressure: a stream holds at most `QueueSettings.max_jobs` outstanding jobs (workers delete a
job when they acknowledge it, so the stream's length is its backlog). A file producer waits for room;
a live producer cannot wait (the camera does not), so it drops the oldest queued job, counts it,
and leaves a small `skip` marker in its place, which a worker turns into a gap in the timeline.

**Workers** (`tempo worker`, `Worker`) form the consumer group `tempo-workers` on every job stream.
Each reads a batch across all streams (XREADGROUP), runs the generic SVLM pass (with each stream's
monitoring rules scored in the same forward) and the embedder on the whole batch, commits the
batch's segments with the store's out-of-order commit script (`RedisMemoryStore.land_segments`, one
round trip per stream: idempotent, so a job done twice is stored once; with rules, the rule state
and alerts in the same MULTI/EXEC, see `Worker`), then XACKs and deletes the jobs in one more.
A worker that dies leaves its jobs pending; others claim them once they have been idle `claim_idle`
seconds (XAUTOCLAIM), so every job is done at least once and, because commits are idempotent, stored
exactly once. A job that fails `max_failures` times (or whose worker died that
many times) goes to the stream's dead-letter stream with its error, and its index is skipped (a gap),
so the rest of the stream goes on.

Commits arrive out of order across workers. A job is numbered by its producer (the source's segment
number); the store stages a job that arrives before its predecessors and commits every contiguous
run in order (`land_segments`), so the stream's indices stay contiguous and `committed` is the last
segment entirely there, what resume and "last committed" mean. A dead-lettered or dropped job takes
no index: its stretch of time is recorded as a gap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import redis
import zstandard
from tempo.errors import TempoError
from tempo.memory.alerts import AlertStore
from tempo.memory.cluster import is_cluster
from tempo.memory.errors import JobError, SourceMismatchError
from tempo.memory.proxy import ProxySettings
from tempo.memory.records import RetentionPolicy, SegmentRecord
from tempo.memory.store import RedisMemoryStore
from tempo.memory.store_types import CommitResult, CommitStatus
from tempo.settings import environment
from tempo.streaming import SamplingConfig, Segment, iter_segments
from tempo.streaming.segment import SourceInfo
from tempo.streaming.sources import fingerprint_file

if TYPE_CHECKING:  # the model stack is imported lazily: a producer needs no torch
    from tempo.models.embedder import SegmentEmbedder
    from tempo.models.tempo_family import TempoModel

log = logging.getLogger(__name__)

GROUP = "tempo-workers"
_FRAMES_MAGIC = b"TQF1"  # zlib (the first format)
_ZSTD_MAGIC = b"TQF2"  # zstd
FILE_PUSH_BATCH = 4  # a file producer's jobs per transaction (see _produce)


@dataclass(frozen=True)
class QueueSettings:
    """How the work queue behaves. Seconds; counts of jobs."""

    max_jobs: int = 64  # outstanding jobs per stream (queued + in flight): the backpressure bound
    claim_idle: float = 30.0  # a job unacknowledged this long is claimed by another worker
    max_failures: int = 3  # attempts before a job goes to the dead-letter stream
    block: float = 1.0  # how long one read waits for jobs
    dead_max: int = 10_000  # dead letters kept per stream (oldest trimmed)

    def __post_init__(self) -> None:
        if self.max_jobs < 1 or self.max_failures < 1 or not self.claim_idle > 0 or not self.block > 0:
            raise ValueError("queue settings must be positive")

    @classmethod
    def from_env(cls) -> QueueSettings:
        """$TEMPO_QUEUE_MAX_JOBS, $TEMPO_QUEUE_CLAIM_IDLE (seconds), $TEMPO_QUEUE_MAX_FAILURES (read
        through tempo.settings); an unset or unreadable value keeps the default."""
        env = environment()

        def get(raw: str | None, cast: Callable[[str], Any], default: Any) -> Any:
            try:
                return cast(raw) if raw else default
            except ValueError:
                return default

        return cls(
            max_jobs=get(env.queue_max_jobs, int, cls.max_jobs),
            claim_idle=get(env.queue_claim_idle, float, cls.claim_idle),
            max_failures=get(env.queue_max_failures, int, cls.max_failures),
        )


# ---- jobs -------------------------------------------------------------------------------------------
def encode_frames(frames: np.ndarray, *, codec: str = "zstd") -> bytes:
    """(T, H, W, 3) uint8 → lossless bytes: magic, T, H, W (uint32 each), the compressed pixels.

    `codec` "zstd" (level 1, magic TQF2) is what producers write: as dense as zlib level 1 at about a
    third of its CPU both ways (`bench/scale.py`). "zlib" (TQF1) was the first format; it is still
    read (jobs an older producer queued) and written only by the benchmark, as its baseline."""
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got shape {frames.shape}")
    dims = np.array(frames.shape[:3], dtype="<u4").tobytes()
    if codec == "zstd":
        return _ZSTD_MAGIC + dims + _zstd_compressor().compress(frames)  # (no copy: the buffer is read)
    if codec == "zlib":
        return _FRAMES_MAGIC + dims + zlib.compress(frames.tobytes(), 1)
    raise ValueError(f"unknown frame codec {codec!r} (zstd or zlib)")


def decode_frames(data: bytes) -> np.ndarray:
    """Bytes from `encode_frames` (either codec) → (T, H, W, 3) uint8 (read-only); JobError when
    they are not that."""
    magic = data[:4]
    if len(data) < 16 or magic not in (_FRAMES_MAGIC, _ZSTD_MAGIC):
        raise JobError("the job's frames are not a Tempo frame clip")
    t, h, w = (int(x) for x in np.frombuffer(data[4:16], dtype="<u4"))
    size = t * h * w * 3
    try:
        if magic == _ZSTD_MAGIC:
            raw = zstandard.ZstdDecompressor().decompress(data[16:], max_output_size=size)
        else:
            raw = zlib.decompress(data[16:])
    except (zlib.error, zstandard.ZstdError) as exc:
        raise JobError(f"the job's frames are corrupt ({exc})") from None
    if len(raw) != size:
        raise JobError(f"the job's frames hold {len(raw)} bytes, not {t}×{h}×{w}×3")
    return np.frombuffer(raw, dtype=np.uint8).reshape(t, h, w, 3)


_zstd_local = threading.local()


def _zstd_compressor() -> zstandard.ZstdCompressor:
    """One compressor per thread (a ZstdCompressor is not thread-safe; making one costs ~50 µs)."""
    comp = getattr(_zstd_local, "compressor", None)
    if comp is None:
        comp = _zstd_local.compressor = zstandard.ZstdCompressor(level=1)
    return comp


@dataclass(frozen=True)
class JobSpec:
    """What every job of one producer run shares: how its segments are to be made and stored."""

    sampling: SamplingConfig
    stored_tokens: int = 16
    retention: RetentionPolicy | None = None
    proxy: ProxySettings | None = None
    lease: str = ""  # the producer's writer lease token ('' = none)
    # A file source's fingerprint (tempo.streaming.sources.fingerprint_file), stored with the stream
    # a worker creates, so resume and recall refuse a replaced file as for `tempo ingest`.
    fingerprint: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sampling": {"fps": self.sampling.fps, "window": self.sampling.window,
                         "max_edge": self.sampling.max_edge, "tolerance": self.sampling.tolerance},
            "stored_tokens": self.stored_tokens,
            "retention": None if self.retention is None else self.retention.to_dict(),
            "proxy": None if self.proxy is None else dataclasses.asdict(self.proxy),
            "lease": self.lease,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        proxy = data.get("proxy")
        return cls(
            sampling=SamplingConfig(**data["sampling"]),
            stored_tokens=int(data["stored_tokens"]),
            retention=None if data.get("retention") is None else RetentionPolicy.from_dict(data["retention"]),
            proxy=None if proxy is None else ProxySettings(**proxy),
            lease=str(data.get("lease") or ""),
            fingerprint=data.get("fingerprint") or None,
        )


def job_fields(segment: Segment, spec: JobSpec, *, skip: bool = False, codec: str = "zstd") -> dict[str, bytes]:
    """The stream entry of one segment job (`skip`: a marker without frames, see the module doc;
    `codec`: see `encode_frames`)."""
    meta = {
        "stream": segment.stream_id,
        "index": int(segment.index),
        "start": float(segment.start),
        "end": float(segment.end),
        "ts": [float(t) for t in segment.timestamps],
        "ff": int(segment.first_frame_index),
        "wc": segment.wallclock_start,
        "gap": float(segment.gap_before),
        "fps": float(segment.sample_fps),
        "source": segment.source.to_dict(),
        "spec": spec.to_dict(),
        "skip": skip,
        "queued_at": time.time(),
    }
    fields = {"job": json.dumps(meta, separators=(",", ":")).encode()}
    if not skip:
        fields["frames"] = encode_frames(segment.frames, codec=codec)
    return fields


@dataclass
class Job:
    """One delivered job: the entry's id, its decoded metadata, and the segment it describes."""

    queue_key: str
    stream: str
    entry_id: str
    meta: dict[str, Any]
    frames: bytes | None
    deliveries: int = 1

    @property
    def index(self) -> int:
        return int(self.meta["index"])

    @property
    def skip(self) -> bool:
        return bool(self.meta.get("skip"))

    @property
    def spec(self) -> JobSpec:
        return JobSpec.from_dict(self.meta["spec"])

    def segment(self) -> Segment:
        """The segment to compress (frames decoded here; JobError when they are damaged)."""
        m = self.meta
        frames = decode_frames(self.frames or b"")
        ts = np.asarray(m["ts"], dtype=np.float64)
        if len(ts) != frames.shape[0]:
            raise JobError(f"the job has {len(ts)} timestamps for {frames.shape[0]} frames")
        return Segment(
            stream_id=self.stream, index=self.index, start=float(m["start"]), end=float(m["end"]),
            timestamps=ts, frames=frames, source=SourceInfo(**m["source"]), sample_fps=float(m["fps"]),
            first_frame_index=int(m["ff"]), wallclock_start=m["wc"], gap_before=float(m["gap"]),
        )

    def skipped_record(self) -> SegmentRecord:
        """Metadata only, for an index that will have no segment (a gap)."""
        m = self.meta
        return SegmentRecord(stream=self.stream, index=self.index, start=float(m["start"]), end=float(m["end"]),
                             timestamps=np.asarray(m["ts"], dtype=np.float64), frame_size=(0, 0),
                             first_frame_index=int(m["ff"]))


def _parse_entry(queue_key: str, stream: str, entry_id: Any, fields: dict[bytes, bytes]) -> Job:
    eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    try:
        meta = json.loads(fields[b"job"])
    except (KeyError, ValueError) as exc:
        meta = {"index": -1, "error": f"unreadable job metadata ({exc})"}
    return Job(queue_key, stream, eid, meta, fields.get(b"frames"))


# ---- the queue ---------------------------------------------------------------------------------------
class JobQueue:
    """The Redis side of the work queue: keys, push with backpressure, read, claim, ack, dead letters."""

    def __init__(self, client: redis.Redis, *, prefix: str = "tempo", settings: QueueSettings | None = None) -> None:
        self.client = client
        self.prefix = prefix
        self.settings = settings or QueueSettings()

    @classmethod
    def for_store(cls, store: RedisMemoryStore, settings: QueueSettings | None = None) -> JobQueue:
        return cls(store.client, prefix=store.prefix, settings=settings)

    def k_jobs(self, name: str) -> str:
        return f"{self.prefix}:q:{{{name}}}:jobs"

    def k_dead(self, name: str) -> str:
        return f"{self.prefix}:q:{{{name}}}:dead"

    def k_state(self, name: str) -> str:
        return f"{self.prefix}:q:{{{name}}}:state"

    def k_fails(self, name: str) -> str:
        return f"{self.prefix}:q:{{{name}}}:fails"

    def k_streams(self) -> str:
        return f"{self.prefix}:q:streams"

    def k_workers(self) -> str:
        return f"{self.prefix}:q:workers"

    # -- producer side
    def register(self, name: str) -> None:
        """Make the stream's job queue and its consumer group (idempotent)."""
        self.client.sadd(self.k_streams(), name)
        try:
            self.client.xgroup_create(self.k_jobs(name), GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def streams(self) -> list[str]:
        return sorted(x.decode() for x in self.client.smembers(self.k_streams()))

    def state(self, name: str) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.client.hgetall(self.k_state(name)).items()}

    def set_lease(self, name: str, token: str) -> None:
        """Remember the writer lease token the stream's queued jobs carry (a producer run again reuses it)."""
        self.client.hset(self.k_state(name), "lease", token)

    def push(self, segment: Segment, spec: JobSpec, *, live: bool, stop: threading.Event | None = None,
             poll: float = 0.05) -> int:
        """Queue one segment job; returns how many older jobs were dropped to make room (live only).

        A file waits while the stream has `max_jobs` outstanding jobs; a live source drops the oldest
        queued job instead (its index becomes a gap). `stop` ends a wait early (returns -1)."""
        return self.push_many([segment], spec, live=live, stop=stop, poll=poll)

    def push_many(self, segments: Sequence[Segment], spec: JobSpec, *, live: bool,
                  stop: threading.Event | None = None, poll: float = 0.05) -> int:
        """`push` of one stream's consecutive segments (at most `max_jobs`) in one transaction: a file
        producer queues a few at a time, so Redis writes (and, under `appendfsync always`, fsyncs) once
        for them all."""
        window = spec.sampling.window
        entries = [(s.index, s.end, (s.first_frame_index // window + 1) * window, job_fields(s, spec))
                   for s in segments]
        return self.push_fields(segments[0].stream_id, entries, live=live, stop=stop, poll=poll)

    def push_fields(self, name: str, entries: Sequence[tuple[int, float, int | None, dict[str, bytes]]], *,
                    live: bool, stop: threading.Event | None = None, poll: float = 0.05) -> int:
        """`push_many` of entries already made by `job_fields`: (segment index, its end in seconds, the
        first sampling slot of the grid window after it — where a producer run again seeks — or None,
        the fields). The Redis side alone: two round trips (room check; XADDs + state)."""
        key = self.k_jobs(name)
        need = min(len(entries), self.settings.max_jobs)
        dropped = 0
        while self._outstanding(name) + need > self.settings.max_jobs:
            if not live:
                if stop is not None and stop.wait(poll):
                    return -1
                if stop is None:
                    time.sleep(poll)
                continue
            if not self._drop_oldest(name):
                break
            dropped += 1
        index, end, resume_slot, _ = entries[-1]
        pipe = self.client.pipeline(transaction=True)
        for *_, fields in entries:
            pipe.xadd(key, fields)  # type: ignore[arg-type]
        state: dict[str, Any] = {"produced": index, "produced_end": repr(float(end))}
        if resume_slot is not None:
            state["produced_slot"] = resume_slot
        pipe.hset(self.k_state(name), mapping=state)
        pipe.execute()
        return dropped

    def _entries(self, key: str, page: int = 8) -> Iterator[tuple[Any, dict[bytes, bytes]]]:
        """The stream's entries oldest first, read a few at a time (jobs are megabytes)."""
        start = "-"
        while True:
            entries = self.client.xrange(key, min=start, count=page)
            yield from entries
            if len(entries) < page:
                return
            last = entries[-1][0]
            start = "(" + (last.decode() if isinstance(last, bytes) else str(last))

    def _outstanding(self, name: str) -> int:
        """Jobs with frames not yet acknowledged (skip markers are tiny and not counted)."""
        length, markers = self.client.pipeline(transaction=False).xlen(self.k_jobs(name)).hget(
            self.k_state(name), "markers").execute()
        return int(length) - int(markers or 0)

    def _drop_oldest(self, name: str) -> bool:
        """Replace the oldest job that still carries frames by a skip marker; False when none."""
        key = self.k_jobs(name)
        for entry_id, fields in self._entries(key):
            job = _parse_entry(key, name, entry_id, fields)
            if job.skip or job.frames is None:
                continue
            marker = dict(job.meta, skip=True)
            pipe = self.client.pipeline(transaction=True)
            pipe.xdel(key, job.entry_id)
            pipe.xadd(key, {"job": json.dumps(marker, separators=(",", ":")).encode()})
            pipe.hincrby(self.k_state(name), "dropped", 1)
            pipe.hincrby(self.k_state(name), "markers", 1)
            pipe.execute()
            return True
        return False

    # -- worker side
    def read(self, consumer: str, count: int, streams: Iterable[str], block: float | None = None) -> list[Job]:
        """Up to `count` new jobs across `streams` for this consumer (waits up to `block` seconds)."""
        names = list(streams)
        if not names or count < 1:
            return []
        wait = self.settings.block if block is None else block
        by_key = {self.k_jobs(n): n for n in names}
        if is_cluster(self.client):
            raw = self._read_slots(consumer, count, list(by_key), wait)
        else:
            raw = self.client.xreadgroup(GROUP, consumer, dict.fromkeys(by_key, ">"), count=count,
                                         block=max(1, int(wait * 1000)))
        jobs = []
        for key, entries in raw or []:
            k = key.decode() if isinstance(key, bytes) else key
            jobs += [_parse_entry(k, by_key[k], eid, f) for eid, f in entries if f]
        return jobs[:count] if len(jobs) > count else jobs

    def _read_slots(self, consumer: str, count: int, keys: list[str], wait: float) -> list[Any]:
        """XREADGROUP on a Redis Cluster: one command can only name keys of one slot, so the job
        streams are read slot by slot without blocking, polling for up to `wait` seconds (every 50 ms,
        backing off to 400 ms while nothing comes: an idle worker costs each slot ~3 reads a second)."""
        by_slot: dict[int, list[str]] = {}
        for key in keys:
            by_slot.setdefault(self.client.keyslot(key), []).append(key)
        deadline = time.monotonic() + wait
        pause = 0.05  # seconds
        while True:
            raw: list[Any] = []
            for group in by_slot.values():
                got = self.client.xreadgroup(GROUP, consumer, dict.fromkeys(group, ">"), count=count)
                raw += got or []
                if sum(len(entries) for _, entries in raw) >= count:
                    return raw
            if raw or time.monotonic() >= deadline:
                return raw
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(2 * pause, 0.4)

    def claim(self, consumer: str, count: int, streams: Iterable[str]) -> list[Job]:
        """Jobs other (dead or stuck) consumers left unacknowledged for `claim_idle` seconds."""
        idle_ms = int(self.settings.claim_idle * 1000)
        jobs: list[Job] = []
        for name in streams:
            if len(jobs) >= count:
                break
            key = self.k_jobs(name)
            try:
                reply = self.client.xautoclaim(key, GROUP, consumer, idle_ms, start_id="0-0",
                                               count=count - len(jobs))
            except redis.ResponseError as exc:  # NOGROUP: the queue was deleted meanwhile
                log.debug("cannot claim from %s: %s", key, exc)
                continue
            entries = reply[1] if len(reply) > 1 else []
            claimed = [_parse_entry(key, name, eid, f) for eid, f in entries if f]
            if claimed:
                counts = {
                    (p["message_id"].decode() if isinstance(p["message_id"], bytes) else p["message_id"]):
                        int(p["times_delivered"])
                    for p in self.client.xpending_range(key, GROUP, min=claimed[0].entry_id,
                                                        max=claimed[-1].entry_id, count=len(claimed) + 16)
                }
                for job in claimed:
                    job.deliveries = counts.get(job.entry_id, 2)
            jobs += claimed
        return jobs

    def ack(self, jobs: Iterable[Job]) -> None:
        """Acknowledge and delete finished jobs (their stream's length is its backlog)."""
        pipe = self.client.pipeline(transaction=False)
        for job in jobs:
            pipe.xack(job.queue_key, GROUP, job.entry_id)
            pipe.xdel(job.queue_key, job.entry_id)
            pipe.hdel(self.k_fails(job.stream), job.entry_id)
        deleted = pipe.execute()[1::3]
        markers = [job for job, gone in zip(jobs, deleted, strict=True) if job.skip and gone]
        for job in markers:  # counted once: only the call that deleted the entry
            self.client.hincrby(self.k_state(job.stream), "markers", -1)

    def record_failure(self, job: Job) -> int:
        """Count a failed attempt; returns the attempts so far."""
        return int(self.client.hincrby(self.k_fails(job.stream), job.entry_id, 1))

    def dead_letter(self, job: Job, error: str, attempts: int) -> None:
        """Move the job to its stream's dead-letter stream (metadata + error, no frames) and ack it."""
        meta = {k: v for k, v in job.meta.items() if k != "spec"}
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(self.k_dead(job.stream),
                  {"job": json.dumps(meta, separators=(",", ":")), "error": error[:2000],
                   "attempts": attempts, "entry": job.entry_id, "at": repr(time.time())},
                  maxlen=self.settings.dead_max, approximate=True)
        pipe.hincrby(self.k_state(job.stream), "dead", 1)
        pipe.xack(job.queue_key, GROUP, job.entry_id)
        pipe.xdel(job.queue_key, job.entry_id)
        pipe.hdel(self.k_fails(job.stream), job.entry_id)
        if pipe.execute()[3] and job.skip:
            self.client.hincrby(self.k_state(job.stream), "markers", -1)

    def dead_letters(self, name: str, count: int = 100) -> list[dict[str, Any]]:
        """The stream's newest dead letters, oldest first: {id, job, error, attempts}."""
        out = []
        for eid, f in reversed(self.client.xrevrange(self.k_dead(name), count=count)):
            out.append({"id": eid.decode(), "job": json.loads(f[b"job"]), "error": f[b"error"].decode(),
                        "attempts": int(f[b"attempts"])})
        return out

    def note_worker(self, consumer: str, segments: int, busy: float) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.hincrby(self.k_workers(), f"{consumer}:segments", segments)
        pipe.hincrbyfloat(self.k_workers(), f"{consumer}:busy", busy)
        pipe.hset(self.k_workers(), f"{consumer}:seen", repr(time.time()))
        pipe.execute()

    def delete(self, name: str) -> None:
        """Remove a stream's job queue, dead letters and counters."""
        self.client.delete(self.k_jobs(name), self.k_dead(name), self.k_state(name), self.k_fails(name))
        self.client.srem(self.k_streams(), name)

    # -- status
    def status(self, store: RedisMemoryStore | None = None) -> dict[str, Any]:
        """Per stream: backlog, pending, lag, dropped, dead letters, produced and committed indices;
        per worker: segments, busy seconds, throughput (segments per busy second), last seen."""
        streams = {}
        for name in self.streams():
            key = self.k_jobs(name)
            state = self.state(name)
            pending = 0
            with contextlib.suppress(redis.ResponseError):  # no group yet
                pending = int(self.client.xpending(key, GROUP)["pending"])
            queued = int(self.client.xlen(key))
            committed = -1
            if store is not None:
                try:
                    committed = store.stream_info(name).committed
                except TempoError:
                    committed = -1
            produced = int(state.get("produced", -1))
            streams[name] = {
                "queued": queued,
                "pending": pending,
                # Acknowledged jobs are deleted, so what is queued and not pending was never delivered
                # (XINFO's own lag is unknown once entries are deleted).
                "lag": max(0, queued - pending),
                "produced": produced,
                "committed": committed,
                "behind": max(0, produced - committed),
                "dropped": int(state.get("dropped", 0)),
                "dead_letters": int(self.client.xlen(self.k_dead(name))),
            }
        workers: dict[str, dict[str, float]] = {}
        now = time.time()
        for k, v in self.client.hgetall(self.k_workers()).items():
            consumer, _, part = k.decode().rpartition(":")
            workers.setdefault(consumer, {})[part] = float(v)
        worker_rows = {
            c: {"segments": int(w.get("segments", 0)), "busy_seconds": round(w.get("busy", 0.0), 3),
                "segments_per_second": round(w.get("segments", 0) / w["busy"], 3) if w.get("busy") else 0.0,
                "seen_seconds_ago": round(now - w["seen"], 1) if "seen" in w else None}
            for c, w in sorted(workers.items())
        }
        return {"streams": streams, "workers": worker_rows}


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


# ---- producer -------------------------------------------------------------------------------------------
@dataclass
class ProduceReport:
    """What one producer run queued. Counts of segments; seconds."""

    stream: str
    source: str
    resumed_from: int
    queued: int = 0
    dropped: int = 0
    video_seconds: float = 0.0
    wall_seconds: float = 0.0
    interrupted: bool = False
    decode: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"stream": self.stream, "source": self.source, "resumed_from": self.resumed_from,
                "queued": self.queued, "dropped": self.dropped, "video_seconds": round(self.video_seconds, 3),
                "wall_seconds": round(self.wall_seconds, 3), "interrupted": self.interrupted, "decode": self.decode}


def produce(
    source: str,
    stream: str,
    *,
    queue: JobQueue,
    store: RedisMemoryStore,
    spec: JobSpec,
    max_segments: int | None = None,
    stop: threading.Event | None = None,
    lease_seconds: float | None = None,
) -> ProduceReport:
    """Decode `source` and queue one job per segment for `stream`, resuming after what is already
    queued or committed (files seek there; live sources continue the stream's timeline).

    One writer per stream, as `tempo ingest`: the producer holds the stream's writer lease while it
    runs (StreamBusyError, before the source is opened, when another ingest or producer holds it;
    `lease_seconds`: default $TEMPO_WRITER_LEASE, else 30 s) and every job carries its token, which
    the workers' commits are checked against. A producer run again takes the lease under the token
    of the jobs still queued, so they still land."""
    from tempo.memory.ingest import _Lease, lease_seconds_from_env

    store.check_name(stream)
    seconds = lease_seconds_from_env() if lease_seconds is None else lease_seconds
    lease = _Lease(store, stream, seconds, queue.state(stream).get("lease") or None)
    try:
        queue.set_lease(stream, lease.token)
        return _produce(source, stream, queue=queue, store=store, spec=dataclasses.replace(spec, lease=lease.token),
                        max_segments=max_segments, stop=stop)
    finally:
        lease.release()


def _produce(
    source: str,
    stream: str,
    *,
    queue: JobQueue,
    store: RedisMemoryStore,
    spec: JobSpec,
    max_segments: int | None,
    stop: threading.Event | None,
) -> ProduceReport:
    from tempo.memory.ingest import _continue_live_timeline, _decode_stats

    t0 = time.perf_counter()
    probe = iter_segments(source, stream_id=stream, config=spec.sampling, start_segment=0)
    info = probe.info
    done, end = -1, None  # the last job number done contiguously, and the stream's end (seconds)
    known_info = None
    if stream in store.stream_names():
        known = known_info = store.stream_info(stream)
        known_uri = known.source.get("uri")
        if known_uri is not None and known_uri != info.uri:
            probe.close()
            raise SourceMismatchError(f"stream {stream!r} was ingested from {known_uri!r}, not {info.uri!r}; "
                                      "use another stream name for another source")
        try:
            known.check_source_unchanged(info.uri)  # SourceChangedError: a replaced file
        except BaseException:
            probe.close()
            raise
        done, end = store.landed_through(stream), known.end
    if info.kind == "file":
        spec = dataclasses.replace(spec, fingerprint=fingerprint_file(info.uri))
    state = queue.state(stream)
    produced = int(state.get("produced", -1))
    if produced > done:
        end = float(state["produced_end"])
    start = max(done, produced) + 1
    queue.register(stream)
    segments: Any = probe
    offset = (0, 0.0)
    if info.live:
        if start and end is not None:
            offset = (start, float(end))
    elif start:
        probe.close()
        # Seek to the grid window after the last job queued (or landed), as a resumed `tempo ingest`
        # does: the keyframe before it, then frames skipped by their timestamps. Without the slot (the
        # queue's state was deleted, or came from before slots were kept) the earlier segments are
        # decoded and skipped, since where job `start` begins depends on the gaps before it.
        slot = None
        if produced >= done and "produced_slot" in state:
            slot = int(state["produced_slot"])
        elif known_info is not None and done == known_info.committed and known_info.committed >= 0:
            slot = known_info.resume_slot
        segments = iter_segments(source, stream_id=stream, config=spec.sampling, start_segment=start, start_slot=slot)
    report = ProduceReport(stream, info.uri, start)
    # A live source's job goes out at once; a file's (decoded faster than real time) go out a few at a
    # time, in one transaction each (`push_many`).
    batch = 1 if info.live else max(1, min(FILE_PUSH_BATCH, queue.settings.max_jobs))
    pending: list[Segment] = []

    def flush() -> bool:
        """Queue the pending segments; False when a stop ended the wait for room."""
        if not pending:
            return True
        dropped = queue.push_many(pending, spec, live=info.live, stop=stop)
        if dropped < 0:
            return False
        report.dropped += dropped
        report.queued += len(pending)
        report.video_seconds += sum(s.end - s.start for s in pending)
        pending.clear()
        return True

    try:
        for segment in segments:
            if max_segments is not None and report.queued + len(pending) >= max_segments:
                break
            if offset[0]:
                segment = _continue_live_timeline(segment, *offset)
            pending.append(segment)
            if len(pending) >= batch and not flush():
                report.interrupted = True
                break
            if stop is not None and stop.is_set():
                flush()  # what is decoded already goes out, if there is room
                report.interrupted = True
                break
        if not report.interrupted and not flush():
            report.interrupted = True
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        close = getattr(segments, "close", None)
        if close is not None:
            close()
    report.decode = _decode_stats(getattr(segments, "stats", None))
    report.wall_seconds = time.perf_counter() - t0
    return report


# ---- worker ---------------------------------------------------------------------------------------------
def default_consumer_name() -> str:
    """host-pid: unique per worker process, readable in `tempo queue status`."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class WorkerStats:
    segments: int = 0  # committed (or found already committed) by this worker
    dead: int = 0
    batches: int = 0


class QueueMonitor(Protocol):
    """A stream's rules as a worker applies them (tempo.agent.monitoring.RuleMonitor), made afresh from
    Redis for each use: other workers move the stream's rule state."""

    def queries(self) -> list[str]:
        """The texts of the stream's rules, to score in the generic pass."""
        ...

    def rule_ids(self) -> list[str]:
        """Their ids, in the same order."""
        ...

    def observe_scored(self, index: int, start: float, end: float, wallclock_start: float | None,
                       scores: dict[str, float]) -> Callable[[Any], None] | None:
        """Step the rules over segment `index`; what to queue in its landing's MULTI (or None)."""
        ...

    def landed(self) -> None:
        """The landing that queued `observe_scored`'s scripts committed: relay their alert events."""
        ...

    def idle(self) -> None:
        """Ask the stream's owed --verify questions (a no-op without a verifier)."""
        ...


# What a worker computed for one job: memory tokens (M, D), embedding (E,), rule id → score (None: no rules).
Computed = tuple[Segment, np.ndarray, np.ndarray, dict[str, float] | None]


class Worker:
    """One consumer of the group: read a batch across streams → generic pass (+ the streams' rules) +
    embedder → commit → ack.

    `concurrency` threads run this loop, each its own consumer (`{name}-{k}`), sharing the model.
    With `monitors` (stream → its rules), each stream's rules are scored in the generic pass, and the
    landing that commits a segment steps them and commits their state and alert events (into the
    stream's outbox, relayed to the alert log right after) in the same MULTI/EXEC
    (`_land_with_rules`), as a single-process ingest does; a job that lands before its predecessors
    stages its scores (`AlertStore.k_staged_scores`) for the landing that commits it.
    """

    def __init__(
        self,
        queue: JobQueue,
        store: RedisMemoryStore,
        *,
        model: TempoModel,
        embedder: SegmentEmbedder,
        model_id: str,
        batch_size: int = 8,
        name: str | None = None,
        on_batch: Callable[[list[Job]], None] | None = None,
        monitors: Callable[[str], QueueMonitor] | None = None,
    ) -> None:
        self.queue, self.store = queue, store
        self.monitors = monitors
        self.alerts = AlertStore(store.client, prefix=store.prefix)
        self.model, self.embedder, self.model_id = model, embedder, model_id
        self.batch_size = max(1, int(batch_size))
        self.name = name or default_consumer_name()
        self.on_batch = on_batch  # called after a batch is computed, before its commits (tests)
        self.stats = WorkerStats()
        self._known: set[str] = set()  # streams this worker has created/opened in the store
        self._lock = threading.Lock()

    def run(self, *, concurrency: int = 1, stop: threading.Event | None = None,
            idle_exit: float | None = None) -> WorkerStats:
        """Work until `stop` is set (or, with `idle_exit`, until no job came for that many seconds)."""
        stop = stop or threading.Event()
        if self.monitors is not None:  # alert events a worker killed between its commit and its relay left
            self.alerts.sweep()
        if concurrency <= 1:
            self._loop(self.name, stop, idle_exit)
            return self.stats
        threads = [threading.Thread(target=self._loop, args=(f"{self.name}-{k}", stop, idle_exit), daemon=True)
                   for k in range(concurrency)]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.5)
        except KeyboardInterrupt:
            stop.set()
            for t in threads:
                t.join(10.0)
        return self.stats

    def _loop(self, consumer: str, stop: threading.Event, idle_exit: float | None) -> None:
        last_work = time.monotonic()
        next_claim = 0.0
        while not stop.is_set():
            streams = self.queue.streams()
            jobs: list[Job] = []
            if time.monotonic() >= next_claim:
                jobs = self.queue.claim(consumer, self.batch_size, streams)
                next_claim = time.monotonic() + min(5.0, self.queue.settings.claim_idle / 2)
            if len(jobs) < self.batch_size:
                jobs += self.queue.read(consumer, self.batch_size - len(jobs), streams,
                                        block=0.05 if jobs else None)
            if not streams:
                stop.wait(self.queue.settings.block)
            if jobs:
                self.process(consumer, jobs)
                last_work = time.monotonic()
            elif idle_exit is not None and time.monotonic() - last_work > idle_exit:
                return

    def process(self, consumer: str, jobs: list[Job]) -> None:
        """Compress, embed, commit and acknowledge one batch of jobs (any streams, any order)."""
        from tempo.models.config import GENERIC_QUERY

        t0 = time.perf_counter()
        work: list[tuple[Job, Segment]] = []
        skips: list[Job] = []
        for job in jobs:
            if job.meta.get("index", -1) < 0:
                self._fail(job, str(job.meta.get("error", "the job has no index")), final=True)
            elif job.deliveries > self.queue.settings.max_failures:
                self._fail(job, f"its worker stopped {job.deliveries - 1} times while processing it", final=True)
            elif job.skip:
                skips.append(job)
            else:
                try:
                    work.append((job, job.segment()))
                except (JobError, TypeError, ValueError, KeyError) as exc:
                    self._fail(job, str(exc))
        landing: list[tuple[Job, Computed | None]] = [(job, None) for job in skips]
        if work:
            try:
                results = self._compute(work, GENERIC_QUERY)
            except Exception as exc:  # one bad segment must not sink the batch: retry them one by one
                if len(work) == 1:
                    self._fail(work[0][0], f"{type(exc).__name__}: {exc}")
                    results = []
                    work = []
                else:
                    log.info("batch of %d failed (%s); retrying its jobs one by one", len(work), exc)
                    self._commit_batch(landing)
                    for job, _ in work:
                        self.process(consumer, [job])
                    return
            if self.on_batch is not None:
                self.on_batch([j for j, _ in work])
            landing += [(job, (segment, *computed)) for (job, segment), computed in zip(work, results, strict=True)]
        self._commit_batch(landing)
        done = len(work) + len(skips)
        with self._lock:
            self.stats.batches += 1
        self.queue.note_worker(consumer, done, time.perf_counter() - t0)
        if self.monitors is not None:
            # The --verify questions owed for alerts these landings opened (or earlier ones a worker
            # left when it died), between batches as a single-process ingest asks them. Each alert
            # is recorded once, whichever worker answers first.
            for stream in dict.fromkeys(job.stream for job, _ in work):
                self.monitors(stream).idle()

    def _compute(
        self, work: list[tuple[Job, Segment]], query: str
    ) -> list[tuple[np.ndarray, np.ndarray, dict[str, float] | None]]:
        """Memory tokens (M, D), embedding (E,) and rule scores of each job's segment. Segments whose
        streams have the same rule texts share a forward (the rules ride on the generic pass)."""
        rules: dict[str, tuple[list[str], list[str]]] = {}  # stream → (rule ids, texts)
        if self.monitors is not None:
            for stream in dict.fromkeys(job.stream for job, _ in work):
                monitor = self.monitors(stream)
                texts = monitor.queries()
                rules[stream] = (monitor.rule_ids(), texts)
        groups: dict[tuple[str, ...], list[int]] = {}
        for row, (job, _) in enumerate(work):
            groups.setdefault(tuple(rules.get(job.stream, ([], []))[1]), []).append(row)
        memory: list[np.ndarray] = [np.zeros(0)] * len(work)
        scores: list[dict[str, float] | None] = [None] * len(work)
        for texts, rows in groups.items():
            segments = [work[r][1] for r in rows]
            if texts:  # (n, M, D) memory and (n, R) rule relevance from one forward
                _, mem, rule_scores = self.model.compress_with_rules(segments, query, list(texts),
                                                                     batch_size=self.batch_size)
            else:
                _, mem = self.model.compress(segments, query, batch_size=self.batch_size)  # (n, M, D)
            for k, r in enumerate(rows):
                memory[r] = mem[k].float().numpy()
                if texts:
                    ids = rules[work[r][0].stream][0]
                    scores[r] = {rule_id: float(rule_scores[k, j]) for j, rule_id in enumerate(ids)}
        embeddings = self.embedder.embed_segments([s.frames for _, s in work])  # (n, E)
        return [(memory[i], embeddings[i], scores[i]) for i in range(len(work))]

    def _open_stream(self, job: Job) -> None:
        if job.stream in self._known:
            return
        from tempo.memory.ingest import stream_settings

        spec = job.spec
        settings = stream_settings(self.model, self.embedder, spec.sampling, model_id=self.model_id,
                                   stored_tokens=spec.stored_tokens)
        source = dict(job.meta["source"])
        if spec.fingerprint:
            source["fingerprint"] = spec.fingerprint
        self.store.create_stream(job.stream, source, settings, spec.retention)
        self._known.add(job.stream)

    def _commit_batch(self, batch: list[tuple[Job, Computed | None]]) -> None:
        """Land a batch's segments (None: a skip marker, a gap) and acknowledge the landed jobs: one
        landing round trip per stream (two with rules: read, then MULTI/EXEC) and one for all the acks."""
        groups: dict[tuple[str, str], list[tuple[Job, SegmentRecord | None, dict[str, float] | None]]] = {}
        for job, computed in batch:
            try:
                self._open_stream(job)
                spec = job.spec
                record, scores = None, None
                if computed is not None:
                    segment, tokens, embedding, scores = computed
                    # As memory.ingest: a live segment's proxy keeps the frames the compressor was fed.
                    record = SegmentRecord.from_segment(segment, tokens, embedding, stored_tokens=spec.stored_tokens,
                                                        proxy=spec.proxy, processor=self.model.processor)
            except TempoError as exc:
                self._fail(job, str(exc))
                continue
            groups.setdefault((job.stream, spec.lease), []).append((job, record, scores))
        landed: list[Job] = []
        for (stream, lease), items in groups.items():
            made = [(job, r, sc) for job, r, sc in items if r is not None]
            skips = [job for job, r, _ in items if r is None]
            try:
                if self.monitors is not None and (
                        any(sc is not None for _, _, sc in made)
                        or self.store.client.hlen(self.alerts.k_staged_scores(stream))):
                    results = self._land_with_rules(stream, lease, made, skips)
                else:
                    results = self.store.land_segments([r for _, r, _ in made if r is not None], lease=lease,
                                                       skipped=[job.skipped_record() for job in skips])
            except (TempoError, redis.RedisError) as exc:
                for job, _, _ in items:
                    self._fail(job, str(exc))
                continue
            for job, result in zip([j for j, _, _ in made] + skips, results, strict=True):
                if result.status is CommitStatus.NOT_WRITER:
                    self._fail(job, f"stream {job.stream!r} is being ingested by another process (its writer "
                                    "lease is held by another ingest than this job's producer)")
                else:
                    landed.append(job)
        if not landed:
            return
        self.queue.ack(landed)
        with self._lock:
            self.stats.segments += sum(1 for job in landed if not job.skip)

    def _land_with_rules(
        self, stream: str, lease: str, made: list[tuple[Job, SegmentRecord, dict[str, float] | None]],
        skips: list[Job], attempts: int = 32,
    ) -> list[CommitResult]:
        """`land_segments` of one stream's jobs with its rules stepped over every segment the landing
        commits (ours, and staged ones whose scores wait in `k_staged_scores`), all in one MULTI/EXEC.

        Under WATCH of the stream's info, landed jobs, rule state and staged scores, the landing is
        worked out as the _LAND script will do it (job numbers after the last done contiguous one,
        in order, each landed job with a segment taking the next index), the rules are stepped over
        those segments from the committed rule state, and the scripts are queued: the landings, then
        each segment's rule commit ("through"). Another writer of those keys meanwhile aborts the
        EXEC (WatchError) and it is worked out again."""
        assert self.monitors is not None
        client, keys = self.store.client, self.store.keys
        k_scores = self.alerts.k_staged_scores(stream)
        watched = [keys.info(stream), keys.landed(stream), self.alerts.k_rule_state(stream), k_scores]
        records = [r for _, r, _ in made]
        skipped = [job.skipped_record() for job in skips]
        ours = {job.index: (job, record, scores) for job, record, scores in made}
        skip_seqs = {job.index for job in skips}
        with client.pipeline(transaction=True) as pipe:
            for _ in range(attempts):
                try:
                    pipe.watch(*watched)
                    committed, seq = pipe.hmget(keys.info(stream), "committed", "seq")
                    if committed is None:  # no such stream: the landing reports it
                        pipe.unwatch()
                        return self.store.land_segments(records, lease=lease, skipped=skipped)
                    landed = {int(k): v.decode() for k, v in pipe.hgetall(keys.landed(stream)).items()}
                    staged = {int(k): json.loads(v) for k, v in pipe.hgetall(k_scores).items()}
                    monitor = self.monitors(stream)
                    monitor.queries()
                    done = int(seq if seq is not None else committed)
                    index, nseq, thens = int(committed), done + 1, []
                    while True:  # the contiguous run this landing commits, as _LAND walks it
                        if nseq in landed:  # landed earlier (a job sent again lands nothing new)
                            kind, start, end, _slot = landed[nseq].split()
                            blob = staged.get(nseq) or {}
                            scores, wallclock = blob.get("s"), blob.get("wc")
                        elif nseq in ours:
                            job, record, scores = ours[nseq]
                            kind, start, end, wallclock = "s", record.start, record.end, record.wallclock_start
                        elif nseq in skip_seqs:
                            kind, start, end, scores, wallclock = "x", 0.0, 0.0, None, None
                        else:
                            break
                        if kind == "s":
                            index += 1
                            if scores:
                                then = monitor.observe_scored(index, float(start), float(end), wallclock, scores)
                                if then is not None:
                                    thens.append(then)
                        nseq += 1
                    pipe.multi()
                    results = self.store.queue_lands(pipe, records, lease=lease, skipped=skipped)
                    for job, record, scores in made:  # ours that wait for predecessors keep their scores
                        if job.index >= nseq and scores is not None:
                            pipe.hset(k_scores, str(job.index),
                                      json.dumps({"s": scores, "wc": record.wallclock_start}, separators=(",", ":")))
                    used = [str(q) for q in staged if q < nseq]
                    if used:  # committed by this landing (stepped just above) or an earlier one
                        pipe.hdel(k_scores, *used)
                    for then in thens:
                        then(pipe)
                    done_results = results(pipe.execute())
                    monitor.landed()  # the alert events now in the stream's outbox go to the alert log
                    return done_results
                except redis.WatchError:
                    continue
        raise JobError(f"stream {stream!r}: other workers kept landing its segments meanwhile; will retry")

    def _fail(self, job: Job, error: str, *, final: bool = False) -> None:
        """Count a failure; at `max_failures` (or `final`) dead-letter the job and skip its index.
        Otherwise it stays pending and is claimed again after `claim_idle` seconds."""
        attempts = self.queue.record_failure(job)
        log.warning("job %s (stream %r, segment %s) failed (attempt %d): %s", job.entry_id, job.stream,
                    job.meta.get("index"), attempts, error)
        if not final and attempts < self.queue.settings.max_failures:
            return
        if job.meta.get("index", -1) >= 0:
            try:
                self._open_stream(job)
                self.store.land_segments([], lease=job.spec.lease, skipped=[job.skipped_record()])
            except (TempoError, KeyError, TypeError, ValueError) as exc:
                log.warning("could not record the gap of dead job %s: %s", job.entry_id, exc)
        self.queue.dead_letter(job, error, attempts)
        with self._lock:
            self.stats.dead += 1
