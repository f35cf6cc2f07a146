"""IVF and PQ building blocks shared by the per-stream index (index.py) and the cross-stream one
(cross_index.py): unit vectors, even subsamples, the PQ layout and its codebook training."""

from __future__ import annotations

import math

import faiss
import numpy as np

PQ_BITS = 8  # bits per PQ sub-quantizer code (256 centroids each)
PQ_MIN_TRAIN = 16_384  # PQ training points at least (FAISS wants ≥ 39 per each of the 256 centroids)


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def nlist_for(n: int, max_nlist: int) -> int:
    """IVF lists for n vectors: about 4·√n, at most max_nlist, and ≥ 39 training points per centroid."""
    return int(max(1, min(max_nlist, 4 * math.isqrt(max(n, 1)), n // 39)))


def train_centroids(sample: np.ndarray, nlist: int, *, spread: bool = False) -> np.ndarray:
    """(nlist, E) spherical k-means centroids of `sample` (deterministic). Callers pass an even subsample
    of at most 32 points per centroid, which keeps training to seconds. `spread`: start from k-means++
    seeds (`spread_seeds`) instead of random sample points."""
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    kmeans = faiss.Kmeans(sample.shape[1], nlist, niter=12, seed=1234, spherical=True, verbose=False)
    kmeans.cp.max_points_per_centroid = 10**9  # subsampled already
    kmeans.train(sample, init_centroids=spread_seeds(sample, nlist) if spread and nlist < len(sample) else None)
    return kmeans.centroids


def spread_seeds(sample: np.ndarray, k: int, seed: int = 1234) -> np.ndarray:
    """(k, E) k-means++ seeds among the unit rows of `sample` (deterministic): each next seed drawn with
    probability ∝ its squared distance to the nearest seed so far. Random seeds (FAISS's default) leave a
    third of the clusters without a seed when there are about as many clusters as lists, and k-means
    does not move a centroid across to them: their vectors then scatter over unrelated lists."""
    rng = np.random.default_rng(seed)
    seeds = np.empty((k, sample.shape[1]), np.float32)
    seeds[0] = sample[rng.integers(len(sample))]
    far = np.maximum(2.0 - 2.0 * (sample @ seeds[0]), 0.0)  # squared distance of unit vectors
    for i in range(1, k):
        total = float(far.sum())
        pick = int(rng.choice(len(sample), p=far / total)) if total > 0 else int(rng.integers(len(sample)))
        seeds[i] = sample[pick]
        np.minimum(far, np.maximum(2.0 - 2.0 * (sample @ seeds[i]), 0.0), out=far)
    return seeds


def pooled_rows(vecs: np.ndarray, n: int, window: int) -> np.ndarray:
    """At most n unit rows, each the mean of `window` consecutive rows of vecs (a stream's vectors in
    time order) at evenly spaced starts (deterministic). Neighbouring segments of a video share their
    scene, so the mean keeps what they share and averages their differences away: clusters that single
    noisy vectors hide show in these (training the coarse centroids on them)."""
    window = max(1, min(window, len(vecs)))
    starts = np.linspace(0, len(vecs) - window, min(n, len(vecs) - window + 1)).round().astype(np.int64)
    return normalise(np.asarray(vecs[starts[:, None] + np.arange(window)], np.float32).mean(axis=1))


def even_rows(vecs: np.ndarray, n: int) -> np.ndarray:
    """At most n rows of vecs, evenly spaced (deterministic), contiguous."""
    rows = np.linspace(0, len(vecs) - 1, min(len(vecs), n)).round().astype(np.int64)
    return np.ascontiguousarray(vecs[rows])


def pq_m(dim: int, sub_dims: int = 8) -> int:
    """Sub-quantizers for a dim-d vector: `sub_dims` dimensions each where d allows (96 for 768-d)."""
    for sub in (8, 4, 2, 1):
        if sub <= sub_dims and dim % sub == 0:
            return dim // sub
    return dim


def ivfpq(quantizer: faiss.Index, dim: int, nlist: int, m: int) -> faiss.IndexIVFPQ:
    return faiss.IndexIVFPQ(quantizer, dim, nlist, m, PQ_BITS, faiss.METRIC_INNER_PRODUCT)


def train_pq(centroids: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """The PQ codebook (M, 256, E/M) float32 of residuals to `centroids`, trained on `sample`."""
    dim = centroids.shape[1]
    quantizer = faiss.IndexFlatIP(dim)
    quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
    index = ivfpq(quantizer, dim, len(centroids), pq_m(dim))
    index.train(sample)  # the quantizer holds its centroids already: only the PQ is trained
    m = index.pq.M
    return faiss.vector_to_array(index.pq.centroids).reshape(m, 1 << PQ_BITS, dim // m).astype(np.float32)
