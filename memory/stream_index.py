"""One stream's FAISS index (index.py's per-stream part) and when a search of it runs on a GPU copy."""

from __future__ import annotations

from dataclasses import dataclass, field

import faiss
import numpy as np
from tempo.memory.ivf import normalise
from tempo.memory.store_types import IndexFeed

# Below this many vectors a flat CPU scan takes well under a millisecond: copying to the GPU cannot pay.
GPU_MIN_VECTORS = 100_000


def faiss_gpu_count(module: object = faiss) -> int:
    """GPUs the installed faiss can use: 0 for faiss-cpu (no `StandardGpuResources`) or no GPU."""
    if not hasattr(module, "StandardGpuResources") or not hasattr(module, "index_cpu_to_gpu"):
        return 0
    try:
        return int(module.get_num_gpus())  # type: ignore[attr-defined]
    except Exception:  # a GPU build without a usable driver
        return 0


def use_gpu_faiss(vectors: int, *, filtered: bool, gpus: int, min_vectors: int = GPU_MIN_VECTORS) -> bool:
    """Search on a GPU copy: a GPU is there, the index is large, and no id filter is needed (GPU
    indexes take no `IDSelector`; a filtered search stays exact on the CPU)."""
    return gpus > 0 and not filtered and vectors >= min_vectors


@dataclass
class StreamIndex:
    """One stream's FAISS index (ids = segment indices) and its segments' times, in segment order."""


    name: str
    number: int
    dim: int
    first: int = 0  # index of row 0
    index: faiss.Index | None = None
    trained_at: int = 0  # 0 = exact (flat); else IVF trained when the stream had this many segments
    starts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ends: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ffs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # first frame indices
    gpu: tuple[tuple[int, int, int, int], faiss.Index] | None = None  # (version of `index` it copies, copy)

    @property
    def count(self) -> int:
        return len(self.starts)

    @property
    def next(self) -> int:
        return self.first + self.count

    @property
    def pq(self) -> bool:
        """True for an IVF-PQ index (it keeps codes, not the vectors)."""
        return self.index is not None and isinstance(faiss.downcast_index(self.index), faiss.IndexIVFPQ)

    def ensure(self) -> faiss.Index:
        if self.index is None:
            self.index = faiss.IndexIDMap(faiss.IndexFlatIP(self.dim))
        return self.index

    def drop_before(self, first: int) -> None:
        """Remove rows of segments < first (retention)."""
        if first <= self.first:
            return
        n = min(first - self.first, self.count)
        if n > 0 and self.index is not None:
            self.index.remove_ids(faiss.IDSelectorRange(self.first, self.first + n))
        self.starts, self.ends, self.ffs = self.starts[n:].copy(), self.ends[n:].copy(), self.ffs[n:].copy()
        self.first = first

    def append(self, feed: IndexFeed) -> np.ndarray:
        """Add the feed's segments; returns their unit vectors (n, E) as indexed."""
        vectors = normalise(feed.embeddings)
        self.ensure().add_with_ids(vectors, feed.indices)
        self.starts = np.concatenate([self.starts, feed.starts])
        self.ends = np.concatenate([self.ends, feed.ends])
        self.ffs = np.concatenate([self.ffs, feed.first_frame_index])
        return vectors

    def vectors_of(self, ids: np.ndarray) -> np.ndarray | None:
        """Unit vectors (n, E) of indexed segments `ids`, a copy of a flat index's rows; None for IVF
        (its lists are not in segment order; IVF-PQ keeps codes only)."""
        if self.trained_at or self.index is None:
            return None
        flat = faiss.downcast_index(faiss.downcast_index(self.index).index)
        xb = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * self.dim).reshape(flat.ntotal, self.dim)
        return xb[np.asarray(ids, np.int64) - self.first]  # IndexIDMap rows are in segment order

    def all_vectors(self) -> np.ndarray:
        """(count, E) float32 in index order, read back from FAISS (exact copies of what was added)."""
        index = self.ensure()
        if self.count == 0:
            return np.zeros((0, self.dim), np.float32)
        assert not self.pq, "an IVF-PQ index keeps codes only: read the vectors from Redis"
        if self.trained_at == 0:
            # IndexIDMap keeps rows in insertion order (removals shift), i.e. segment order.
            return faiss.downcast_index(index.index).reconstruct_n(0, self.count)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        try:
            return index.reconstruct_batch(np.arange(self.first, self.next, dtype=np.int64))
        finally:
            index.set_direct_map_type(faiss.DirectMap.NoMap)
