"""One FAISS index over every stream's vectors, so a question across many streams is one search.

A search per stream costs a scan (or probe) of each stream's index: over 100 streams of 24 h (21,600
segments each, flat) that is 100 scans of 21,600 vectors, hundreds of milliseconds. `CrossStreamIndex`
holds the same unit vectors once more, in one IVF-PQ index (192 bytes per 768-d vector), under ids that
name their stream: `number << SLOT_SHIFT | segment index` (the stream's number from Redis, so a deleted
and re-created stream never collides with its old rows). `SegmentIndex` keeps it in step with the
per-stream indices (append, retention, deletion, snapshot) and searches it for a question over many
streams: PQ scores are approximate, so it takes a shortlist (`SHORTLIST` × `rerank` × k, at least 256)
and orders that by the exact cosine of the per-stream vectors. Hits equal the per-stream exact search
whenever the true top k are in the shortlist (`bench/retrieval.py --streams N` measures recall@16).

Its training (coarse centroids and PQ codebook) is this process's own, deterministic from the vectors it
holds, and kept in the snapshot; unlike a stream's IVF it is not shared through Redis, since only the
re-ranked hits leave this module and those are exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import faiss
import numpy as np
from tempo.memory.ivf import PQ_MIN_TRAIN, even_rows, ivfpq, nlist_for, pq_m, train_centroids

SLOT_SHIFT = 40  # segment indices stay far below 2**40; stream numbers below 2**23
_INDEX_MASK = (1 << SLOT_SHIFT) - 1
# Finer codes and a longer shortlist than a stream's own IVF-PQ: one question's best matches are spread
# over many streams of similar scenes, where 8-dimension codes and 10 × k candidates missed a third of the
# true top 16 (bench/retrieval.py --streams 100 --hours 1: recall@16 0.70; 4 dimensions and 40 × k: 1.0).
# 80 × k is what the 12 h figure ran with; there one question of 20 still finds 6 of 16 with 40 or 80 × k:
# its matches lie in IVF lists beyond nprobe (probing every list finds all 16), not past the shortlist.
SUB_DIMS = 4  # dimensions per PQ sub-quantizer (192 one-byte codes for 768-d)
SHORTLIST = 8  # shortlist = SHORTLIST × rerank × k (at least 256), re-ranked exactly
# The coarse centroids are trained on means of POOL_WINDOW consecutive segments of a stream, seeded by
# k-means++. Trained on single vectors from random seeds (before), the lists at 100 streams × 24 h held
# a third of the scenes nowhere in particular: a question about one of those found its true neighbours
# spread over hundreds of lists, and recall@16 was 0.684 (bench/retrieval.py --streams 100; one scene
# is ~2,250 segments whose vectors agree on little more than a third of their direction). Window means
# of 8 show the scenes plainly; with them, probing 16 of 1,024 lists found the exact top 16 for every
# question (/tmp experiments on the bench's own vectors; the README has the bench's figure).
POOL_WINDOW = 8


def cross_ids(number: int, indices: np.ndarray) -> np.ndarray:
    """(n,) int64 ids of segments `indices` of the stream numbered `number`."""
    return (np.int64(number) << np.int64(SLOT_SHIFT)) | np.asarray(indices, dtype=np.int64)


def split_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(stream numbers, segment indices) of cross ids, both (n,) int64."""
    ids = np.asarray(ids, dtype=np.int64)
    return ids >> SLOT_SHIFT, ids & _INDEX_MASK


def sample_rows(count: int, total: int, max_nlist: int) -> int:
    """Training points to take (evenly) from a stream of `count` of the `total` vectors: its share of
    enough to train the centroids (40 points each: FAISS wants 39) and a PQ codebook."""
    want = max(40 * nlist_for(total, max_nlist), PQ_MIN_TRAIN)
    return max(1, math.ceil(want * count / max(total, 1)))


@dataclass
class CrossStreamIndex:
    """IVF-PQ over the unit vectors of every stream of one embedding size."""

    dim: int
    index: faiss.IndexIVFPQ
    trained_at: int  # vectors held when it was trained (retrained at 8× growth)

    @classmethod
    def trained(cls, sample: np.ndarray, total: int, max_nlist: int,
                pooled: np.ndarray | None = None) -> CrossStreamIndex:
        """An empty index trained for about `total` vectors: its PQ codebook on `sample` (n, E), an even
        sample of the vectors; its coarse centroids on `pooled` (m, E), window means of each stream's
        vectors (ivf.pooled_rows over POOL_WINDOW segments; `sample` itself when None), from k-means++
        seeds."""
        dim = int(sample.shape[1])
        coarse = sample if pooled is None else pooled
        nlist = min(nlist_for(total, max_nlist), max(1, len(coarse) // 39))
        centroids = train_centroids(even_rows(coarse, 40 * nlist), nlist, spread=True)  # (nlist, E)
        quantizer = faiss.IndexFlatIP(dim)
        quantizer.add(centroids)
        index = ivfpq(quantizer, dim, nlist, pq_m(dim, SUB_DIMS))
        index.train(sample)  # the quantizer holds its centroids already: only the PQ is trained
        index.own_fields = True  # keep the quantizer alive as long as the index (SWIG does not own it)
        quantizer.this.disown()
        return cls(dim, index, int(total))

    @property
    def count(self) -> int:
        return int(self.index.ntotal)

    def add(self, number: int, indices: np.ndarray, vectors: np.ndarray) -> None:
        """Index segments `indices` (n,) of stream `number` with their unit vectors (n, E)."""
        if len(indices):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), cross_ids(number, indices))

    def remove(self, number: int, lo: int = 0, hi: int = _INDEX_MASK) -> None:
        """Forget segments lo..hi-1 of stream `number` (all of them by default)."""
        if hi > lo:
            self.index.remove_ids(faiss.IDSelectorRange(int(cross_ids(number, lo)), int(cross_ids(number, hi))))

    def shortlist(self, k: int, rerank: int, chosen: int) -> int:
        """Candidates to take for k hits among `chosen` of its vectors (the rest filtered out after)."""
        return min(self.count, math.ceil(max(SHORTLIST * rerank * k, 256) * self.count / max(chosen, 1)))

    def search(self, q: np.ndarray, k: int, nprobe: int) -> np.ndarray:
        """Ids of about the k nearest vectors to q (1, E) by PQ score, best first (a shortlist to re-rank)."""
        params = faiss.SearchParametersIVF(nprobe=min(nprobe, self.index.nlist))
        _, ids = self.index.search(q, min(k, max(self.count, 1)), params=params)
        return ids[0][ids[0] >= 0]

    def serialize(self) -> bytes:
        return faiss.serialize_index(self.index).tobytes()

    @classmethod
    def deserialize(cls, data: bytes, trained_at: int) -> CrossStreamIndex:
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))  # already its own class (owned)
        if not isinstance(index, faiss.IndexIVFPQ):
            raise ValueError("the cross-stream index is not IVF-PQ")
        return cls(int(index.d), index, int(trained_at))
