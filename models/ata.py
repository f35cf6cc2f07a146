"""Adaptive Token Allocation (DESIGN §2): how many memory tokens each segment keeps.

A pure function of the relevance scores: segments the router finds relevant keep up to M tokens,
the rest keep a minimal anchor of m tokens, and the total stays within the visual budget B.
Everything is vectorised with numpy (10⁶ segments take well under a second).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

# Below this spread all scores count as equal (DESIGN §2, step 2).
EQUAL_SCORES_EPS = 1e-8


def allocate_tokens(
    scores: Sequence[float] | np.ndarray,
    *,
    tokens_per_segment: int,
    budget: int,
    min_tokens: int = 4,
) -> np.ndarray:
    """Memory tokens to keep per segment, exactly the five steps of DESIGN §2.

    scores: (n,) relevance in [0, 1]; tokens_per_segment: M; budget: B (tokens over the whole
    timeline); min_tokens: m. Returns (n,) int64 counts k_i in [m', M] where m' is m, lowered to
    max(1, ⌊B/n⌋) when n·m > B. The sum never exceeds B when n·m' ≤ B.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)  # (n,)
    n = s.shape[0]
    big_m = int(tokens_per_segment)
    if big_m < 1 or budget < 0 or min_tokens < 1:
        raise ValueError("tokens_per_segment and min_tokens must be ≥ 1 and budget ≥ 0")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.all(np.isfinite(s)):
        raise ValueError("relevance scores must be finite")
    m = min(int(min_tokens), big_m)

    # 1. Not even m tokens each fit: lower the floor.
    if n * m > budget:
        m = max(1, budget // n)

    lo, hi = float(s.min()), float(s.max())
    if hi - lo < EQUAL_SCORES_EPS:
        # 2. Nothing to prefer: an even share, capped at M.
        k = np.full(n, min(big_m, budget // n), dtype=np.int64)
    else:
        # 3. Normalised relevance and the ideal count per segment.
        u = (s - lo) / (hi - lo)  # (n,) in [0, 1]
        ideal = m + np.floor(u * (big_m - m)).astype(np.int64)
        if int(ideal.sum()) <= budget:
            # 4a. The ideal allocation fits.
            k = ideal
        else:
            # 4b. Spread the extra budget E over the segments in proportion to u, largest remainders first.
            extra = budget - n * m
            w = u / u.sum()  # (n,) sums to 1; u.sum() > 0 because max(u) = 1
            e = np.floor(w * extra).astype(np.int64)
            left = extra - int(e.sum())
            if left > 0:
                # The `left` largest weights get one more token; among equal weights the earlier segment
                # wins (what a stable sort by −w gives), found in O(n) with a partition, not a sort.
                threshold = np.partition(w, n - left)[n - left]  # the left-th largest weight
                above = w > threshold
                e[above] += 1
                e[np.flatnonzero(w == threshold)[: left - int(above.sum())]] += 1
            k = m + e
    # 5. Every count within [m, M].
    return np.clip(k, m, big_m).astype(np.int64)


def truncate_memory(
    tokens_list: Sequence[torch.Tensor] | torch.Tensor, counts: Sequence[int] | np.ndarray
) -> list[torch.Tensor]:
    """Head truncation: segment i keeps its first counts[i] memory tokens.

    tokens_list: n tensors (M_i, D) or one (n, M, D) tensor. Training front-loads the semantics into
    the earliest memory tokens, which is why the head (not a strided subset) is kept. Returns n views
    (k_i, D).
    """
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    if len(tokens_list) != counts.shape[0]:
        raise ValueError(f"{len(tokens_list)} segments of memory tokens but {counts.shape[0]} counts")
    kept = []
    for tokens, k in zip(tokens_list, counts.tolist(), strict=True):
        if k < 0 or k > tokens.shape[0]:
            raise ValueError(f"cannot keep {k} of {tokens.shape[0]} memory tokens")
        kept.append(tokens[:k])
    return kept


def average_tokens_per_frame(
    counts: Sequence[int] | np.ndarray, frames: int | Sequence[int] | np.ndarray
) -> float:
    """Kept memory tokens per sampled frame over the whole timeline (the paper's 2.8–4.3 figure).

    frames: frames per segment (one int for all, or (n,) real frame counts, padding not counted).
    """
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    if counts.size == 0:
        return 0.0
    frames_arr = np.broadcast_to(np.asarray(frames, dtype=np.int64), counts.shape)
    total_frames = int(frames_arr.sum())
    return float(counts.sum()) / total_frames if total_frames > 0 else 0.0
