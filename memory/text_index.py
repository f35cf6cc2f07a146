"""The text track in memory: reading and replacing segments' cues, and the keyword index (BM25) over them.

Cues are stored in each segment's metadata (`SegmentRecord.cues`, key "cu"), so they are committed by
the segment's own Lua script (atomic with it), removed with it by retention, and stay in Redis when
the cold tier moves the segment's bulk out. `replace_cues` rewrites the cues of segments already
committed (`tempo subtitles add`): one Lua script per segment, which also bumps the stream's text
version (`tv`) so the keyword index rebuilds.

`KeywordIndex` keeps one BM25 index per stream over its segments' cue text (one document per segment
that has text, tokenized by bm25s): built on first use, then grown by appending the segments committed
since and shrunk by dropping those retention removed, with scores equal to a full re-index
(memory/bm25.py); read again from scratch only when the text of committed segments changes.
`rrf_fuse` is reciprocal rank fusion of ranked lists (Cormack et al. 2009, k = 60).
"""

from __future__ import annotations

import bisect
import json
import threading
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tempo.memory.bm25 import AppendableBm25
from tempo.memory.cluster import Script
from tempo.memory.errors import redis_errors
from tempo.streaming.subtitles import Cue

RRF_K = 60  # the constant of reciprocal rank fusion (the original paper's)
_READ_BATCH = 2048  # segments per pipelined read
_COMPACT_AT = 4096  # dropped documents freed once they are this many and outnumber the alive ones

# KEYS: info, segment hash. ARGV: new metadata. Returns 1 (replaced) or 0 (no such segment).
_REPLACE_META = """#!lua
local old = redis.call('HGET', KEYS[2], 'm')
if not old then return 0 end
redis.call('HSET', KEYS[2], 'm', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'b_meta', string.len(ARGV[1]) - string.len(old))
redis.call('HINCRBY', KEYS[1], 'tv', 1)
return 1
"""


@redis_errors
def read_cues(store: Any, name: str, indices: Sequence[int]) -> dict[int, list[Cue]]:
    """{index: its cues in time order} for the given segments of a stream (absent segments: no entry)."""
    out: dict[int, list[Cue]] = {}
    wanted = [int(i) for i in indices]
    for lo in range(0, len(wanted), _READ_BATCH):
        part = wanted[lo: lo + _READ_BATCH]
        pipe = store.client.pipeline(transaction=False)
        for i in part:
            pipe.hget(store.keys.segment(name, i), "m")
        for i, meta in zip(part, pipe.execute(), strict=True):
            if meta is not None:
                out[i] = [Cue.from_row(row) for row in json.loads(meta).get("cu", ())]
    return out


@redis_errors
def replace_cues(store: Any, name: str, cues: dict[int, list[Cue]]) -> int:
    """Set the cues of committed segments ({index: cues}); returns how many segments were updated
    (a segment retention removed meanwhile is skipped). Each segment is rewritten atomically."""
    script = Script(store.client, _REPLACE_META)
    pipe = store.client.pipeline(transaction=False)
    order = sorted(cues)
    metas = pipe_metas(store, name, order)
    for i, meta in zip(order, metas, strict=True):
        if meta is None:
            continue
        m = json.loads(meta)
        m["cu"] = [c.to_row() for c in cues[i]]
        if not m["cu"]:
            m.pop("cu")
        new = json.dumps(m, separators=(",", ":"), ensure_ascii=False).encode()
        script(keys=[store.keys.info(name), store.keys.segment(name, i)], args=[new], client=pipe)
    return sum(int(r) for r in pipe.execute())


def pipe_metas(store: Any, name: str, indices: Sequence[int]) -> list[bytes | None]:
    pipe = store.client.pipeline(transaction=False)
    for i in indices:
        pipe.hget(store.keys.segment(name, i), "m")
    return list(pipe.execute()) if indices else []


def segment_text(cues: Iterable[Cue]) -> str:
    """A segment's words as one document of the keyword index."""
    return " ".join(c.text for c in cues)


@dataclass(frozen=True)
class KeywordHit:
    index: int  # segment index
    score: float  # BM25 score (> 0: at least one query word is in the segment's cues)
    start: float  # seconds
    end: float  # seconds


class _StreamIndex:
    """One stream's keyword index: BM25 over its segments' cue text, one document per segment with
    text, in index order, grown by appending the segments committed since (memory/bm25.py)."""

    def __init__(self, version: tuple[Any, ...]) -> None:
        self.version = version
        self.bm25 = AppendableBm25()
        self.indices, self.starts, self.ends = array("q"), array("d"), array("d")  # per document
        self.rebuilt = 0  # times the documents were read again from scratch (tests, bench)

    @property
    def committed(self) -> int:
        return int(self.version[2] if self.version[2] is not None else -1)

    def append(self, rows: Sequence[tuple[int, float, float, str]]) -> None:
        """Add segments (index, start, end, text), indices above those already in."""
        import bm25s

        if not rows:
            return
        tokens = bm25s.tokenize([r[3] for r in rows], stopwords="en", show_progress=False, return_ids=False)
        self.bm25.append([list(t) for t in tokens])
        for i, s, e, _ in rows:
            self.indices.append(int(i))
            self.starts.append(float(s))
            self.ends.append(float(e))

    def drop_below(self, first: int) -> None:
        """Forget the segments before index `first` (retention removed them)."""
        base = self.bm25.end - len(self.indices)  # position of self.indices[0]
        self.bm25.drop_before(base + bisect.bisect_left(self.indices, int(first)))
        dead = len(self.indices) - self.bm25.size
        if dead > max(_COMPACT_AT, self.bm25.size):  # more dead than alive: free them
            self.bm25.compact()
            del self.indices[:dead], self.starts[:dead], self.ends[:dead]

    @property
    def has_text(self) -> bool:
        return self.bm25.size > 0

    def search(self, query: str, k: int, time_range: tuple[float, float] | None) -> list[KeywordHit]:
        import bm25s

        if not self.has_text:
            return []
        words = [w for w in bm25s.tokenize([query], stopwords="en", show_progress=False, return_ids=False)[0]
                 if self.bm25.known(w)]
        if not words:
            return []
        scores = self.bm25.scores(words)  # (d,) the alive documents
        lo = len(self.indices) - self.bm25.size
        starts = np.frombuffer(self.starts, dtype=np.float64)[lo:]
        ends = np.frombuffer(self.ends, dtype=np.float64)[lo:]
        if time_range is not None:
            scores = np.where((ends > time_range[0]) & (starts < time_range[1]), scores, 0.0)
        top = np.argsort(-scores, kind="stable")[:k]
        return [KeywordHit(int(self.indices[lo + j]), float(scores[j]), float(starts[j]), float(ends[j]))
                for j in top if scores[j] > 0]


class KeywordIndex:
    """BM25 over each stream's cue text, kept up to date by appending. Thread-safe."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._streams: dict[str, _StreamIndex] = {}
        self._lock = threading.Lock()

    @redis_errors
    def _version(self, name: str) -> tuple[Any, ...]:
        fields = self.store.client.hmget(self.store.keys.info(name), "number", "first", "committed", "tv")
        return tuple(fields)

    def _get(self, name: str) -> _StreamIndex:
        """The stream's index, brought up to date (call with the lock held): segments committed since
        it was built are read (only their metadata) and appended, those retention removed dropped;
        the scores equal a full re-index (memory/bm25.py). A changed text version (`subtitles add`)
        or a re-created stream: read all again."""
        version = self._version(name)
        cached = self._streams.get(name)
        if cached is not None and cached.version == version:
            return cached
        first, committed = int(version[1] or 0), int(version[2] if version[2] is not None else -1)
        same = cached is not None and cached.version[0] == version[0] and cached.version[3] == version[3] \
            and cached.committed <= committed
        if not same or cached is None:
            rebuilt = 0 if cached is None else cached.rebuilt + 1
            cached = _StreamIndex(version)
            cached.rebuilt = rebuilt
            lo = first
        else:
            lo = max(first, cached.committed + 1)
        rows: list[tuple[int, float, float, str]] = []
        wanted = range(lo, committed + 1)
        for i, meta in zip(wanted, pipe_metas(self.store, name, wanted), strict=True):
            if meta is None:
                continue
            m = json.loads(meta)
            text = segment_text(Cue.from_row(r) for r in m.get("cu", ()))
            if text:
                rows.append((i, float(m["s"]), float(m["e"]), text))
        cached.drop_below(first)
        cached.append(rows)
        cached.version = version
        self._streams[name] = cached
        return cached

    def search(self, name: str, query: str, k: int = 10,
               time_range: tuple[float, float] | None = None) -> list[KeywordHit]:
        """The segments of stream `name` whose cues best match `query`'s words (BM25), best first,
        at most `k`; only segments overlapping `time_range` (seconds) when given."""
        with self._lock:
            return self._get(name).search(query, max(1, int(k)), time_range)

    def has_text(self, name: str) -> bool:
        with self._lock:
            return self._get(name).has_text


def rrf_fuse(rankings: Sequence[Sequence[Any]], k: int = RRF_K) -> list[tuple[Any, float]]:
    """Reciprocal rank fusion: each item (hashable) scores Σ 1 / (k + rank) over the lists it is in
    (rank from 1); best first, ties by first appearance."""
    scores: dict[Any, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])
