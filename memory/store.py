"""RedisMemoryStore: streams and their segments in Redis (the source of truth of the memory).

Key layout (prefix `tempo` by default; `{name}` is a Redis Cluster hash tag, so all of a stream's
keys live on one shard and a per-segment script may touch them together):

    tempo:meta                   HASH  id → random id of this memory (ties index snapshots to it)
    tempo:streams                HASH  stream name → stream number (never reused)
    tempo:stream_seq             STRING counter for stream numbers
    tempo:s:{name}:info          HASH  number, source (JSON), settings (JSON), retention (JSON), created,
                                       committed (last fully committed index, -1 = none),
                                       first (oldest retained index), start/end (seconds covered),
                                       slot (first sampling slot of the last committed segment),
                                       b_tok/b_emb/b_prx/b_meta (payload bytes by part)
    tempo:s:{name}:g:{i}         HASH  m: metadata JSON, e: embedding (float16 × E),
                                       r: file reference JSON (files) or p: proxy clip (live)
    tempo:s:{name}:k:{i}         STRING token head: K records [scale, 8 outliers, D × int8] (memory.codec)
    tempo:s:{name}:t             ZSET  member i, score start seconds (time → segments)
    tempo:s:{name}:gaps          ZSET  member "t0 t1", score t1: stretches with no video (seconds)
    tempo:s:{name}:writer        STRING the writer lease's token (one writer per stream; expires)
    tempo:s:{name}:w:{seq}       HASH  a work-queue job's segment landed early (staged, as g:{i})
    tempo:s:{name}:wk:{seq}      STRING its token head (staged, as k:{i})
    tempo:s:{name}:landed        HASH  seq → "s start end slot" ("x ...": skipped, a gap): jobs landed
                                       past the contiguous run; info's `seq` is its last job number

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
The work queue's workers (memory/queue.py) finish segments in any order: `land_segments` stages a
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
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
import redis
from tempo.errors import redact_secrets
from tempo.inputs import STREAM_NAME_PATTERN
from tempo.memory import codec
from tempo.memory.embedded import connect
from tempo.memory.errors import (
    InvalidStreamNameError,
    MemoryUnavailableError,
    OutOfOrderCommitError,
    SegmentNotFoundError,
    SourceChangedError,
    StreamBusyError,
    StreamSettingsMismatchError,
    UnknownStreamError,
)
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

P = ParamSpec("P")
R = TypeVar("R")


def _is_disk_error(message: str) -> bool:
    """Redis refuses writes after a failed AOF write or RDB save (MISCONF; "-ERR ... disk")."""
    text = message.lower()
    return text.startswith("misconf") or "aof" in text or "disk" in text


def _redis_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a lost connection into one sentence instead of a redis-py traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise MemoryUnavailableError(f"lost the connection to Redis: {redact_secrets(str(exc))}") from exc
        except redis.ResponseError as exc:
            if _is_disk_error(str(exc)):
                raise MemoryUnavailableError(
                    "Redis cannot write to its disk (it is full or failing), so nothing more can be "
                    "stored; free space where Redis keeps its data, then run the same command again"
                ) from exc
            if "maxmemory" in str(exc) or str(exc).startswith("OOM"):
                raise MemoryUnavailableError(
                    "Redis is out of memory (maxmemory reached); raise its maxmemory or set a "
                    "retention policy on the streams"
                ) from exc
            raise

    return wrapper


# KEYS: info, segment hash, tokens, time zset, gaps zset, writer lease.
# ARGV: index, start, end, meta, embedding, ref field ('r' | 'p'), ref value, tokens, first slot,
#       lease owner ('' = none: then only while nobody holds the lease).
# Returns {status, committed}: 1 written, 0 duplicate, -1 no such stream, -2 out of order,
# -3 the lease is another writer's (or ours expired).
_PUT = """#!lua
local info = KEYS[1]
if redis.call('EXISTS', info) == 0 then return {-1, -1} end
local holder = redis.call('GET', KEYS[6])
if (holder or '') ~= ARGV[10] then return {-3, tonumber(redis.call('HGET', info, 'committed'))} end
local index = tonumber(ARGV[1])
local committed = tonumber(redis.call('HGET', info, 'committed'))
if index <= committed then return {0, committed} end
if index ~= committed + 1 then return {-2, committed} end
local first = tonumber(redis.call('HGET', info, 'first'))
if first <= committed then
  -- A retained segment precedes this one: any time between them had no video (1 ms tolerance).
  local prev_end = redis.call('HGET', info, 'end')
  if prev_end and tonumber(ARGV[2]) > tonumber(prev_end) + 0.001 then
    redis.call('ZADD', KEYS[5], ARGV[2], prev_end .. ' ' .. ARGV[2])
  end
end
redis.call('DEL', KEYS[2])  -- leftovers of a deleted stream of the same name must not mix in
redis.call('HSET', KEYS[2], 'm', ARGV[4], 'e', ARGV[5], ARGV[6], ARGV[7])
if string.len(ARGV[8]) > 0 then redis.call('SET', KEYS[3], ARGV[8]) end
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
if first == committed + 1 then redis.call('HSET', info, 'start', ARGV[2]) end
redis.call('HSET', info, 'committed', index, 'end', ARGV[3], 'slot', ARGV[9])
redis.call('HINCRBY', info, 'b_tok', string.len(ARGV[8]))
redis.call('HINCRBY', info, 'b_emb', string.len(ARGV[5]))
redis.call('HINCRBY', info, 'b_prx', string.len(ARGV[7]))
redis.call('HINCRBY', info, 'b_meta', string.len(ARGV[4]))
return {1, index}
"""

# KEYS: info, time zset, gaps zset, then (segment hash, tokens) per segment to remove, oldest first.
# ARGV: expected first, then the indices being removed.
# Returns the number removed (-1 when `first` moved meanwhile: another trimmer ran; retry).
_TRIM = """#!lua
local info = KEYS[1]
local first = tonumber(redis.call('HGET', info, 'first'))
if first == nil or first ~= tonumber(ARGV[1]) then return -1 end
local committed = tonumber(redis.call('HGET', info, 'committed'))
local n = #ARGV - 1
if first + n - 1 > committed then n = committed - first + 1 end
if n <= 0 then return 0 end
local btok, bemb, bprx, bmeta = 0, 0, 0, 0
for j = 0, n - 1 do
  local seg, tok = KEYS[4 + 2 * j], KEYS[5 + 2 * j]
  btok = btok + redis.call('STRLEN', tok)
  bemb = bemb + redis.call('HSTRLEN', seg, 'e')
  bprx = bprx + redis.call('HSTRLEN', seg, 'p') + redis.call('HSTRLEN', seg, 'r')
  bmeta = bmeta + redis.call('HSTRLEN', seg, 'm')
  redis.call('DEL', seg, tok)
  redis.call('ZREM', KEYS[2], ARGV[2 + j])
end
redis.call('HSET', info, 'first', first + n)
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #nxt > 0 then
  redis.call('HSET', info, 'start', nxt[2])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', nxt[2])  -- gaps ending at or before it
else
  redis.call('HSET', info, 'start', redis.call('HGET', info, 'end'))
  redis.call('DEL', KEYS[3])
end
redis.call('HINCRBY', info, 'b_tok', -btok)
redis.call('HINCRBY', info, 'b_emb', -bemb)
redis.call('HINCRBY', info, 'b_prx', -bprx)
redis.call('HINCRBY', info, 'b_meta', -bmeta)
return n
"""

# Out-of-order commits (the work queue, memory/queue.py): workers finish segments in any order.
# A job is numbered by its producer (`seq`: the source's segment number). A job above the last
# contiguous seq done "lands" in staging keys (w:{seq}, wk:{seq}) and the `landed` hash; then every
# contiguous landed seq is advanced in order: a segment is renamed into the next index (g:, k:), so
# indices stay contiguous and `committed` keeps meaning "every segment up to here is entirely
# there"; a skipped seq (its job was dead-lettered, or dropped by live backpressure) takes no index
# and becomes a gap in time. `seq` in the info hash is the last contiguous seq done.
# KEYS: info, staging hash, staging tokens, time zset, gaps zset, writer lease, landed hash.
# ARGV: seq, start, end, meta, embedding, ref field, ref value, tokens, first slot,
#       producer's lease token ('' = none), skip ('1': no segment, a gap), key base
#       ('{prefix}:s:{{name}}:', the segment keys are base .. 'g:' .. index, all in the stream's slot).
# Returns {status, committed}: 1 landed (maybe not yet contiguous), 0 duplicate, -1 no such
# stream, -3 another writer holds the lease.
_LAND = """#!lua
local info = KEYS[1]
if redis.call('EXISTS', info) == 0 then return {-1, -1} end
local committed = tonumber(redis.call('HGET', info, 'committed'))
local holder = redis.call('GET', KEYS[6])
if holder and holder ~= ARGV[10] then return {-3, committed} end
local seq = tonumber(ARGV[1])
local done = tonumber(redis.call('HGET', info, 'seq') or committed)
if seq <= done or redis.call('HEXISTS', KEYS[7], ARGV[1]) == 1 then return {0, committed} end
if ARGV[11] == '1' then
  redis.call('HSET', KEYS[7], ARGV[1], 'x ' .. ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[9])
else
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[2], 'm', ARGV[4], 'e', ARGV[5], ARGV[6], ARGV[7])
  if string.len(ARGV[8]) > 0 then redis.call('SET', KEYS[3], ARGV[8]) end
  redis.call('HSET', KEYS[7], ARGV[1], 's ' .. ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[9])
  redis.call('HINCRBY', info, 'b_tok', string.len(ARGV[8]))
  redis.call('HINCRBY', info, 'b_emb', string.len(ARGV[5]))
  redis.call('HINCRBY', info, 'b_prx', string.len(ARGV[7]))
  redis.call('HINCRBY', info, 'b_meta', string.len(ARGV[4]))
end
local first = tonumber(redis.call('HGET', info, 'first'))
local base = ARGV[12]
while true do
  local nseq = done + 1
  local entry = redis.call('HGET', KEYS[7], tostring(nseq))
  if not entry then break end
  local kind, s, e, slot = string.match(entry, '(%a) (%S+) (%S+) (%S+)')
  local prev_end = redis.call('HGET', info, 'end')
  if kind == 'x' then
    -- No segment: its stretch is a gap in time (from the previous segment's end when there is one).
    local g0 = s
    if first <= committed and prev_end then g0 = prev_end end
    redis.call('ZADD', KEYS[5], e, g0 .. ' ' .. e)
    if first <= committed then redis.call('HSET', info, 'end', e) end
  else
    local index = committed + 1
    if first <= committed and prev_end and tonumber(s) > tonumber(prev_end) + 0.001 then
      redis.call('ZADD', KEYS[5], s, prev_end .. ' ' .. s)
    end
    local wseg, wtok = base .. 'w:' .. nseq, base .. 'wk:' .. nseq
    redis.call('DEL', base .. 'g:' .. index, base .. 'k:' .. index)
    redis.call('RENAME', wseg, base .. 'g:' .. index)
    if redis.call('EXISTS', wtok) == 1 then redis.call('RENAME', wtok, base .. 'k:' .. index) end
    redis.call('ZADD', KEYS[4], s, index)
    if first == index then redis.call('HSET', info, 'start', s) end
    redis.call('HSET', info, 'committed', index, 'end', e, 'slot', slot)
    committed = index
  end
  redis.call('HSET', info, 'seq', nseq)
  redis.call('HDEL', KEYS[7], tostring(nseq))
  done = nseq
end
return {1, committed}
"""

# KEYS: lease. ARGV: token, milliseconds. Extends the lease only while it is ours.
_RENEW = """#!lua
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# KEYS: lease. ARGV: token. Deletes the lease only while it is ours.
_RELEASE = """#!lua
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: ivf hash. ARGV: trained-at size, centroid bytes, dim. Newer (larger) training wins.
_OFFER_IVF = """#!lua
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '-1')
if tonumber(ARGV[1]) > n then
  redis.call('HSET', KEYS[1], 'n', ARGV[1], 'c', ARGV[2], 'd', ARGV[3])
  return 1
end
return 0
"""

# KEYS: streams directory, stream counter, info. ARGV: name, source, settings, retention, created.
_CREATE = """#!lua
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
local number = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[3], 'number', number, 'source', ARGV[2], 'settings', ARGV[3],
  'retention', ARGV[4], 'created', ARGV[5], 'committed', -1, 'first', 0,
  'b_tok', 0, 'b_emb', 0, 'b_prx', 0, 'b_meta', 0)
redis.call('HSET', KEYS[1], ARGV[1], number)
return number
"""

# KEYS: info, then the token strings of segments compact_next, compact_next + 1, ...
# ARGV: expected compact_next, bytes to keep per token string, count.
# Returns the number of segments stepped over (-1 when compact_next moved meanwhile).
_COMPACT = """#!lua
local info = KEYS[1]
local nxt = tonumber(redis.call('HGET', info, 'compact_next') or '0')
if nxt ~= tonumber(ARGV[1]) then return -1 end
local keep = tonumber(ARGV[2])
local freed = 0
for i = 2, #KEYS do
  local len = redis.call('STRLEN', KEYS[i])
  if len > keep then
    redis.call('SET', KEYS[i], redis.call('GETRANGE', KEYS[i], 0, keep - 1))
    freed = freed + len - keep
  end
end
redis.call('HSET', info, 'compact_next', nxt + tonumber(ARGV[3]))
redis.call('HINCRBY', info, 'b_tok', -freed)
return #KEYS - 1
"""

# KEYS: token strings. ARGV: last byte offset. Read-only: the prefix of each (empty when absent).
_HEADS = """#!lua flags=no-writes
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('GETRANGE', key, 0, ARGV[1]) end
return out
"""


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


class RedisMemoryStore:
    """Streams of segments in Redis. Thread-safe as redis-py clients are (one pool, many threads)."""

    def __init__(self, client: redis.Redis, *, prefix: str = "tempo") -> None:
        self.client = client
        self.prefix = prefix
        self._put = client.register_script(_PUT)
        self._trim = client.register_script(_TRIM)
        self._offer_ivf = client.register_script(_OFFER_IVF)
        self._heads = client.register_script(_HEADS)
        self._create = client.register_script(_CREATE)
        self._compact = client.register_script(_COMPACT)
        self._land = client.register_script(_LAND)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    @classmethod
    def connect(
        cls, url: str | None = None, home: Path | str | None = None, *, prefix: str = "tempo"
    ) -> RedisMemoryStore:
        """`url`, else $TEMPO_REDIS_URL, else the embedded server of the data dir (see embedded.py)."""
        return cls(connect(url, home), prefix=prefix)

    # ---- keys -------------------------------------------------------------------------------
    def _k_streams(self) -> str:
        return f"{self.prefix}:streams"

    def _k_info(self, name: str) -> str:
        return f"{self.prefix}:s:{{{name}}}:info"

    def _k_seg(self, name: str, index: int) -> str:
        return f"{self.prefix}:s:{{{name}}}:g:{index}"

    def _k_tok(self, name: str, index: int) -> str:
        return f"{self.prefix}:s:{{{name}}}:k:{index}"

    def _k_time(self, name: str) -> str:
        return f"{self.prefix}:s:{{{name}}}:t"

    def _k_staged(self, name: str, seq: int, *, tokens: bool = False) -> str:
        return f"{self.prefix}:s:{{{name}}}:{'wk' if tokens else 'w'}:{seq}"

    def _k_landed(self, name: str) -> str:
        return f"{self.prefix}:s:{{{name}}}:landed"

    def _k_ivf(self, name: str) -> str:
        return f"{self.prefix}:s:{{{name}}}:ivf"

    def _k_gaps(self, name: str) -> str:
        return f"{self.prefix}:s:{{{name}}}:gaps"

    # ---- memory identity ------------------------------------------------------------------------
    @_redis_errors
    def memory_id(self) -> str:
        """A random id created once per memory (Redis database + prefix); index snapshots record it."""
        key = f"{self.prefix}:meta"
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

    @_redis_errors
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
        # One script creates the directory entry and the header together: two ingests starting the
        # same new stream at once see one creation, and never a stream without its header.
        self._create(
            keys=[self._k_streams(), f"{self.prefix}:stream_seq", self._k_info(name)],
            args=[
                name,
                json.dumps(source_dict),
                json.dumps(settings.to_dict()),
                json.dumps((retention or RetentionPolicy()).to_dict()),
                repr(time.time()),
            ],
        )
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

    @_redis_errors
    def set_retention(self, name: str, policy: RetentionPolicy) -> None:
        self._require(name)
        self.client.hset(self._k_info(name), "retention", json.dumps(policy.to_dict()))

    @_redis_errors
    def stream_names(self) -> list[str]:
        return sorted(k.decode() for k in self.client.hkeys(self._k_streams()))

    def _require(self, name: str) -> None:
        if not self.client.hexists(self._k_streams(), name):
            raise UnknownStreamError(name, self.stream_names())

    @_redis_errors
    def stream_info(self, name: str) -> StreamInfo:
        """The stream's header; UnknownStreamError (listing the known streams) when absent."""
        raw = self.client.hgetall(self._k_info(name))
        if not raw or not self.client.hexists(self._k_streams(), name):
            raise UnknownStreamError(name, self.stream_names())
        return self._info_from(name, raw)

    @_redis_errors
    def list_streams(self) -> list[StreamInfo]:
        names = self.stream_names()
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self._k_info(name))
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
            bytes=StorageBytes(num("b_tok"), num("b_emb"), num("b_prx"), num("b_meta")),
            last_slot=int(raw[b"slot"]) if b"slot" in raw else None,
        )

    @_redis_errors
    def positions(self, names: Sequence[str]) -> dict[str, tuple[int, int, int, int]]:
        """(number, first, committed, IVF trained-at size or 0) per existing stream, one round trip
        (the index's sync probe)."""
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.hmget(self._k_info(name), "number", "first", "committed")
            pipe.hget(self._k_ivf(name), "n")
        raw = pipe.execute()
        out: dict[str, tuple[int, int, int, int]] = {}
        for j, name in enumerate(names):
            (number, first, committed), trained_at = raw[2 * j], raw[2 * j + 1]
            if number is not None:
                out[name] = (int(number), int(first), int(committed), int(trained_at or 0))
        return out

    def _token_dim(self, name: str) -> int:
        """D of a stream's tokens, one round trip; UnknownStreamError when absent."""
        settings = self.client.hget(self._k_info(name), "settings")
        if settings is None:
            raise UnknownStreamError(name, self.stream_names())
        return int(json.loads(settings)["token_dim"])

    def next_index(self, name: str) -> int:
        """Where ingest resumes: the index after the last fully committed segment."""
        return self.stream_info(name).next_index

    @_redis_errors
    def gaps(self, name: str, t0: float | None = None, t1: float | None = None) -> list[Gap]:
        """The stream's stretches without video overlapping [t0, t1) seconds (all by default), in
        time order. Only gaps between retained segments are kept."""
        self._require(name)
        low = "-inf" if t0 is None else f"({t0!r}"
        raw = self.client.zrangebyscore(self._k_gaps(name), low, "+inf")
        out = []
        for member in raw:
            start, end = (float(x) for x in member.split())
            if t1 is None or start < t1:
                out.append(Gap(start, end))
        return out

    def bytes_used(self, name: str) -> StorageBytes:
        return self.stream_info(name).bytes

    @_redis_errors
    def delete_stream(self, name: str, batch: int = 512) -> None:
        """Remove a stream and all its segments (its number is never reused)."""
        info = self.stream_info(name)
        self.client.hdel(self._k_streams(), name)  # invisible from here on
        for lo in range(0, info.committed + 1, batch):
            keys = []
            for i in range(lo, min(lo + batch, info.committed + 1)):
                keys += [self._k_seg(name, i), self._k_tok(name, i)]
            self.client.delete(*keys)
        for seq in (int(i) for i in self.client.hkeys(self._k_landed(name))):
            self.client.delete(self._k_staged(name, seq), self._k_staged(name, seq, tokens=True))
        self.client.delete(self._k_time(name), self._k_ivf(name), self._k_gaps(name), self._k_landed(name),
                           self._k_info(name))
        # Monitoring's per-stream keys (memory/alerts.py: rule state, score history); alerts stay.
        self.client.delete(f"{self.prefix}:s:{{{name}}}:rs", *self.client.scan_iter(f"{self.prefix}:s:{{{name}}}:rh:*"))

    # ---- IVF coarse centroids (kept in Redis so a rebuilt index is identical) ----------------------
    @_redis_errors
    def ivf_centroids(self, name: str) -> tuple[int, np.ndarray] | None:
        """(size the stream had when trained, centroids (nlist, E) float32), or None if never trained."""
        trained_at, blob, dim = self.client.hmget(self._k_ivf(name), "n", "c", "d")
        if trained_at is None:
            return None
        return int(trained_at), np.frombuffer(blob, dtype=np.float32).reshape(-1, int(dim)).copy()

    @_redis_errors
    def offer_ivf_centroids(
        self, name: str, trained_at: int, centroids: np.ndarray
    ) -> tuple[int, np.ndarray]:
        """Store centroids trained at `trained_at` segments unless newer ones are stored; returns
        the ones that won, which every process then uses."""
        centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self._offer_ivf(
            keys=[self._k_ivf(name)], args=[trained_at, centroids.tobytes(), centroids.shape[1]]
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
            self._k_info(name),
            self._k_seg(name, record.index),
            self._k_tok(name, record.index),
            self._k_time(name),
            self._k_gaps(name),
            self._k_lease(name),
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

    @_redis_errors
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
    def _k_lease(self, name: str) -> str:
        return f"{self.prefix}:s:{{{name}}}:writer"

    @staticmethod
    def busy_message(name: str, expires_in: float | None = None) -> str:
        """The one sentence for a stream another writer holds; `expires_in`: seconds its lease has left."""
        within = "" if expires_in is None else f" (within {max(expires_in, 0.1):.1f} s)"
        return (f"stream {name!r} is being ingested by another process (its writer lease is held); "
                f"wait for that ingest to finish, or for its lease to expire{within} if it died")

    @_redis_errors
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
        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        todo = [(r, False) for r in records] + [(r, True) for r in skipped]
        for record, skip in todo:
            if skip:
                record = dataclasses.replace(record, tokens=None, file_ref=None, proxy=None,
                                             embedding=np.zeros(1, np.float32))
            keys, args = self._put_args(record, now, None)
            name, seq = record.stream, record.index
            keys = [keys[0], self._k_staged(name, seq), self._k_staged(name, seq, tokens=True), keys[3],
                    self._k_gaps(name), self._k_lease(name), self._k_landed(name)]
            args = [*args[:8], int(record.first_frame_index), lease, "1" if skip else "0",
                    f"{self.prefix}:s:{{{name}}}:"]
            self._land(keys=keys, args=args, client=pipe)
        out = []
        for (record, _), raw in zip(todo, pipe.execute(), strict=True):
            if int(raw[0]) == -3:
                out.append(CommitResult(record.index, CommitStatus.NOT_WRITER, int(raw[1])))
            else:
                out.append(self._result(record, raw))
        return out

    @_redis_errors
    def landed_through(self, name: str) -> int:
        """The last work-queue job number done contiguously for the stream (its committed index when
        no job was skipped); -1 when none or no such stream. Where a queue producer resumes."""
        seq, committed = self.client.hmget(self._k_info(name), "seq", "committed")
        value = seq if seq is not None else committed
        return -1 if value is None else int(value)

    @_redis_errors
    def acquire_writer(self, name: str, seconds: float, token: str | None = None) -> str:
        """Take the stream's writer lease for `seconds` (SET NX PX); returns its token.

        StreamBusyError when another writer holds it. Renew with renew_writer well within `seconds`;
        a writer that dies without releasing it blocks the next one for at most `seconds`. `token`
        (default: a new random one) lets a work-queue producer take the lease again under the token
        its queued jobs already carry."""
        token = token or uuid.uuid4().hex
        if not self.client.set(self._k_lease(name), token, nx=True, px=max(1, int(seconds * 1000))):
            left = self.client.pttl(self._k_lease(name))  # milliseconds; < 0: expired meanwhile
            raise StreamBusyError(self.busy_message(name, left / 1000 if left > 0 else None))
        return token

    @_redis_errors
    def renew_writer(self, name: str, token: str, seconds: float) -> bool:
        """Extend our lease to `seconds` from now; False when it is no longer ours (expired, taken)."""
        return bool(self._renew(keys=[self._k_lease(name)], args=[token, max(1, int(seconds * 1000))]))

    @_redis_errors
    def release_writer(self, name: str, token: str) -> None:
        """Give the lease back if it is still ours."""
        self._release(keys=[self._k_lease(name)], args=[token])

    @_redis_errors
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

    @_redis_errors
    def trim_oldest(self, name: str, count: int) -> int:
        """Remove up to `count` oldest segments in one atomic step; returns how many went."""
        for _ in range(8):
            info = self.stream_info(name)
            n = min(count, info.segments)
            if n <= 0:
                return 0
            indices = list(range(info.first, info.first + n))
            keys = [self._k_info(name), self._k_time(name), self._k_gaps(name)]
            for i in indices:
                keys += [self._k_seg(name, i), self._k_tok(name, i)]
            removed = int(self._trim(keys=keys, args=[info.first, *indices]))
            if removed >= 0:
                return removed
        return 0

    @_redis_errors
    def compact_position(self, name: str) -> int:
        """The first segment index not yet compacted (retention's compaction pointer)."""
        value = self.client.hget(self._k_info(name), "compact_next")
        return int(value or 0)

    @_redis_errors
    def compact_oldest(self, name: str, upto: int, tokens: int) -> int:
        """Shrink the stored token heads of segments [compact position, upto) to `tokens` tokens, in
        one atomic step; returns how many segments the compaction pointer advanced."""
        for _ in range(8):
            info = self.stream_info(name)
            start = self.compact_position(name)
            lo = max(start, info.first)
            hi = min(upto, info.committed + 1)
            if hi <= lo:
                return 0
            keep = tokens * codec.token_record_bytes(info.settings.token_dim)
            keys = [self._k_info(name)] + [self._k_tok(name, i) for i in range(lo, hi)]
            # Step over already-removed segments too (the pointer moves from `start` to `hi`).
            stepped = int(self._compact(keys=keys, args=[start, keep, hi - start]))
            if stepped >= 0:
                return hi - start
        return 0

    # ---- reads --------------------------------------------------------------------------------------
    @_redis_errors
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
        fields = ["m", "e", "r", "p"] if recompress else ["m", "e"]
        pipe = self.client.pipeline(transaction=False)
        for i in indices:
            pipe.hmget(self._k_seg(name, i), fields)
            if tokens is True:
                pipe.get(self._k_tok(name, i))
            elif tokens:
                pipe.getrange(self._k_tok(name, i), 0, int(tokens) * width - 1)
        raw = pipe.execute()
        step = 2 if tokens is not False else 1
        out: list[SegmentRecord | None] = []
        for j, i in enumerate(indices):
            values = raw[j * step]
            if values[0] is None:
                out.append(None)
                continue
            tok_bytes = raw[j * step + 1] if step == 2 else None
            out.append(
                self._record(
                    name,
                    int(i),
                    values[0],
                    emb=values[1] if embedding else None,
                    ref=values[2] if recompress else None,
                    proxy=values[3] if recompress else None,
                    tok=tok_bytes,
                    dim=dim,
                )
            )
        return out

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

    @_redis_errors
    def indices_in_time_range(self, name: str, t0: float, t1: float) -> list[int]:
        """Indices of retained segments overlapping [t0, t1) seconds, in order."""
        self._require(name)
        key = self._k_time(name)
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

    @_redis_errors
    def embeddings(self, name: str, lo: int, hi: int) -> IndexFeed:
        """Segments lo..hi-1 for indexing, one round trip; absent ones (retention) are skipped.

        Embeddings are the stored float16 values as float32.
        """
        pipe = self.client.pipeline(transaction=False)
        for i in range(lo, hi):
            pipe.hmget(self._k_seg(name, i), "m", "e")
        idx, starts, ends, ffs, vecs = [], [], [], [], []
        for i, (meta, emb) in zip(range(lo, hi), pipe.execute(), strict=True):
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

    @_redis_errors
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
        keys = [self._k_tok(name, i) for i in indices]
        pipe = self.client.pipeline(transaction=False)
        for lo in range(0, len(keys), 1024):
            self._heads(keys=keys[lo : lo + 1024], args=[nbytes - 1], client=pipe)
        raw = [b for chunk in pipe.execute() for b in chunk]
        present = np.fromiter((len(b) == nbytes for b in raw), dtype=bool, count=len(raw))
        if present.all():  # the usual case: decode in one pass, no masked copy
            return codec.decode_token_batch(raw, k, dim), present
        out = np.zeros((len(raw), k, dim), np.float32)
        if present.any():
            found = [b for b, ok in zip(raw, present, strict=True) if ok]
            out[present] = codec.decode_token_batch(found, k, dim)
        return out, present
