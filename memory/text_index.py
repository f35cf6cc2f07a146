"""The text track in memory: reading and replacing segments' cues, and the keyword index (BM25) over them.

Cues are stored in each segment's metadata (`SegmentRecord.cues`, key "cu"), so they are committed by
the segment's own Lua script (atomic with it), removed with it by retention, and stay in Redis when
the cold tier moves the segment's bulk out. `replace_cues` rewrites the cues of segments already
committed (`tempo subtitles add`): one Lua script per segment, which also bumps the stream's text
version (`tv`) so the keyword index rebuilds.

`KeywordIndex` keeps one BM25 index (bm25s) per stream over its segments' cue text (one document per
segment that has text), built on first use and rebuilt when the stream's segments or text change.
`rrf_fuse` is reciprocal rank fusion of ranked lists (Cormack et al. 2009, k = 60).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tempo.memory.cluster import Script
from tempo.memory.errors import redis_errors
from tempo.streaming.subtitles import Cue

RRF_K = 60  # the constant of reciprocal rank fusion (the original paper's)
_READ_BATCH = 2048  # segments per pipelined read

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
    def __init__(self, version: tuple[Any, ...], indices: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                 texts: list[str], *, reuse: _StreamIndex | None = None) -> None:
        import bm25s

        self.version = version
        self.indices, self.starts, self.ends = indices, starts, ends  # (d,) per document
        self.texts = texts
        self.bm25: Any = None
        if reuse is not None:  # the same documents: keep the built index
            self.bm25, self.vocab = reuse.bm25, getattr(reuse, "vocab", set())
        elif texts:
            tokens = bm25s.tokenize(texts, stopwords="en", show_progress=False)
            self.bm25 = bm25s.BM25()
            self.bm25.index(tokens, show_progress=False)
            self.vocab = set(tokens.vocab)

    @property
    def committed(self) -> int:
        return int(self.version[2] if self.version[2] is not None else -1)

    def search(self, query: str, k: int, time_range: tuple[float, float] | None) -> list[KeywordHit]:
        import bm25s

        if self.bm25 is None:
            return []
        words = [w for w in bm25s.tokenize([query], stopwords="en", show_progress=False, return_ids=False)[0]
                 if w in self.vocab]
        if not words:
            return []
        scores = np.asarray(self.bm25.get_scores(words), dtype=np.float64)  # (d,)
        if time_range is not None:
            scores = np.where((self.ends > time_range[0]) & (self.starts < time_range[1]), scores, 0.0)
        top = np.argsort(-scores, kind="stable")[:k]
        return [KeywordHit(int(self.indices[j]), float(scores[j]), float(self.starts[j]), float(self.ends[j]))
                for j in top if scores[j] > 0]


class KeywordIndex:
    """BM25 over each stream's cue text, rebuilt when the stream changes. Thread-safe."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._streams: dict[str, _StreamIndex] = {}
        self._lock = threading.Lock()

    @redis_errors
    def _version(self, name: str) -> tuple[Any, ...]:
        fields = self.store.client.hmget(self.store.keys.info(name), "number", "first", "committed", "tv")
        return tuple(fields)

    def _get(self, name: str) -> _StreamIndex:
        """The stream's index, brought up to date: segments committed since it was built are read
        (only their metadata), those retention removed dropped; BM25 is rebuilt only when the
        documents changed. A changed text version (`subtitles add`) or a re-created stream: read all."""
        version = self._version(name)
        with self._lock:
            cached = self._streams.get(name)
            if cached is not None and cached.version == version:
                return cached
        first, committed = int(version[1] or 0), int(version[2] if version[2] is not None else -1)
        same = cached is not None and cached.version[0] == version[0] and cached.version[3] == version[3] \
            and cached.committed <= committed
        lo = max(first, cached.committed + 1) if same and cached is not None else first
        indices, starts, ends, texts = [], [], [], []
        if same and cached is not None:
            keep = cached.indices >= first
            indices, starts = cached.indices[keep].tolist(), cached.starts[keep].tolist()
            ends = cached.ends[keep].tolist()
            texts = [t for t, k in zip(cached.texts, keep.tolist(), strict=True) if k]
        added = 0
        wanted = range(lo, committed + 1)
        for i, meta in zip(wanted, pipe_metas(self.store, name, wanted), strict=True):
            if meta is None:
                continue
            m = json.loads(meta)
            text = segment_text(Cue.from_row(r) for r in m.get("cu", ()))
            if text:
                indices.append(i)
                starts.append(float(m["s"]))
                ends.append(float(m["e"]))
                texts.append(text)
                added += 1
        unchanged = same and cached is not None and not added and len(texts) == len(cached.texts)
        built = _StreamIndex(version, np.asarray(indices, np.int64), np.asarray(starts, np.float64),
                             np.asarray(ends, np.float64), texts, reuse=cached if unchanged else None)
        with self._lock:
            self._streams[name] = built
        return built

    def search(self, name: str, query: str, k: int = 10,
               time_range: tuple[float, float] | None = None) -> list[KeywordHit]:
        """The segments of stream `name` whose cues best match `query`'s words (BM25), best first,
        at most `k`; only segments overlapping `time_range` (seconds) when given."""
        return self._get(name).search(query, max(1, int(k)), time_range)

    def has_text(self, name: str) -> bool:
        return self._get(name).bm25 is not None


def rrf_fuse(rankings: Sequence[Sequence[Any]], k: int = RRF_K) -> list[tuple[Any, float]]:
    """Reciprocal rank fusion: each item (hashable) scores Σ 1 / (k + rank) over the lists it is in
    (rank from 1); best first, ties by first appearance."""
    scores: dict[Any, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])
