"""The work queue's Redis transport: ingest split into producers and workers that meet in Redis Streams
(DESIGN §3). This module is the Redis side (`JobQueue`, `JobSpec`, `Job`, `QueueSettings`); the producer
and the worker that run on it are tempo.engine's (engine/producer.py, engine/worker.py), the frame
codec of a job is memory/frames.py and its Prometheus metrics memory/queue_metrics.py.

A **producer** (`tempo ingest SOURCE --stream S --queue`, `engine.producer.produce`) decodes and segments on CPU and
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

**Workers** (`tempo worker`, `engine.worker.Worker`) form the consumer group `tempo-workers` on every job stream.
Each reads a batch across all streams (XREADGROUP), runs the generic SVLM pass (with each stream's
monitoring rules scored in the same forward) and the embedder on the whole batch (`encode_batch`), commits the
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
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis
from tempo.errors import TempoError
from tempo.memory.cluster import is_cluster
from tempo.memory.errors import JobError
from tempo.memory.frames import decode_audio_bytes, decode_frames, encode_audio, encode_frames
from tempo.memory.jobcheck import check_job, checkpoint_name, parse_place, place_field
from tempo.memory.proxy import ProxySettings
from tempo.memory.records import RetentionPolicy, SegmentRecord
from tempo.memory.store import RedisMemoryStore
from tempo.settings import environment
from tempo.streaming import SamplingConfig, Segment
from tempo.streaming.segment import SourceInfo
from tempo.streaming.subtitles import Cue

log = logging.getLogger(__name__)

GROUP = "tempo-workers"


@dataclass(frozen=True)
class QueueSettings:
    """How the work queue behaves. Seconds; counts of jobs."""

    max_jobs: int = 64  # outstanding jobs per stream (queued + in flight): the backpressure bound
    claim_idle: float = 30.0  # a job unacknowledged this long is claimed by another worker
    max_failures: int = 3  # attempts before a job goes to the dead-letter stream
    block: float = 1.0  # how long one read waits for jobs
    dead_max: int = 10_000  # dead letters kept per stream (oldest trimmed)
    worker_ttl: float = 86_400.0  # a worker row (and its metrics) not seen for this long is pruned

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
    asr: str | None = None  # the Whisper checkpoint the workers transcribe the jobs' audio with (issue 24)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sampling": {"fps": self.sampling.fps, "window": self.sampling.window,
                         "max_edge": self.sampling.max_edge, "tolerance": self.sampling.tolerance},
            "stored_tokens": self.stored_tokens,
            "retention": None if self.retention is None else self.retention.to_dict(),
            "proxy": None if self.proxy is None else dataclasses.asdict(self.proxy),
            "lease": self.lease,
            "fingerprint": self.fingerprint,
            **({"asr": self.asr} if self.asr else {}),
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
            asr=checkpoint_name(data.get("asr")),
        )


def job_fields(segment: Segment, spec: JobSpec, *, skip: bool = False, codec: str = "zstd") -> dict[str, bytes]:
    """The stream entry of one segment job (`skip`: a marker without frames, see the module doc;
    `codec`: see `encode_frames`). `segment.extra["cues"]` (subtitles) go in its metadata as "cu" rows;
    `segment.extra["audio"]` ([start, end) at 16 kHz, for the workers' speech recognition) in `audio`."""
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
    if segment.extra.get("cues") and not skip:
        meta["cu"] = [c.to_row() for c in segment.extra["cues"]]  # type: ignore[attr-defined]
    fields = {"job": json.dumps(meta, separators=(",", ":")).encode(),
              "place": place_field(segment.index, segment.start, segment.end, segment.first_frame_index)}
    if not skip:
        fields["frames"] = encode_frames(segment.frames, codec=codec)
        audio = segment.extra.get("audio")
        if audio is not None:
            fields["audio"] = encode_audio(audio)  # type: ignore[arg-type]
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
    # (index, start, end, first frame) from the entry's plain `place` field (memory/jobcheck.py):
    # where the job's gap goes when its metadata cannot be read.
    place: tuple[int, float, float, int] | None = None
    audio: bytes | None = None  # the segment's audio (memory/frames.py's encode_audio)

    @property
    def index(self) -> int:
        return int(self.meta["index"])

    def problem(self) -> str | None:
        """What is wrong with the job's fields (memory/jobcheck.py: checked before anything is
        allocated for it), or None."""
        try:
            check_job(self.meta, self.frames)
            self.spec  # noqa: B018 (the settings' own checks)
            SourceInfo(**self.meta["source"])
        except (JobError, TypeError, ValueError, KeyError) as exc:
            return str(exc) or type(exc).__name__
        return None

    def gap_place(self) -> tuple[int, float, float, int] | None:
        """Where this job's gap goes (index, start, end, first frame): its metadata's, else its place field's."""
        m = self.meta
        try:
            place = (m["index"], m["start"], m["end"], m["ff"])
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in place) \
                    and isinstance(place[0], int) and isinstance(place[3], int) \
                    and place[0] >= 0 and place[3] >= 0 and place[1] <= place[2]:
                return int(place[0]), float(place[1]), float(place[2]), int(place[3])
        except (KeyError, TypeError):
            pass
        return self.place

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
        extra: dict[str, object] = {"cues": [Cue.from_row(row) for row in m.get("cu", ())]}
        if self.audio is not None:
            extra["audio"] = decode_audio_bytes(self.audio)  # (n,) float32, 16 kHz, from `start`
        return Segment(
            stream_id=self.stream, index=self.index, start=float(m["start"]), end=float(m["end"]),
            timestamps=ts, frames=frames, source=SourceInfo(**m["source"]), sample_fps=float(m["fps"]),
            first_frame_index=int(m["ff"]), wallclock_start=m["wc"], gap_before=float(m["gap"]), extra=extra,
        )

    def skipped_record(self) -> SegmentRecord:
        """Metadata only, for an index that will have no segment (a gap); JobError when the job's place
        is unknown."""
        place = self.gap_place()
        if place is None:
            raise JobError("the job's place in the stream is unreadable")
        index, start, end, first = place
        ts = self.meta.get("ts")
        if not (isinstance(ts, list) and ts and all(isinstance(t, int | float) for t in ts)):
            ts = [start]
        return SegmentRecord(stream=self.stream, index=index, start=start, end=end,
                             timestamps=np.asarray(ts, dtype=np.float64), frame_size=(0, 0),
                             first_frame_index=first)


def _parse_entry(queue_key: str, stream: str, entry_id: Any, fields: dict[bytes, bytes]) -> Job:
    eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    try:
        meta = json.loads(fields[b"job"])
    except (KeyError, ValueError) as exc:
        meta = {"index": -1, "error": f"unreadable job metadata ({type(exc).__name__})"}
    if not isinstance(meta, dict):
        meta = {"index": -1, "error": "the job's metadata is not a JSON object"}
    return Job(queue_key, stream, eid, meta, fields.get(b"frames"), place=parse_place(fields.get(b"place")),
               audio=fields.get(b"audio"))


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
            marker_fields = {"job": json.dumps(marker, separators=(",", ":")).encode()}
            if b"place" in fields:
                marker_fields["place"] = fields[b"place"]
            pipe.xadd(key, marker_fields)  # type: ignore[arg-type]
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
        if job.place is not None and (not isinstance(meta.get("index"), int) or meta.get("index") == -1):
            meta["index"] = job.place[0]  # where its gap went
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

    def forget_workers(self, consumers: Iterable[str] = (), *, unseen_for: float | None = None) -> list[str]:
        """Remove the rows of `consumers` (a worker that stopped) and of every worker not seen for
        `unseen_for` seconds; returns the consumers removed. Their pending jobs stay pending (claimed)."""
        rows: dict[str, dict[str, bytes]] = {}
        for k, v in self.client.hgetall(self.k_workers()).items():
            consumer, _, part = k.decode().rpartition(":")
            rows.setdefault(consumer, {})[part] = v
        gone = set(consumers) & set(rows)
        if unseen_for is not None:
            cutoff = time.time() - unseen_for
            for consumer, row in rows.items():
                try:
                    seen = float(row.get("seen", b"0"))
                except ValueError:
                    seen = 0.0
                if seen < cutoff:
                    gone.add(consumer)
        if gone:
            self.client.hdel(self.k_workers(), *[f"{c}:{part}" for c in gone for part in rows[c]])
        return sorted(gone)

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
            committed = done = -1
            if store is not None:
                try:
                    committed = store.stream_info(name).committed
                    done = store.landed_through(name)  # job numbers: a dead job's gap counts as done
                except TempoError:
                    committed = done = -1
            produced = int(state.get("produced", -1))
            streams[name] = {
                "queued": queued,
                "pending": pending,
                # Acknowledged jobs are deleted, so what is queued and not pending was never delivered
                # (XINFO's own lag is unknown once entries are deleted).
                "lag": max(0, queued - pending),
                "produced": produced,
                "committed": committed,
                "behind": max(0, produced - (done if store is not None else committed)),
                "dropped": int(state.get("dropped", 0)),
                "dead_letters": int(self.client.xlen(self.k_dead(name))),
            }
        self.forget_workers(unseen_for=self.settings.worker_ttl)
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
