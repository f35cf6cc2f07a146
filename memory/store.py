"""RedisMemoryStore: streams and their segments in Redis (the source of truth of the memory).

The key layout is in memory/keys.py, the Lua scripts with their contracts in memory/scripts.py.
The class is composed of three files: this one (streams, memory id, IVF training), store_writes.py
(commits and the writer lease, carrying out the protocol below) and store_reads.py (segment reads);
the values it returns are in store_types.py.

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

import json
import re
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import redis
from tempo.inputs import STREAM_NAME_PATTERN
from tempo.memory import scripts
from tempo.memory.cluster import Script
from tempo.memory.cold import ColdTier
from tempo.memory.embedded import connect
from tempo.memory.errors import (
    InvalidStreamNameError,
    StreamSettingsMismatchError,
    UnknownStreamError,
    redis_errors,
)
from tempo.memory.keys import MonitoringKeys, StreamKeys
from tempo.memory.records import (
    Gap,
    RetentionPolicy,
    StorageBytes,
    StreamSettings,
)
from tempo.memory.store_reads import SegmentReads
from tempo.memory.store_types import IvfTraining, StreamInfo
from tempo.memory.store_writes import SegmentWrites
from tempo.streaming.segment import SourceInfo

_NAME = re.compile(STREAM_NAME_PATTERN)  # the one rule, shared with every entry point (tempo.inputs)


class RedisMemoryStore(SegmentWrites, SegmentReads):
    """Streams of segments in Redis. Thread-safe as redis-py clients are (one pool, many threads).

    Here: the stream directory (create, open, list, delete), the memory's id and the streams' IVF
    training. Segment commits and the writer lease are in SegmentWrites (memory/store_writes.py),
    segment reads in SegmentReads (memory/store_reads.py); the values returned in memory/store_types.py.
    """

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

    @redis_errors
    def stream_infos(self, names: Sequence[str]) -> dict[str, StreamInfo]:
        """The headers of `names` (in their order, repeats once) in one round trip whatever their
        number; UnknownStreamError (listing the known streams) for a missing one."""
        names = list(dict.fromkeys(names))
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self.keys.info(name))
            pipe.hexists(self.keys.streams(), name)
        raw = pipe.execute()
        out: dict[str, StreamInfo] = {}
        for j, name in enumerate(names):
            if not raw[2 * j] or not raw[2 * j + 1]:
                raise UnknownStreamError(name, self.stream_names())
            out[name] = self._info_from(name, raw[2 * j])
        return out

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
