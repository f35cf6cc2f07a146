"""Adaptive Token Allocation (DESIGN §2): how many memory tokens each segment keeps.

A pure function of the relevance scores: segments the router finds relevant keep up to M tokens,
the rest keep a minimal anchor of m tokens, and the total stays within the visual budget B.
The arithmetic is the release's (VLMMultimodalProcessor.adaptive_linear_budget_allocation), done with
the same torch operations on the CPU so every float32 rounding and every tie comes out the same;
vectorised, O(n log n) for the one sort (10⁶ segments in a fraction of a second, bench/ata.py).
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
    """Memory tokens to keep per segment, exactly as the release computes them (DESIGN §2's five steps).

    scores: (n,) relevance in [0, 1], taken as float32 (the release's dtype); tokens_per_segment: M;
    budget: B (tokens over the whole timeline); min_tokens: m. Returns (n,) int64 counts. They lie in
    [m', M], m' being m lowered to max(1, ⌊B/n⌋) when n·m > B — except when all scores are equal, where
    every segment gets min(M, ⌊B/n⌋), which is 0 when n > B (the release does not clamp that case).
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
    m = int(min_tokens)

    # 1. Not even m tokens each fit: lower the floor.
    if n * m > budget:
        m = max(1, budget // n)

    x = torch.from_numpy(s).to(torch.float32)  # (n,) float32, as the release's torch.tensor(scores)
    lo, hi = x.min(), x.max()
    spread = hi - lo
    if spread < EQUAL_SCORES_EPS:
        # 2. Nothing to prefer: an even share, capped at M (0 when n > B: no clamp to m here).
        return np.full(n, min(big_m, budget // n), dtype=np.int64)
    # 3. Normalised relevance and the ideal count per segment.
    u = (x - lo) / spread  # (n,) float32 in [0, 1]
    ideal = m + (u * (big_m - m)).floor().long()  # (n,) int64
    if ideal.sum().item() <= budget:
        # 4a. The ideal allocation fits.
        k = ideal
    else:
        # 4b. Spread the extra budget E over the segments by weight, then the remainder one token each
        # to the largest weights, in the order torch's CPU argsort (descending) gives them.
        extra = budget - n * m
        total = u.sum().item()  # > 0: max(u) = 1
        w = torch.ones_like(u) / n if total < EQUAL_SCORES_EPS else u / total  # (n,) float32
        e = (w * extra).floor().long()  # (n,)
        left = int(extra - e.sum().item())
        if left > 0:
            e[torch.argsort(w, descending=True)[:left]] += 1
        k = m + e
    # 5. Every count within [m, M].
    return k.clamp(min=m, max=big_m).numpy().astype(np.int64)


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
