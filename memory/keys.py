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
                                       c: cold-tier pointer (then no p and no k:{i}: both in a shard),
                                       a: anchor thumbnail (open-weights streams; memory/thumbnails.py)
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

Other modules keep keys of their own under the same stream tag (memory/alerts.py's rule state and
alert outbox, named by `MonitoringKeys` below with monitoring's deployment-wide keys; memory/jobqueue.py's
jobs, memory/caches.py's caches); `StreamKeys.base` is the common beginning.
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


@dataclass(frozen=True)
class MonitoringKeys:
    """Names of monitoring's keys (memory/alerts.py has the layout and what each holds).

    Per-stream keys (rule state, score history, staged scores, the alert outbox) carry the stream's
    hash tag like the store's. The deployment-wide ones (rule book, alerts, their time index, event
    stream, verify set, relay marks, webhook bookkeeping) are written together by one transaction or
    script at a time; on a Redis Cluster they share the hash tag `{prefix}` (`{tempo}:alerts:t`) so
    each of those stays in one slot, while on one server they keep their names (`tempo:alerts:t`),
    so a memory written before this layout reads unchanged.
    """

    prefix: str = "tempo"
    cluster: bool = False

    @property
    def _shared(self) -> str:
        return f"{{{self.prefix}}}" if self.cluster else self.prefix

    # ---- one stream (its hash tag) ----------------------------------------------------------------
    def rule_state(self, stream: str) -> str:
        return f"{StreamKeys(self.prefix).base(stream)}rs"

    def history(self, stream: str, rule: str) -> str:
        return f"{StreamKeys(self.prefix).base(stream)}rh:{rule}"

    def history_pattern(self, stream: str) -> str:
        """A SCAN pattern matching every rule's score history of `stream`."""
        return f"{StreamKeys(self.prefix).base(stream)}rh:*"

    def staged_scores(self, stream: str) -> str:
        return f"{StreamKeys(self.prefix).base(stream)}rsc"

    def outbox(self, stream: str) -> str:
        return f"{StreamKeys(self.prefix).base(stream)}ao"

    # ---- the deployment (one slot on a cluster) ------------------------------------------------------
    def rules(self) -> str:
        return f"{self._shared}:rules"

    def rules_seq(self) -> str:
        return f"{self._shared}:rules:seq"

    def rules_version(self) -> str:
        return f"{self._shared}:rules:version"

    def alert(self, alert_id: str) -> str:
        return f"{self._shared}:alert:{alert_id}"

    def alert_times(self) -> str:
        return f"{self._shared}:alerts:t"

    def events(self) -> str:
        return f"{self._shared}:alerts:events"

    def verify(self) -> str:
        return f"{self._shared}:alerts:verify"

    def relayed(self) -> str:
        return f"{self._shared}:alerts:relayed"

    def outboxes(self) -> str:
        return f"{self._shared}:alerts:outboxes"

    def webhook(self, part: str) -> str:
        """The webhook deliverer's `retry`, `dead` and `log` keys (agent/monitoring/webhooks.py)."""
        return f"{self._shared}:alerts:webhook:{part}"
