"""FAISS index of segment embeddings, derived from Redis (the source of truth) and snapshotted to disk.

One FAISS index per stream, ids = segment indices. Vectors are the *stored* (float16-decoded)
embeddings, re-normalised, so whatever built the index — live ingest, a snapshot, or a rebuild from
Redis — holds bit-identical vectors. Inner product on unit vectors = cosine similarity.

  * Exact (`IndexIDMap(IndexFlatIP)`) while a stream holds fewer than `exact_limit` segments.
  * Past it, IVF (`IndexIVFFlat`, inner product). Its coarse centroids are trained once (k-means
    on an even subsample) and *stored in Redis* per stream, so a rebuild reuses them and assigns
    every vector to the same list: same search results. Retrained (and re-stored) when the stream has
    grown 8× since.
  * Past `pq_limit` segments (default 200,000: about 9 days of one camera), IVF-PQ (`IndexIVFPQ`,
    inner product on residuals, M = E/8 sub-quantizers of 8 bits: 96 bytes per 768-d vector instead
    of 3,072), its PQ codebook stored in Redis beside the centroids. PQ scores are approximate, so a
    search takes `rerank`× k candidates (at least 32) from it and orders them by their exact cosine,
    computed from the stored embeddings read back from Redis (one round trip): hits and scores are
    those a flat index gives whenever the true top k are among the candidates (`bench/index.py`
    measures recall@k against flat; scores equal the flat ones to float rounding).
  * Across streams (memory/cross_index.py): once all streams hold `cross_min` vectors, one IVF-PQ
    index holds them all again under ids naming their stream, kept in step on append, retention,
    deletion and snapshot. A search over at least `cross_streams` streams (without a time range, the
    chosen ones holding a quarter of it or more) is one probe of it, its shortlist re-ranked by exact
    cosine (the per-stream flat rows, else Redis): one search instead of one per stream.
  * Filters: a stream set picks the per-stream indices (results merged by score); a time range
    becomes a contiguous segment-index range (segments tile time), applied inside FAISS with
    `IDSelectorRange`. For IVF, a selective filter (few members) scans every list (`nprobe = nlist`:
    FAISS tests membership before computing a distance, so that is exact and cheap); broad filters use
    the configured `nprobe`, widened to all lists if fewer than k hits come back.
  * GPU: when the installed faiss has GPU support and a GPU (the `gpu` extra's faiss-gpu), a stream of
    at least `gpu_min_vectors` segments is searched, unfiltered, on a GPU copy of its index
    (`index_cpu_to_gpu`, remade after the index changes); filtered searches and every other case run
    on the CPU index, which stays the one snapshotted and edited (`use_gpu_faiss` decides).
  * Retention: the stream's oldest retained index (`first`) only grows; `sync` removes ids below it.
  * Snapshot: `TEMPO_HOME/index/gen-N/` (per-stream `.faiss` + times `.npy`) and `meta.json` with the
    memory id, each stream's number, first/next indexed position and IVF training size, and file
    checksums; `CURRENT` names the live generation and is replaced atomically. On open, a snapshot of
    another memory, with a bad checksum or unreadable, is ignored and the index rebuilt from Redis.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
from tempo.memory.cross_index import POOL_WINDOW, CrossStreamIndex, sample_rows, split_ids
from tempo.memory.embedded import tempo_home
from tempo.memory.errors import UnknownStreamError
from tempo.memory.ivf import (
    PQ_MIN_TRAIN,
    even_rows,
    ivfpq,
    nlist_for,
    normalise,
    pooled_rows,
    train_centroids,
    train_pq,
)
from tempo.memory.store import RedisMemoryStore
from tempo.memory.store_types import IndexFeed, IvfTraining
from tempo.memory.stream_index import GPU_MIN_VECTORS, StreamIndex, faiss_gpu_count, use_gpu_faiss

log = logging.getLogger(__name__)

_SNAPSHOT_VERSION = 1
_SYNC_BATCH = 4096  # segments fetched from Redis per round trip while catching up
PQ_LIMIT = 200_000  # segments past which a stream's index is IVF-PQ (see the module docstring)
CROSS_MIN = 50_000  # vectors over all streams past which the cross-stream index is kept
CROSS_STREAMS = 4  # streams in a question from which on it searches the cross-stream index


@dataclass(frozen=True)
class SearchHit:
    stream: str
    index: int  # segment index within the stream
    score: float  # cosine similarity to the query
    start: float  # seconds
    end: float  # seconds


@dataclass(frozen=True)
class Timeline:
    """A stream's indexed segments in order (from memory, no Redis round trip)."""

    stream: str
    indices: np.ndarray  # (n,) int64
    starts: np.ndarray  # (n,) float64 seconds
    ends: np.ndarray  # (n,) float64 seconds
    first_frame_index: np.ndarray | None = None  # (n,) int64: frame index in the stream's sampling


class SegmentIndex:
    """Search segment embeddings by cosine similarity, filtered by stream and time."""

    def __init__(
        self,
        store: RedisMemoryStore,
        *,
        path: Path | None = None,
        exact_limit: int = 50_000,
        pq_limit: int = PQ_LIMIT,
        rerank: int = 10,
        nprobe: int = 32,
        max_nlist: int = 1024,
        search_threads: int = 1,
        gpu_min_vectors: int = GPU_MIN_VECTORS,
        cross_min: int = CROSS_MIN,
        cross_streams: int = CROSS_STREAMS,
    ) -> None:
        self.store = store
        self.path = path
        self.exact_limit = exact_limit
        self.pq_limit = pq_limit
        self.rerank = rerank  # IVF-PQ: candidates per wanted hit, re-ordered by exact cosine
        self.nprobe = nprobe
        self.max_nlist = max_nlist
        # One query at a time: OpenMP fan-out costs more than it saves, and on a busy machine
        # (decoder, model, Redis on the same cores) its barriers cost milliseconds.
        self.search_threads = search_threads
        self.gpu_min_vectors = gpu_min_vectors
        # The cross-stream index (cross_index.py): built once the streams hold `cross_min` vectors,
        # searched for a question over at least `cross_streams` streams.
        self.cross_min = cross_min
        self.cross_streams = cross_streams
        self._cross: CrossStreamIndex | None = None
        self._gpus = faiss_gpu_count()
        self._gpu_resources: object | None = None
        self._streams: dict[str, StreamIndex] = {}
        self._memory_id = store.memory_id()
        self._dirty = False

    # ---- opening, snapshots ---------------------------------------------------------------------
    @classmethod
    def open(
        cls, store: RedisMemoryStore, home: Path | str | None = None, *, sync: bool = True, **options: int
    ) -> SegmentIndex:
        """Load the snapshot under `home/index` (if valid) and catch up from Redis."""
        index = cls(store, path=tempo_home(home) / "index", **options)
        if not index._load():
            log.info("no usable index snapshot in %s; rebuilding from Redis", index.path)
        if sync:
            index.sync()
        return index

    def _load(self) -> bool:
        if self.path is None:
            return False
        try:
            current = (self.path / "CURRENT").read_text().strip()
            gen = self.path / current
            meta = json.loads((gen / "meta.json").read_text())
            if meta.get("version") != _SNAPSHOT_VERSION or meta.get("memory_id") != self._memory_id:
                return False
            streams: dict[str, StreamIndex] = {}
            for name, s in meta["streams"].items():
                files = {}
                for part in ("faiss", "times"):
                    data = (gen / s["files"][part]).read_bytes()
                    if hashlib.sha256(data).hexdigest() != s["sha256"][part]:
                        log.warning("index snapshot file %s is corrupt; rebuilding", s["files"][part])
                        return False
                    files[part] = data
                index = faiss.deserialize_index(np.frombuffer(files["faiss"], dtype=np.uint8))
                times = np.load(gen / s["files"]["times"])  # (n, 3) float64: start, end, first frame
                st = StreamIndex(
                    name=name,
                    number=int(s["number"]),
                    dim=int(s["dim"]),
                    first=int(s["first"]),
                    index=index,
                    trained_at=int(s["trained_at"]),
                    starts=times[:, 0].copy(),
                    ends=times[:, 1].copy(),
                    ffs=times[:, 2].astype(np.int64),
                )
                if st.next != int(s["next"]) or index.ntotal != st.count:
                    return False
                streams[name] = st
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
            log.info("index snapshot unusable (%s)", exc)
            return False
        self._streams = streams
        self._cross = self._load_cross(gen, meta.get("cross"))
        return True

    def _load_cross(self, gen: Path, meta: dict | None) -> CrossStreamIndex | None:
        """The snapshot's cross-stream index if intact and holding exactly the streams' rows (else the
        next sync rebuilds it)."""
        if not meta:
            return None
        data = (gen / meta["file"]).read_bytes()
        if hashlib.sha256(data).hexdigest() != meta["sha256"]:
            return None
        cross = CrossStreamIndex.deserialize(data, int(meta["trained_at"]))
        return cross if cross.count == sum(st.count for st in self._covered(cross.dim)) else None

    @property
    def changed(self) -> bool:
        """True when the index differs from the last snapshot this object wrote or loaded."""
        return self._dirty

    def save_if_changed(self) -> Path | None:
        return self.save() if self._dirty else None

    def save(self) -> Path | None:
        """Write a snapshot (a new generation; CURRENT swapped atomically); returns its directory.

        Processes saving at once take turns (a file lock); the last one's snapshot is CURRENT.
        """
        if self.path is None:
            return None
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return self._save(self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _save(self, path: Path) -> Path:
        self.path = path
        previous = [p for p in self.path.glob("gen-*") if p.is_dir()]
        number = 1 + max((int(p.name.split("-")[1]) for p in previous), default=0)
        gen = self.path / f"gen-{number}-{os.getpid()}"
        gen.mkdir()
        meta: dict[str, object] = {"version": _SNAPSHOT_VERSION, "memory_id": self._memory_id, "streams": {}}
        for name, st in self._streams.items():
            data = faiss.serialize_index(st.ensure()).tobytes()
            stem = f"s{st.number}"
            (gen / f"{stem}.faiss").write_bytes(data)
            times = np.stack([st.starts, st.ends, st.ffs.astype(np.float64)], axis=1).reshape(-1, 3)
            np.save(gen / f"{stem}.times.npy", times)
            times_bytes = (gen / f"{stem}.times.npy").read_bytes()
            meta["streams"][name] = {  # type: ignore[index]
                "number": st.number,
                "dim": st.dim,
                "first": st.first,
                "next": st.next,
                "trained_at": st.trained_at,
                "files": {"faiss": f"{stem}.faiss", "times": f"{stem}.times.npy"},
                "sha256": {
                    "faiss": hashlib.sha256(data).hexdigest(),
                    "times": hashlib.sha256(times_bytes).hexdigest(),
                },
            }
        if self._cross is not None:
            data = self._cross.serialize()
            (gen / "cross.faiss").write_bytes(data)
            meta["cross"] = {"file": "cross.faiss", "trained_at": self._cross.trained_at,
                             "sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip
        (gen / "meta.json").write_text(json.dumps(meta, indent=1))
        tmp = self.path / f"CURRENT.{os.getpid()}"
        tmp.write_text(gen.name)
        os.replace(tmp, self.path / "CURRENT")
        for old in previous:
            shutil.rmtree(old, ignore_errors=True)
        self._dirty = False
        return gen

    # ---- keeping up with Redis --------------------------------------------------------------------
    def sync(self) -> int:
        """Bring the index up to date with Redis; returns the number of segments added.

        Cheap when nothing changed: one pipelined probe of every stream's position.
        """
        names = self.store.stream_names()
        positions = self.store.positions(names)
        for gone in [n for n, st in self._streams.items() if positions.get(n, (None,))[0] != st.number]:
            self._drop(self._streams.pop(gone), None)  # deleted, or deleted and re-created under a new number
            self._dirty = True
        added = 0
        for name, (number, first, committed, trained_at) in positions.items():
            st = self._streams.get(name)
            if st is None:
                dim = self.store.stream_info(name).settings.embedding_dim
                st = self._streams[name] = StreamIndex(name, number, dim, first=first)
            if first > st.first:
                self._drop(st, first)
                self._dirty = True
            if trained_at != st.trained_at:
                # Another process (re)trained the stream's IVF: adopt its centroids.
                self._rebuild_stream(st, self.store.ivf_centroids(name))
            lo = st.next
            while lo <= committed:
                hi = min(lo + _SYNC_BATCH, committed + 1)
                feed = self.store.embeddings(name, lo, hi)
                idx = feed.indices
                if len(idx):
                    # Retention may remove the oldest segments while we read; it removes oldest first,
                    # so everything before the last discontinuity is gone: keep the contiguous tail.
                    breaks = np.flatnonzero(np.diff(np.concatenate([[st.next - 1], idx])) != 1)
                    if len(breaks):
                        cut = int(breaks[-1])
                        self._drop(st, int(idx[cut]))
                        feed = IndexFeed(
                            *(getattr(feed, f.name)[cut:] for f in dataclasses.fields(IndexFeed))
                        )
                    if st.dim != feed.embeddings.shape[1]:
                        raise ValueError(
                            f"stream {name!r}: embedding dim {feed.embeddings.shape[1]} != {st.dim}"
                        )
                    vectors = st.append(feed)
                    if self._cross is not None and self._cross.dim == st.dim:
                        self._cross.add(st.number, feed.indices, vectors)
                    added += len(feed.indices)
                    self._dirty = True
                lo = hi
            self._maybe_train(st)
        self._maybe_build_cross()
        return added

    def _drop(self, st: StreamIndex, first: int | None) -> None:
        """Retention: remove a stream's rows below `first` (None: the whole stream, deleted) from its
        index and the cross-stream one."""
        if self._cross is not None and self._cross.dim == st.dim:
            self._cross.remove(st.number, 0 if first is None else st.first, st.next if first is None else first)
        if first is not None:
            st.drop_before(first)

    def _covered(self, dim: int) -> list[StreamIndex]:
        return [st for st in self._streams.values() if st.dim == dim]

    def _maybe_build_cross(self) -> None:
        """(Re)build the cross-stream index over the streams of the commonest embedding size once they
        hold `cross_min` vectors, and again at 8× growth since its training; drop it below."""
        sizes: dict[int, int] = {}
        for st in self._streams.values():
            sizes[st.dim] = sizes.get(st.dim, 0) + st.count
        dim, total = max(sizes.items(), key=lambda kv: kv[1], default=(0, 0))
        cross = self._cross
        if total < self.cross_min or len(self._covered(dim)) < 2:
            self._dirty |= cross is not None
            self._cross = None
            return
        if cross is not None and cross.dim == dim and total < 8 * cross.trained_at:
            return
        # Two passes, one stream's vectors in hand at a time (all of them at once can be gigabytes):
        # an even sample of every stream trains it, then each stream's rows are added.
        self._cross = None
        covered = self._covered(dim)
        samples, pooled = [], []
        for st in covered:
            vectors, rows = self._exact_vectors(st), sample_rows(st.count, total, self.max_nlist)
            samples.append(even_rows(vectors, rows))
            pooled.append(pooled_rows(vectors, rows, POOL_WINDOW))
        built = CrossStreamIndex.trained(np.concatenate(samples), total, self.max_nlist, np.concatenate(pooled))
        for st in covered:
            vectors = self._exact_vectors(st)  # may drop rows retention removed meanwhile
            built.add(st.number, np.arange(st.first, st.next, dtype=np.int64), vectors)
        self._cross, self._dirty = built, True

    def _maybe_train(self, st: StreamIndex) -> None:
        due = st.count >= self.exact_limit if st.trained_at == 0 else st.count >= 8 * st.trained_at
        want_pq = st.count >= self.pq_limit or st.pq  # once IVF-PQ, a retraining stays IVF-PQ
        if not due and not (want_pq and not st.pq):
            return
        vecs = self._exact_vectors(st)
        nlist = nlist_for(len(vecs), self.max_nlist)
        # Training happens once per stream (and again at 8× growth), whoever syncs first.
        centroids = train_centroids(even_rows(vecs, 32 * nlist), nlist)
        codebook = train_pq(centroids, even_rows(vecs, max(32 * nlist, PQ_MIN_TRAIN))) if want_pq else None
        stored = self.store.offer_ivf_centroids(st.name, len(vecs), centroids, codebook)
        self._rebuild_stream(st, stored, vecs)

    def _exact_vectors(self, st: StreamIndex) -> np.ndarray:
        """(count, E) float32 in segment order, exactly as added: read back from the index, or for
        IVF-PQ (codes only) from Redis, the stored embeddings normalised as `append` adds them."""
        if st.count == 0:
            return np.zeros((0, st.dim), np.float32)
        if not st.pq:
            return st.all_vectors()
        parts, ids = [], []
        for lo in range(st.first, st.next, _SYNC_BATCH):
            feed = self.store.embeddings(st.name, lo, min(lo + _SYNC_BATCH, st.next))
            parts.append(feed.embeddings)
            ids.append(feed.indices)
        idx = np.concatenate(ids)
        if len(idx) and idx[0] > st.first:  # retention removed the oldest meanwhile
            self._drop(st, int(idx[0]))
        if len(idx) != st.count:
            self._drop(st, st.next)  # nothing consistent to keep: the next sync adds what Redis has
            return np.zeros((0, st.dim), np.float32)
        return normalise(np.concatenate(parts))

    def _rebuild_stream(
        self, st: StreamIndex, stored: IvfTraining | None, vecs: np.ndarray | None = None
    ) -> None:
        """Re-create a stream's FAISS index with the given training (None: flat), same vectors."""
        if vecs is None:
            vecs = self._exact_vectors(st)
        ids = np.arange(st.first, st.next, dtype=np.int64)
        if stored is None:
            index: faiss.Index = faiss.IndexIDMap(faiss.IndexFlatIP(st.dim))
            st.trained_at = 0
        else:
            centroids = stored.centroids
            quantizer = faiss.IndexFlatIP(st.dim)
            quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
            if stored.pq is None:
                index = faiss.IndexIVFFlat(quantizer, st.dim, len(centroids), faiss.METRIC_INNER_PRODUCT)
            else:
                index = ivfpq(quantizer, st.dim, len(centroids), stored.pq.shape[0])
                faiss.copy_array_to_vector(np.ascontiguousarray(stored.pq, dtype=np.float32).ravel(),
                                           index.pq.centroids)
            index.is_trained = True
            # Keep the quantizer alive as long as the IVF index (SWIG does not own it).
            index.own_fields = True
            quantizer.this.disown()
            st.trained_at = stored.trained_at
        if len(ids):
            index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), ids)
        st.index = index
        self._dirty = True

    # ---- queries ------------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return sum(st.count for st in self._streams.values())

    def kind(self, stream: str) -> str:
        """"flat" (exact), "ivf" (IVF-Flat) or "ivfpq" (IVF-PQ, re-ranked exactly) for a stream."""
        st = self._get(stream)
        return "ivfpq" if st.pq else "ivf" if st.trained_at else "flat"

    def _get(self, stream: str) -> StreamIndex:
        st = self._streams.get(stream)
        if st is None:
            names = self.store.stream_names()
            if stream not in names:
                raise UnknownStreamError(stream, names)
            self.sync()
            st = self._streams[stream]
        return st

    def _row_range(self, st: StreamIndex, time_range: tuple[float, float] | None) -> tuple[int, int]:
        if time_range is None:
            return 0, st.count
        t0, t1 = time_range
        lo = int(np.searchsorted(st.ends, t0, side="right"))  # first segment ending after t0
        hi = int(np.searchsorted(st.starts, t1, side="left"))  # first segment starting at/after t1
        return lo, max(lo, hi)

    def timeline(self, stream: str, time_range: tuple[float, float] | None = None) -> Timeline:
        """Indexed segments of `stream` (overlapping `time_range` seconds), in order.

        The arrays are read-only views: the index replaces, never mutates, its arrays.
        """
        st = self._get(stream)
        lo, hi = self._row_range(st, time_range)
        views = [st.starts[lo:hi], st.ends[lo:hi], st.ffs[lo:hi]]
        for v in views:
            v.flags.writeable = False
        return Timeline(stream, np.arange(st.first + lo, st.first + hi, dtype=np.int64), *views)

    def search(
        self,
        query: np.ndarray,
        k: int = 10,
        *,
        streams: Sequence[str] | None = None,
        time_range: tuple[float, float] | None = None,
    ) -> list[SearchHit]:
        """Top-k segments by cosine similarity to `query` (E,), best first.

        `streams`: only these (UnknownStreamError for a name the memory lacks); `time_range`:
        only segments overlapping [t0, t1) seconds of their stream's timeline.
        """
        q = normalise(np.asarray(query, dtype=np.float32).reshape(1, -1))
        names = list(self._streams) if streams is None else list(streams)
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(self.search_threads)
        try:
            hits = self._cross_search(q, k, names) if time_range is None else None
            if hits is None:
                hits = self._search(q, k, names, time_range)
        finally:
            faiss.omp_set_num_threads(threads)
        hits.sort(key=lambda h: (-h.score, h.stream, h.index))
        return hits[:k]

    def _search(
        self, q: np.ndarray, k: int, names: list[str], time_range: tuple[float, float] | None
    ) -> list[SearchHit]:
        hits: list[SearchHit] = []
        for name in names:
            st = self._get(name)
            lo, hi = self._row_range(st, time_range)
            members = hi - lo
            if members <= 0 or st.index is None:
                continue
            kk = min(k, members)
            if st.pq:  # approximate scores: take more candidates, re-rank them exactly below
                kk = min(members, max(self.rerank * kk, 32))
            whole = lo == 0 and hi == st.count
            sel = None if whole else faiss.IDSelectorRange(st.first + lo, st.first + hi)
            if use_gpu_faiss(members, filtered=not whole, gpus=self._gpus, min_vectors=self.gpu_min_vectors):
                scores, ids = self._gpu_index(st).search(q, kk)
            elif st.trained_at == 0:
                params = faiss.SearchParameters(sel=sel) if sel is not None else None
                scores, ids = st.index.search(q, kk, params=params)
            else:
                nlist = st.index.nlist
                selective = members <= 4 * self.exact_limit // 10 or members * 4 < st.count
                nprobe = nlist if selective else min(self.nprobe, nlist)
                scores, ids = st.index.search(q, kk, params=faiss.SearchParametersIVF(sel=sel, nprobe=nprobe))
                if (ids[0] < 0).any() and nprobe < nlist:
                    scores, ids = st.index.search(
                        q, kk, params=faiss.SearchParametersIVF(sel=sel, nprobe=nlist)
                    )
            found = ids[0][ids[0] >= 0]
            best = scores[0][ids[0] >= 0]
            if st.pq:
                found, best = self._rerank(st, q, found, min(k, members))
            for score, i in zip(best, found, strict=True):
                row = int(i) - st.first
                hits.append(SearchHit(name, int(i), float(score), float(st.starts[row]), float(st.ends[row])))
        return hits

    def _cross_search(self, q: np.ndarray, k: int, names: list[str]) -> list[SearchHit] | None:
        """Top k over many streams from the cross-stream index: a PQ shortlist (cross_index.SHORTLIST, widened
        by the share of its vectors the chosen streams hold) re-ranked by exact cosine. None
        when it does not serve the search (few streams, a few of many, another embedding size, or too
        few hits of the chosen streams): then each stream's own index is searched."""
        cross = self._cross
        if cross is None or len(set(names)) < self.cross_streams or q.shape[1] != cross.dim:
            return None
        sts = {st.number: st for st in (self._get(n) for n in names)}
        chosen = sum(st.count for st in sts.values())
        if any(st.dim != cross.dim for st in sts.values()) or chosen * 4 < cross.count:
            return None
        k = min(k, chosen)
        if k <= 0:
            return []
        numbers, indices = split_ids(cross.search(q, cross.shortlist(k, self.rerank, chosen), self.nprobe))
        hits: list[SearchHit] = []
        for number in np.unique(numbers).tolist():
            st = sts.get(number)
            if st is None:  # a stream not asked about
                continue
            found = indices[numbers == number]
            found, exact = self._exact_scores(st, q, found[(found >= st.first) & (found < st.next)])
            rows = (found - st.first).tolist()
            hits += [SearchHit(st.name, int(i), float(score), float(st.starts[r]), float(st.ends[r]))
                     for i, score, r in zip(found.tolist(), exact.tolist(), rows, strict=True)]  # fmt: skip
        return hits if len(hits) >= k else None

    def _exact_scores(self, st: StreamIndex, q: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, exact cosine to q (1, E)) of segments of `st`: vectors from its flat index, else the
        stored embeddings from Redis (one round trip; segments retention removed meanwhile left out)."""
        vectors = st.vectors_of(ids)
        if vectors is None:
            feed = self.store.embeddings_of(st.name, [int(i) for i in ids])
            ids, vectors = feed.indices, normalise(feed.embeddings)
        if not len(ids):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        return np.asarray(ids, np.int64), vectors @ q[0]  # (n,)

    def _rerank(self, st: StreamIndex, q: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k of `ids` nearest to q (1, E) by exact cosine, best first."""
        ids, exact = self._exact_scores(st, q, ids)
        order = np.lexsort((ids, -exact))[:k]  # best first; ties by index, as flat search
        return ids[order], exact[order]

    def _gpu_index(self, st: StreamIndex) -> faiss.Index:
        """A GPU copy of the stream's CPU index, remade when the index has changed since the copy."""
        assert st.index is not None
        version = (id(st.index), int(st.index.ntotal), st.first, st.trained_at)
        if st.gpu is None or st.gpu[0] != version:
            if self._gpu_resources is None:
                self._gpu_resources = faiss.StandardGpuResources()
            copy = faiss.index_cpu_to_gpu(self._gpu_resources, 0, st.index)
            if st.trained_at:
                # The CPU path's nprobe for an unfiltered search, so both give the same hits.
                faiss.GpuParameterSpace().set_index_parameter(copy, "nprobe", min(self.nprobe, st.index.nlist))
            st.gpu = (version, copy)
        return st.gpu[1]

    def __len__(self) -> int:
        return self.size


def remove_snapshot(home: Path | str | None = None) -> None:
    """Delete the index snapshot (it is rebuilt from Redis on the next open)."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(tempo_home(home) / "index")
