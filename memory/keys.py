"""The Redis key layout of the memory store: one builder, so every module names a key the same way.

Prefix `tempo` by default; `{name}` is a Redis Cluster hash tag, so all of a stream's keys live on
one shard and a per-segment script (memory/scripts.py) may touch them together. The three global
keys (meta, the directory, the counter) are only ever touched by single commands, never together
with a stream's keys in one script or transaction, so every step runs on one Redis Cluster shard:

    tempo:meta                   HASH  id → random id of this memory (ties index snapshots to it)
    tempo:streams                HASH  stream name → stream number (never reused)
    tempo:stream_seq             STRING counter for stream numbers
    tempo:s:{name}:info          HASH  number, source (JSON), settings (JSON), retention (JSON), created,
                                       committed (last fully committed index, -1 = none),
                                       first (oldest retained index), start/end (seconds covered),
                                       slot (first sampling slot of the last committed segment),
                                       b_tok/b_emb/b_prx/b_meta (payload bytes in Redis by part),
                                       cold tier (memory/cold.py): cold_root (where the shards are),
                                       cold_next (mover's pointer), x_tok/x_prx (bytes in shards),
                                       listed (1 from creation until deletion begins)
    tempo:s:{name}:g:{i}         HASH  m: metadata JSON, e: embedding (float16 × E),
                                       r: file reference JSON (files) or p: proxy clip (live),
                                       c: cold-tier pointer (then no p and no k:{i}: both in a shard)
    tempo:s:{name}:k:{i}         STRING token head: K records [scale, 8 outliers, D × int8] (memory.codec)
    tempo:s:{name}:t             ZSET  member i, score start seconds (time → segments)
    tempo:s:{name}:gaps          ZSET  member "t0 t1", score t1: stretches with no video (seconds)
    tempo:s:{name}:ivf           HASH  n (size when trained), c (IVF centroids, float32), d (dim),
                                       q (IVF-PQ codebook, float32 (M, 256, E/M); absent: IVF-Flat)
    tempo:s:{name}:writer        STRING the writer lease's token (one writer per stream; expires)
    tempo:s:{name}:w:{seq}       HASH  a work-queue job's segment landed early (staged, as g:{i})
    tempo:s:{name}:wk:{seq}      STRING its token head (staged, as k:{i})
    tempo:s:{name}:landed        HASH  seq → "s start end slot" ("x ...": skipped, a gap): jobs landed
                                       past the contiguous run; info's `seq` is its last job number
    tempo:s:{name}:coldlock      STRING the cold-tier mover's lease (one mover per stream; expires)

Other modules keep keys of their own under the same stream tag (memory/alerts.py's rule state,
memory/queue.py's jobs, memory/caches.py's caches); `StreamKeys.base` is the common beginning.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StreamKeys:
    """Names of the store's keys under `prefix` (see the module docstring for what each holds)."""

    prefix: str = "tempo"

    def meta(self) -> str:
        return f"{self.prefix}:meta"

    def streams(self) -> str:
        return f"{self.prefix}:streams"

    def stream_seq(self) -> str:
        return f"{self.prefix}:stream_seq"

    def base(self, name: str) -> str:
        """The beginning every key of stream `name` shares, hash tag included (scripts build keys from it)."""
        return f"{self.prefix}:s:{{{name}}}:"

    def info(self, name: str) -> str:
        return f"{self.base(name)}info"

    def segment(self, name: str, index: int) -> str:
        return f"{self.base(name)}g:{index}"

    def tokens(self, name: str, index: int) -> str:
        return f"{self.base(name)}k:{index}"

    def times(self, name: str) -> str:
        return f"{self.base(name)}t"

    def gaps(self, name: str) -> str:
        return f"{self.base(name)}gaps"

    def ivf(self, name: str) -> str:
        return f"{self.base(name)}ivf"

    def writer(self, name: str) -> str:
        return f"{self.base(name)}writer"

    def staged(self, name: str, seq: int, *, tokens: bool = False) -> str:
        return f"{self.base(name)}{'wk' if tokens else 'w'}:{seq}"

    def landed(self, name: str) -> str:
        return f"{self.base(name)}landed"
