"""RedisMemoryStore: streams and their segments in Redis (the source of truth of the memory).

The key layout is in memory/keys.py, the Lua scripts with their contracts in memory/scripts.py.

Commit protocol. Segments are committed in index order, each by one Lua script that writes all of
its keys and advances `committed` (a script runs atomically; AOF logs its effects as one
MULTI/EXEC, which a crash cannot half-apply). So a segment is either entirely present or absent,
and `committed` is exactly the last segment present: ingest resumes at `next_index()`.
  * index ≤ committed: a no-op reported as `duplicate` (idempotent re-put after a crash; first
    write wins; also covers segments retention already removed);
  * index = committed + 1: written, reported `committed`;
  * index > committed + 1: refused, reported `out_of_order` (nothing written). `put_segment`
    raises OutOfOrderCommitError, and so does `put_segments` for a batch that is not one stream's
    consecutive indices; a refusal of one means a refusal of all that follow it.
Indices have no holes: a stretch without video (a timestamp jump, a dropped live segment, a
reconnection) is a gap in time, not in indices. The script records it: a segment starting later
than the previous one ended adds (previous end, its start) to the stream's gaps.
Retention removes the oldest segments with another script that checks `first` (see retention.py),
and the gaps before the new oldest segment with them.
The work queue's workers (engine/worker.py) finish segments in any order: `land_segments` stages a
job that arrives early and commits every contiguous run of jobs in order (_LAND), so indices and
`committed` mean what they mean here; a job that was dead-lettered or dropped takes no index and
is a gap in time.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import redis
from tempo.inputs import STREAM_NAME_PATTERN
from tempo.memory import codec, scripts
from tempo.memory import cold as cold_tier
from tempo.memory.cluster import Script
from tempo.memory.cold import ColdPointer, ColdTier
from tempo.memory.embedded import connect
from tempo.memory.errors import (
    ColdShardMissingError,
    InvalidStreamNameError,
    MemoryUnavailableError,
    OutOfOrderCommitError,
    SegmentNotFoundError,
    SourceChangedError,
    StreamBusyError,
    StreamSettingsMismatchError,
    UnknownStreamError,
    redis_errors,
)
from tempo.memory.keys import MonitoringKeys, StreamKeys
from tempo.memory.proxy import stream_proxy_settings
from tempo.memory.records import (
    FileReference,
    Gap,
    RetentionPolicy,
    SegmentRecord,
    StorageBytes,
    StreamSettings,
)
from tempo.streaming.segment import SourceInfo
from tempo.streaming.sources import fingerprint_file

_NAME = re.compile(STREAM_NAME_PATTERN)  # the one rule, shared with every entry point (tempo.inputs)


class CommitStatus(StrEnum):
    COMMITTED = "committed"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    NOT_WRITER = "not_writer"  # another ingest (or queue producer) holds the stream's writer lease (nothing written)


@dataclass(frozen=True)
class CommitResult:
    index: int
    status: CommitStatus
    committed: int  # the stream's last committed index after this put


@dataclass(frozen=True)
class StreamInfo:
    """A stream's header: identity, settings, retained range and size."""

    name: str
    number: int  # unique, never reused: FAISS ids are number << 40 | index
    source: dict[str, Any]
    settings: StreamSettings
    retention: RetentionPolicy
    created: float  # Unix seconds
    first: int  # oldest retained index
    committed: int  # last fully committed index, -1 when none
    start: float | None  # seconds covered: first retained segment's start
    end: float | None  # last committed segment's end
    bytes: StorageBytes
    last_slot: int | None = None  # first sampling slot of the last committed segment (None: unknown)

    @property
    def segments(self) -> int:
        return max(0, self.committed - self.first + 1)

    @property
    def next_index(self) -> int:
        return self.committed + 1

    @property
    def resume_slot(self) -> int:
        """The sampling slot a file resumes at: the grid window after the last committed segment's.

        Streams written before slots were stored had no gaps in their indices, so index·window."""
        window = self.settings.window
        if self.last_slot is None or self.committed < 0:
            return self.next_index * window
        return (self.last_slot // window + 1) * window

    def check_source_unchanged(self, path: str | None = None) -> None:
        """Refuse (SourceChangedError) when the stream's file source differs from the file it was
        ingested from: its size, modification time or first MiB (the fingerprint stored at creation).
        Streams of live sources, and streams stored before fingerprints, pass."""
        stored = self.source.get("fingerprint")
        if not stored:
            return
        path = path or str(self.source.get("uri"))
        now = fingerprint_file(path)  # a FIFO, a directory or a missing file: one sentence
        changed = [what for key, what in (("size", "size"), ("mtime", "modification time"),
                                          ("head_sha256", "content")) if now[key] != stored.get(key)]
        if changed:
            raise SourceChangedError(
                f"{path} has changed since stream {self.name!r} was ingested from it ({', '.join(changed)} "
                "differ); re-ingest it under a new stream name"
            )

    def summary(self, gaps: Sequence[Gap] = ()) -> dict[str, Any]:
        """The `tempo streams --json` entry; `gaps` are the stream's stretches without video."""
        return {
            "name": self.name,
            "segments": self.segments,
            "start": self.start,
            "end": self.end,
            "bytes": self.bytes.total,
            "proxy": stream_proxy_settings(self.source, self.settings.extra),  # None: a file is re-read
            "gaps": [g.to_dict() for g in gaps],
            "gap_seconds": round(sum(g.seconds for g in gaps), 6),
        }


@dataclass(frozen=True)
class IndexFeed:
    """What the FAISS index reads of a run of segments."""

    indices: np.ndarray  # (n,) int64
    starts: np.ndarray  # (n,) float64 seconds
    ends: np.ndarray  # (n,) float64 seconds
    first_frame_index: np.ndarray  # (n,) int64
    embeddings: np.ndarray  # (n, E) float32 (stored float16 values)


@dataclass(frozen=True)
class IvfTraining:
    """A stream's IVF training, shared by every process through Redis (memory/index.py)."""

    trained_at: int  # segments the stream had when trained
    centroids: np.ndarray  # (nlist, E) float32 coarse centroids
    pq: np.ndarray | None = None  # (M, 256, E/M) float32 PQ codebook: IVF-PQ; None: IVF-Flat


class RedisMemoryStore:
    """Streams of segments in Redis. Thread-safe as redis-py clients are (one pool, many threads)."""

    def __init__(
        self, client: redis.Redis, *, prefix: str = "tempo", home: Path | str | None = None,
        cold: ColdTier | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.home = home  # data dir (None: $TEMPO_HOME or the platform's): the cold tier's default root
        self.keys = StreamKeys(prefix)
        self.cold = cold or ColdTier()  # reads cold-tier shards, with a small in-process cache
        self._put = Script(client, scripts.PUT)
        self._offer_ivf = Script(client, scripts.OFFER_IVF)
        self._heads = Script(client, scripts.HEADS)
        self._create = Script(client, scripts.CREATE)
        self._land = Script(client, scripts.LAND)
        self._renew = Script(client, scripts.RENEW)
        self._release = Script(client, scripts.RELEASE)

    @classmethod
    def connect(
        cls, url: str | None = None, home: Path | str | None = None, *, prefix: str = "tempo"
    ) -> RedisMemoryStore:
        """`url`, else $TEMPO_REDIS_URL, else the embedded server of the data dir (see embedded.py)."""
        return cls(connect(url, home), prefix=prefix, home=home)

    # ---- memory identity ------------------------------------------------------------------------
    @redis_errors
    def memory_id(self) -> str:
        """A random id created once per memory (Redis database + prefix); index snapshots record it."""
        key = self.keys.meta()
        self.client.hsetnx(key, "id", uuid.uuid4().hex)
        return self.client.hget(key, "id").decode()

    # ---- streams --------------------------------------------------------------------------------
    @staticmethod
    def check_name(name: str) -> str:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise InvalidStreamNameError(
                f"invalid stream name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        return name

    @redis_errors
    def create_stream(
        self,
        name: str,
        source: SourceInfo | dict[str, Any],
        settings: StreamSettings,
        retention: RetentionPolicy | None = None,
    ) -> StreamInfo:
        """Create the stream, or open it when it exists with the same settings (resume).

        Raises StreamSettingsMismatchError when it exists with other settings.
        """
        self.check_name(name)
        source_dict = source.to_dict() if isinstance(source, SourceInfo) else dict(source)
        if not self.client.hexists(self.keys.streams(), name):
            # Three steps, each touching one slot (a Redis Cluster runs no script across shards):
            # a number, the header (a script: two ingests creating the stream at once get one header
            # and one number), then the directory entry that makes the stream visible. A crash
            # before the last step leaves an invisible header that the next create_stream adopts.
            number = int(self.client.incr(self.keys.stream_seq()))
            number = int(self._create(
                keys=[self.keys.info(name)],
                args=[
                    number,
                    json.dumps(source_dict),
                    json.dumps(settings.to_dict()),
                    json.dumps((retention or RetentionPolicy()).to_dict()),
                    repr(time.time()),
                ],
            ))
            self.client.hset(self.keys.streams(), name, number)
        info = self.stream_info(name)
        if info.settings.comparable() != settings.comparable():
            diff = {
                k: (v, settings.comparable()[k])
                for k, v in info.settings.comparable().items()
                if settings.comparable()[k] != v
            }
            described = ", ".join(f"{k} {old!r} (now {new!r})" for k, (old, new) in diff.items())
            raise StreamSettingsMismatchError(
                f"stream {name!r} was ingested with other settings: {described}; "
                "use a new stream name or the original settings"
            )
        if retention is not None and retention != info.retention:
            self.set_retention(name, retention)
            info = self.stream_info(name)
        return info

    @redis_errors
    def set_retention(self, name: str, policy: RetentionPolicy) -> None:
        self._require(name)
        self.client.hset(self.keys.info(name), "retention", json.dumps(policy.to_dict()))

    @redis_errors
    def stream_names(self) -> list[str]:
        return sorted(k.decode() for k in self.client.hkeys(self.keys.streams()))

    def _require(self, name: str) -> None:
        if not self.client.hexists(self.keys.streams(), name):
            raise UnknownStreamError(name, self.stream_names())

    @redis_errors
    def stream_info(self, name: str) -> StreamInfo:
        """The stream's header; UnknownStreamError (listing the known streams) when absent."""
        raw = self.client.hgetall(self.keys.info(name))
        if not raw or not self.client.hexists(self.keys.streams(), name):
            raise UnknownStreamError(name, self.stream_names())
        return self._info_from(name, raw)

    @redis_errors
    def list_streams(self) -> list[StreamInfo]:
        names = self.stream_names()
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self.keys.info(name))
        return [self._info_from(n, raw) for n, raw in zip(names, pipe.execute(), strict=True) if raw]

    @staticmethod
    def _info_from(name: str, raw: dict[bytes, bytes]) -> StreamInfo:
        def num(key: str) -> int:
            return int(raw.get(key.encode(), b"0"))

        def opt_float(key: str) -> float | None:
            value = raw.get(key.encode())
            return None if value is None else float(value)

        first, committed = num("first"), num("committed")
        empty = committed < first
        return StreamInfo(
            name=name,
            number=num("number"),
            source=json.loads(raw[b"source"]),
            settings=StreamSettings.from_dict(json.loads(raw[b"settings"])),
            retention=RetentionPolicy.from_dict(json.loads(raw.get(b"retention", b"{}"))),
            created=float(raw[b"created"]),
            first=first,
            committed=committed,
            start=None if empty else opt_float("start"),
            end=None if empty else opt_float("end"),
            bytes=StorageBytes(num("b_tok"), num("b_emb"), num("b_prx"), num("b_meta"), num("x_tok") + num("x_prx")),
            last_slot=int(raw[b"slot"]) if b"slot" in raw else None,
        )

    @redis_errors
    def positions(self, names: Sequence[str]) -> dict[str, tuple[int, int, int, int]]:
        """(number, first, committed, IVF trained-at size or 0) per existing stream, one round trip
        (the index's sync probe)."""
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.hmget(self.keys.info(name), "number", "first", "committed")
            pipe.hget(self.keys.ivf(name), "n")
        raw = pipe.execute()
        out: dict[str, tuple[int, int, int, int]] = {}
        for j, name in enumerate(names):
            (number, first, committed), trained_at = raw[2 * j], raw[2 * j + 1]
            if number is not None:
                out[name] = (int(number), int(first), int(committed), int(trained_at or 0))
        return out

    def _token_dim(self, name: str) -> int:
        """D of a stream's tokens, one round trip; UnknownStreamError when absent."""
        settings = self.client.hget(self.keys.info(name), "settings")
        if settings is None:
            raise UnknownStreamError(name, self.stream_names())
        return int(json.loads(settings)["token_dim"])

    def next_index(self, name: str) -> int:
        """Where ingest resumes: the index after the last fully committed segment."""
        return self.stream_info(name).next_index

    @redis_errors
    def gaps(self, name: str, t0: float | None = None, t1: float | None = None) -> list[Gap]:
        """The stream's stretches without video overlapping [t0, t1) seconds (all by default), in
        time order. Only gaps between retained segments are kept."""
        self._require(name)
        low = "-inf" if t0 is None else f"({t0!r}"
        raw = self.client.zrangebyscore(self.keys.gaps(name), low, "+inf")
        out = []
        for member in raw:
            start, end = (float(x) for x in member.split())
            if t1 is None or start < t1:
                out.append(Gap(start, end))
        return out

    def bytes_used(self, name: str) -> StorageBytes:
        return self.stream_info(name).bytes

    @redis_errors
    def delete_stream(self, name: str, batch: int = 512) -> None:
        """Remove a stream and all its segments (its number is never reused)."""
        info = self.stream_info(name)
        root = self.client.hget(self.keys.info(name), "cold_root")
        # Unmarked first: should this deletion stop half-way, a create_stream of the name makes a new
        # header rather than adopting this one (see scripts.CREATE); then invisible.
        self.client.hdel(self.keys.info(name), "listed")
        self.client.hdel(self.keys.streams(), name)
        for lo in range(0, info.committed + 1, batch):
            keys = []
            for i in range(lo, min(lo + batch, info.committed + 1)):
                keys += [self.keys.segment(name, i), self.keys.tokens(name, i)]
            self.client.delete(*keys)
        for seq in (int(i) for i in self.client.hkeys(self.keys.landed(name))):
            self.client.delete(self.keys.staged(name, seq), self.keys.staged(name, seq, tokens=True))
        self.client.delete(self.keys.times(name), self.keys.ivf(name), self.keys.gaps(name), self.keys.landed(name),
                           self.keys.info(name))
        # Monitoring's per-stream keys (memory/alerts.py: rule state, staged scores, score history, the
        # alert outbox, in one DEL: a stream created anew starts both its rule state and its outbox
        # afresh); the alert log stays.
        watch = MonitoringKeys(self.prefix)
        self.client.delete(watch.rule_state(name), watch.staged_scores(name), watch.outbox(name),
                           *self.client.scan_iter(watch.history_pattern(name)))
        if root is not None:  # its cold-tier shards (memory/cold.py), last: Redis no longer points at them
            self.cold.shards(root.decode()).remove_stream(info.number)

    # ---- IVF training (kept in Redis so a rebuilt index is identical) -----------------------------
    @redis_errors
    def ivf_centroids(self, name: str) -> IvfTraining | None:
        """The stream's IVF training (coarse centroids, and the PQ codebook of an IVF-PQ index), or
        None if never trained."""
        trained_at, blob, dim, pq = self.client.hmget(self.keys.ivf(name), "n", "c", "d", "q")
        if trained_at is None:
            return None
        d = int(dim)
        codebook = None
        if pq:  # int32 M, then the codebook (M, 256, E/M) float32
            m = int(np.frombuffer(pq[:4], dtype="<i4")[0])
            codebook = np.frombuffer(pq[4:], dtype=np.float32).reshape(m, 256, d // m).copy()
        return IvfTraining(int(trained_at), np.frombuffer(blob, dtype=np.float32).reshape(-1, d).copy(), codebook)

    @redis_errors
    def offer_ivf_centroids(
        self, name: str, trained_at: int, centroids: np.ndarray, pq: np.ndarray | None = None
    ) -> IvfTraining:
        """Store a training made at `trained_at` segments (centroids (nlist, E); `pq` (M, 256, E/M)
        for IVF-PQ) unless a newer one is stored; returns the one that won, which every process then uses."""
        centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        codebook = b"" if pq is None else (
            np.array([pq.shape[0]], "<i4").tobytes() + np.ascontiguousarray(pq, dtype=np.float32).tobytes())
        self._offer_ivf(
            keys=[self.keys.ivf(name)], args=[trained_at, centroids.tobytes(), centroids.shape[1], codebook]
        )
        stored = self.ivf_centroids(name)
        assert stored is not None
        return stored

    # ---- writes -----------------------------------------------------------------------------------
    def _put_args(self, record: SegmentRecord, now: float, lease: str | None) -> tuple[list[str], list[Any]]:
        name = record.stream
        if record.file_ref is not None:
            ref_field, ref_value = "r", record.file_ref.to_json()
        elif record.proxy is not None:
            ref_field, ref_value = "p", record.proxy
        else:
            ref_field, ref_value = "r", b""
        tokens = b"" if record.tokens is None else codec.encode_tokens(record.tokens)
        if record.embedding is None:
            raise ValueError("a segment record needs its embedding")
        keys = [
            self.keys.info(name),
            self.keys.segment(name, record.index),
            self.keys.tokens(name, record.index),
            self.keys.times(name),
            self.keys.gaps(name),
            self.keys.writer(name),
        ]
        args = [
            record.index,
            repr(float(record.start)),
            repr(float(record.end)),
            record.meta_json(now),
            codec.encode_embedding(record.embedding),
            ref_field,
            ref_value,
            tokens,
            int(record.first_frame_index),
            lease or "",
        ]
        return keys, args

    def _result(self, record: SegmentRecord, raw: Sequence[int]) -> CommitResult:
        status, committed = int(raw[0]), int(raw[1])
        if status == -1:
            raise UnknownStreamError(record.stream, self.stream_names())
        kinds = {1: CommitStatus.COMMITTED, 0: CommitStatus.DUPLICATE, -2: CommitStatus.OUT_OF_ORDER,
                 -3: CommitStatus.NOT_WRITER}
        if status not in kinds:
            raise MemoryUnavailableError(f"Redis answered an unknown commit status {status} for segment "
                                         f"{record.index} of stream {record.stream!r}")
        return CommitResult(record.index, kinds[status], committed)

    @redis_errors
    def put_segment(self, record: SegmentRecord, *, lease: str | None = None) -> CommitResult:
        """Commit one segment atomically (see the module doc for duplicates and ordering).

        `lease`: the writer lease this commit is made under (acquire_writer); without one, the commit
        is refused while another writer holds the stream."""
        keys, args = self._put_args(record, time.time(), lease)
        result = self._result(record, self._put(keys=keys, args=args))
        if result.status is CommitStatus.OUT_OF_ORDER:
            raise OutOfOrderCommitError(
                f"segment {record.index} of stream {record.stream!r} cannot be committed before "
                f"segment {result.committed + 1}"
            )
        if result.status is CommitStatus.NOT_WRITER:
            raise StreamBusyError(self.busy_message(record.stream))
        return result

    # ---- one writer per stream --------------------------------------------------------------------
    @staticmethod
    def busy_message(name: str, expires_in: float | None = None) -> str:
        """The one sentence for a stream another writer holds; `expires_in`: seconds its lease has left."""
        within = "" if expires_in is None else f" (within {max(expires_in, 0.1):.1f} s)"
        return (f"stream {name!r} is being ingested by another process (its writer lease is held); "
                f"wait for that ingest to finish, or for its lease to expire{within} if it died")

    @redis_errors
    def land_segments(
        self, records: Sequence[SegmentRecord], *, lease: str = "", skipped: Sequence[SegmentRecord] = ()
    ) -> list[CommitResult]:
        """Commit jobs of the work queue in any order, each atomically, in one round trip (_LAND).

        Here a record's `index` is its job's number, the source's segment number; the segment is
        stored at the next free index once every job before it is done, so indices stay contiguous.
        `skipped` records (index, start, end, first_frame_index only) are jobs that will never have a
        segment (dead-lettered, or dropped by live backpressure): they take no index and are recorded
        as gaps in time. A job sent again is a `duplicate`, so retries are idempotent. `lease`: the
        producer's writer lease token the job carries; `not_writer` while another writer holds the
        stream. Results: one per record, then one per skipped record.
        """
        pipe = self.client.pipeline(transaction=False)
        results = self.queue_lands(pipe, records, lease=lease, skipped=skipped)
        return results(pipe.execute())

    def queue_lands(
        self, pipe: Any, records: Sequence[SegmentRecord], *, lease: str = "", skipped: Sequence[SegmentRecord] = ()
    ) -> Callable[[Sequence[Any]], list[CommitResult]]:
        """Queue `land_segments`' scripts on `pipe` (a worker's MULTI/EXEC with its rule commits after
        them); returns what turns their replies, the first len(records) + len(skipped), into results."""
        now = time.time()
        todo = [(r, False) for r in records] + [(r, True) for r in skipped]
        for record, skip in todo:
            if skip:
                record = dataclasses.replace(record, tokens=None, file_ref=None, proxy=None,
                                             embedding=np.zeros(1, np.float32))
            keys, args = self._put_args(record, now, None)
            name, seq = record.stream, record.index
            keys = [keys[0], self.keys.staged(name, seq), self.keys.staged(name, seq, tokens=True), keys[3],
                    self.keys.gaps(name), self.keys.writer(name), self.keys.landed(name)]
            args = [*args[:8], int(record.first_frame_index), lease, "1" if skip else "0",
                    self.keys.base(name)]
            self._land(keys=keys, args=args, client=pipe)

        def results(replies: Sequence[Any]) -> list[CommitResult]:
            out = []
            for (record, _), raw in zip(todo, replies[: len(todo)], strict=True):
                if int(raw[0]) == -3:
                    out.append(CommitResult(record.index, CommitStatus.NOT_WRITER, int(raw[1])))
                else:
                    out.append(self._result(record, raw))
            return out

        return results

    @redis_errors
    def landed_through(self, name: str) -> int:
        """The last work-queue job number done contiguously for the stream (its committed index when
        no job was skipped); -1 when none or no such stream. Where a queue producer resumes."""
        seq, committed = self.client.hmget(self.keys.info(name), "seq", "committed")
        value = seq if seq is not None else committed
        return -1 if value is None else int(value)

    @redis_errors
    def acquire_writer(self, name: str, seconds: float, token: str | None = None) -> str:
        """Take the stream's writer lease for `seconds` (SET NX PX); returns its token.

        StreamBusyError when another writer holds it. Renew with renew_writer well within `seconds`;
        a writer that dies without releasing it blocks the next one for at most `seconds`. `token`
        (default: a new random one) lets a work-queue producer take the lease again under the token
        its queued jobs already carry."""
        token = token or uuid.uuid4().hex
        if not self.client.set(self.keys.writer(name), token, nx=True, px=max(1, int(seconds * 1000))):
            left = self.client.pttl(self.keys.writer(name))  # milliseconds; < 0: expired meanwhile
            raise StreamBusyError(self.busy_message(name, left / 1000 if left > 0 else None))
        return token

    @redis_errors
    def renew_writer(self, name: str, token: str, seconds: float) -> bool:
        """Extend our lease to `seconds` from now; False when it is no longer ours (expired, taken)."""
        return bool(self._renew(keys=[self.keys.writer(name)], args=[token, max(1, int(seconds * 1000))]))

    @redis_errors
    def release_writer(self, name: str, token: str) -> None:
        """Give the lease back if it is still ours."""
        self._release(keys=[self.keys.writer(name)], args=[token])

    @redis_errors
    def put_segments(
        self,
        records: Sequence[SegmentRecord],
        *,
        lease: str | None = None,
        then: Sequence[Callable[[Any], None] | None] | None = None,
    ) -> list[CommitResult]:
        """Commit many segments in one round trip, each atomically, in the given order.

        `records` must be one stream's segments with consecutive indices (OutOfOrderCommitError
        otherwise, nothing written). Returns one result per record; if the first new one is out of
        order, it and all after it are `out_of_order`: the caller must treat that as a failure.
        `then[j]`, when given, queues more commands right after record j's put and the whole batch
        runs as one MULTI/EXEC, so they commit together with it (monitoring: memory/alerts.py).
        """
        if not records:
            return []
        first = records[0]
        for j, record in enumerate(records):
            if record.stream != first.stream or record.index != first.index + j:
                raise OutOfOrderCommitError(
                    f"segments {[r.index for r in records]} of stream {first.stream!r} are not "
                    "consecutive; nothing was committed"
                )
        now = time.time()
        extra = then is not None and any(f is not None for f in then)
        pipe = self.client.pipeline(transaction=extra)
        puts: list[int] = []  # position of each record's put among the queued commands
        for j, record in enumerate(records):
            keys, args = self._put_args(record, now, lease)
            puts.append(len(pipe))
            self._put(keys=keys, args=args, client=pipe)
            if extra and then is not None and then[j] is not None:
                then[j](pipe)
        raw = pipe.execute()
        return [self._result(r, raw[p]) for r, p in zip(records, puts, strict=True)]

    # ---- reads --------------------------------------------------------------------------------------
    @redis_errors
    def get_segments(
        self,
        name: str,
        indices: Sequence[int],
        *,
        tokens: bool | int = True,
        embedding: bool = True,
        recompress: bool = True,
    ) -> list[SegmentRecord | None]:
        """Records for `indices` (None where absent), one round trip.

        `tokens`: True for the whole stored head, an int k for its first k tokens only, False for none.
        """
        dim = self._token_dim(name)
        width = codec.token_record_bytes(dim)
        fields = ["m", "e", "r", "p", "c"] if recompress else ["m", "e", "c"]
        pipe = self.client.pipeline(transaction=False)
        for i in indices:
            pipe.hmget(self.keys.segment(name, i), fields)
            if tokens is True:
                pipe.get(self.keys.tokens(name, i))
            elif tokens:
                pipe.getrange(self.keys.tokens(name, i), 0, int(tokens) * width - 1)
        raw = pipe.execute()
        step = 2 if tokens is not False else 1
        rows = [raw[j * step] for j in range(len(indices))]
        toks = [raw[j * step + 1] if step == 2 else None for j in range(len(indices))]
        proxies = [values[3] if recompress else None for values in rows]
        # Cold segments (memory/cold.py): their token head and proxy come from the shards.
        wanted: list[tuple[int, ColdPointer, int]] = []
        slots: list[tuple[list[bytes | None], int]] = []
        for j, (i, values) in enumerate(zip(indices, rows, strict=True)):
            if values[0] is None or values[-1] is None:
                continue
            pointer = ColdPointer.parse(values[-1])
            if tokens is not False:
                wanted.append((int(i), pointer, cold_tier.TOKENS))
                slots.append((toks, j))
            if recompress:
                wanted.append((int(i), pointer, cold_tier.PROXY))
                slots.append((proxies, j))
        if wanted:
            for (target, j), payload in zip(slots, self._cold_payloads(name, wanted), strict=True):
                target[j] = payload or None
            if tokens is not False and tokens is not True:
                toks = [None if t is None else t[: int(tokens) * width] for t in toks]
        out: list[SegmentRecord | None] = []
        for j, i in enumerate(indices):
            values = rows[j]
            if values[0] is None:
                out.append(None)
                continue
            out.append(
                self._record(
                    name,
                    int(i),
                    values[0],
                    emb=values[1] if embedding else None,
                    ref=values[2] if recompress else None,
                    proxy=proxies[j],
                    tok=toks[j],
                    dim=dim,
                )
            )
        return out

    def _cold_payloads(self, name: str, wanted: Sequence[tuple[int, ColdPointer, int]]) -> list[bytes]:
        """Payloads of (index, pointer, kind) from the stream's cold-tier shards (checksums verified)."""
        root = self.client.hget(self.keys.info(name), "cold_root")
        if root is None:
            raise ColdShardMissingError(f"stream {name!r} points to cold-tier data but records no cold-tier root")
        return self.cold.read(name, root.decode(), wanted)

    def get_segment(self, name: str, index: int, **parts: Any) -> SegmentRecord:
        """One record; UnknownStreamError / SegmentNotFoundError (with the retained range) when absent."""
        record = self.get_segments(name, [index], **parts)[0]
        if record is None:
            info = self.stream_info(name)
            raise SegmentNotFoundError(
                f"stream {name!r} holds segments {info.first}..{info.committed}, not {index}"
            )
        return record

    @staticmethod
    def _record(
        name: str,
        index: int,
        meta: bytes,
        *,
        emb: bytes | None,
        ref: bytes | None,
        proxy: bytes | None,
        tok: bytes | None,
        dim: int,
    ) -> SegmentRecord:
        m = SegmentRecord.parse_meta(meta)
        return SegmentRecord(
            stream=name,
            index=index,
            start=float(m["s"]),
            end=float(m["e"]),
            timestamps=np.asarray(m["ts"], dtype=np.float64),
            frame_size=(int(m["hw"][0]), int(m["hw"][1])),
            first_frame_index=int(m["ff"]),
            wallclock_start=m["wc"],
            gap_before=float(m["gap"]),
            committed_at=float(m["c"]),
            tokens=codec.decode_tokens(tok, dim) if tok else None,
            embedding=codec.decode_embedding(emb) if emb else None,
            file_ref=FileReference.from_json(ref) if ref else None,
            proxy=proxy or None,
        )

    def iter_segments(
        self, name: str, start_index: int | None = None, *, batch: int = 256, **parts: Any
    ) -> Iterator[SegmentRecord]:
        """All retained segments in index order, fetched `batch` at a time."""
        info = self.stream_info(name)
        i = info.first if start_index is None else max(start_index, info.first)
        while i <= info.committed:
            hi = min(i + batch, info.committed + 1)
            for record in self.get_segments(name, range(i, hi), **parts):
                if record is not None:  # removed by retention meanwhile
                    yield record
            i = hi
            info = self.stream_info(name)

    @redis_errors
    def indices_in_time_range(self, name: str, t0: float, t1: float) -> list[int]:
        """Indices of retained segments overlapping [t0, t1) seconds, in order."""
        self._require(name)
        key = self.keys.times(name)
        pipe = self.client.pipeline(transaction=False)
        # The segment starting at or before t0 may still cover t0; the rest start inside the range.
        pipe.zrevrangebyscore(key, t0, "-inf", start=0, num=1)
        pipe.zrangebyscore(key, f"({t0}", f"({t1}")
        before, inside = pipe.execute()
        indices = [int(x) for x in before] + [int(x) for x in inside]
        if before:
            first = self.get_segments(name, [int(before[0])], tokens=False, embedding=False, recompress=False)
            if first[0] is None or first[0].end <= t0:
                indices = indices[1:]
        return indices

    def segments_in_time_range(self, name: str, t0: float, t1: float, **parts: Any) -> list[SegmentRecord]:
        """Records of the segments overlapping [t0, t1) seconds, in order."""
        records = self.get_segments(name, self.indices_in_time_range(name, t0, t1), **parts)
        return [r for r in records if r is not None]

    @redis_errors
    def embeddings(self, name: str, lo: int, hi: int) -> IndexFeed:
        """Segments lo..hi-1 for indexing, one round trip; absent ones (retention) are skipped.

        Embeddings are the stored float16 values as float32.
        """
        return self.embeddings_of(name, range(lo, hi))

    @redis_errors
    def embeddings_of(self, name: str, indices: Sequence[int]) -> IndexFeed:
        """`embeddings` of the given segments (in that order), one round trip; absent ones are skipped."""
        pipe = self.client.pipeline(transaction=False)
        for i in indices:
            pipe.hmget(self.keys.segment(name, i), "m", "e")
        idx, starts, ends, ffs, vecs = [], [], [], [], []
        for i, (meta, emb) in zip(indices, pipe.execute(), strict=True):
            if meta is None or not emb:
                continue
            m = json.loads(meta)
            idx.append(i)
            starts.append(m["s"])
            ends.append(m["e"])
            ffs.append(m["ff"])
            vecs.append(emb)
        width = len(vecs[0]) // 2 if vecs else 0
        matrix = np.frombuffer(b"".join(vecs), dtype=np.float16).reshape(len(idx), width).astype(np.float32)
        return IndexFeed(
            np.asarray(idx, np.int64),
            np.asarray(starts, np.float64),
            np.asarray(ends, np.float64),
            np.asarray(ffs, np.int64),
            matrix,
        )

    @redis_errors
    def token_heads(
        self, name: str, indices: Sequence[int], k: int, dim: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The first k stored tokens of each segment: ((n, k, D) float32, (n,) bool present).

        k·(D+34) bytes per segment cross the wire. One script call per 1024 segments (a few ms of
        Redis time each, so commits interleave), all calls in one round trip: thousands of anchors
        cost tens of milliseconds, not one command each. Rows of absent segments (or segments storing
        fewer than k tokens) are zero with present False.
        """
        width = codec.token_record_bytes(dim)
        nbytes = k * width
        keys = [self.keys.tokens(name, i) for i in indices]
        pipe = self.client.pipeline(transaction=False)
        for lo in range(0, len(keys), 1024):
            self._heads(keys=keys[lo : lo + 1024], args=[nbytes - 1], client=pipe)
        raw = [b for chunk in pipe.execute() for b in chunk]
        short = [j for j, b in enumerate(raw) if len(b) != nbytes]
        if short:  # absent, shorter than k, or in the cold tier (memory/cold.py): look for pointers
            pipe = self.client.pipeline(transaction=False)
            for j in short:
                pipe.hget(self.keys.segment(name, indices[j]), "c")
            cold = [(j, ColdPointer.parse(c)) for j, c in zip(short, pipe.execute(), strict=True) if c is not None]
            if cold:
                wanted = [(int(indices[j]), pointer, cold_tier.TOKENS) for j, pointer in cold]
                for (j, _), payload in zip(cold, self._cold_payloads(name, wanted), strict=True):
                    raw[j] = payload[:nbytes]
        present = np.fromiter((len(b) == nbytes for b in raw), dtype=bool, count=len(raw))
        if present.all():  # the usual case: decode in one pass, no masked copy
            return codec.decode_token_batch(raw, k, dim), present
        out = np.zeros((len(raw), k, dim), np.float32)
        if present.any():
            found = [b for b, ok in zip(raw, present, strict=True) if ok]
            out[present] = codec.decode_token_batch(found, k, dim)
        return out, present
