"""Segment writes of RedisMemoryStore: commits (one Lua script per segment), the work queue's
commits in any order, and the one writer lease per stream.

Mixed into RedisMemoryStore (memory/store.py), whose docstring holds the commit protocol these methods
carry out; the scripts and their contracts are in memory/scripts.py.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import redis
from tempo.memory import codec
from tempo.memory.cluster import Script
from tempo.memory.errors import (
    MemoryUnavailableError,
    OutOfOrderCommitError,
    StreamBusyError,
    UnknownStreamError,
    redis_errors,
)
from tempo.memory.keys import StreamKeys
from tempo.memory.records import SegmentRecord
from tempo.memory.store_types import CommitResult, CommitStatus


class SegmentWrites:
    """Committing segments and holding a stream's writer lease."""

    # Provided by RedisMemoryStore (memory/store.py):
    client: redis.Redis
    keys: StreamKeys
    _put: Script  # scripts.PUT
    _land: Script  # scripts.LAND
    _renew: Script  # scripts.RENEW
    _release: Script  # scripts.RELEASE

    if TYPE_CHECKING:

        def stream_names(self) -> list[str]: ...

    # ---- commits, in index order ----------------------------------------------------------------
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
            record.anchor or b"",
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
        """Commit one segment atomically (see memory/store.py's docstring for duplicates and ordering).

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

    # ---- the work queue's commits, in any order ----------------------------------------------
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
                record = dataclasses.replace(record, tokens=None, file_ref=None, proxy=None, anchor=None,
                                             embedding=np.zeros(1, np.float32))
            keys, args = self._put_args(record, now, None)
            name, seq = record.stream, record.index
            keys = [keys[0], self.keys.staged(name, seq), self.keys.staged(name, seq, tokens=True), keys[3],
                    self.keys.gaps(name), self.keys.writer(name), self.keys.landed(name)]
            args = [*args[:8], int(record.first_frame_index), lease, "1" if skip else "0",
                    self.keys.base(name), record.anchor or b""]
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

    # ---- one writer per stream --------------------------------------------------------------------
    @staticmethod
    def busy_message(name: str, expires_in: float | None = None) -> str:
        """The one sentence for a stream another writer holds; `expires_in`: seconds its lease has left."""
        within = "" if expires_in is None else f" (within {max(expires_in, 0.1):.1f} s)"
        return (f"stream {name!r} is being ingested by another process (its writer lease is held); "
                f"wait for that ingest to finish, or for its lease to expire{within} if it died")

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
