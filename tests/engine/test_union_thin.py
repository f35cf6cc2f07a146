"""union_plan over many streams gives ATA only the rows it keeps: the plan equals plan_allocation over the
whole union timeline, gaps, out-of-scope candidates and all."""

from __future__ import annotations

import numpy as np
import pytest
from tempo.engine.multi import composite, union_plan, union_timeline
from tempo.engine.recall import Compression, plan_allocation
from tempo.engine.union_thin import grid_rows
from tempo.memory.index import Timeline


def _timeline(name: str, indices: np.ndarray) -> Timeline:
    indices = np.asarray(indices, np.int64)
    return Timeline(name, indices, indices * 4.0, indices * 4.0 + 4.0)


def _streams(rng: np.random.Generator, count: int) -> dict[str, Timeline]:
    """Streams of different lengths and starts (retention), some with gaps, one empty."""
    out = {}
    for s in range(count):
        first, n = int(rng.integers(0, 5000)), int(rng.integers(0, 3000)) if s else 0
        indices = first + np.arange(n)
        if s % 3 == 1 and n:  # gaps: a camera dropped out for a while
            indices = np.sort(rng.choice(first + np.arange(2 * n), size=n, replace=False))
        out[f"cam{s:02d}"] = _timeline(f"cam{s:02d}", indices)
    return out


CASES = [(1, 8192, 0), (7, 4096, 1), (40, 8192, 2), (40, 64, 3), (3, 10**6, 4)]  # (streams, budget, seed)


@pytest.mark.parametrize(("count", "budget", "seed"), CASES)
def test_the_union_plan_equals_ata_over_the_whole_union(count: int, budget: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    timelines = _streams(rng, count)
    names = sorted(timelines)
    relevance: dict[int, float] = {}
    for p, s in enumerate(names):
        t = timelines[s]
        for i in rng.choice(t.indices, size=min(len(t.indices), 3), replace=False) if len(t.indices) else []:
            relevance[composite(p, int(i))] = float(rng.uniform(0.05, 1.0))
    relevance[composite(0, 10**9)] = 0.9  # a candidate outside every timeline in scope
    tokens = np.zeros((128, 8), np.float32)
    compression = Compression({k: (v, tokens) for k, v in relevance.items()}, 0)
    options = {"tokens_per_segment": 128, "budget": budget, "min_tokens": 4, "stored_tokens": 4}
    got = union_plan(names, timelines, compression, **options)
    want = plan_allocation(union_timeline(names, timelines), relevance, **options)
    assert got.anchors_dropped == want.anchors_dropped
    for field in ("indices", "starts", "ends", "counts", "candidate"):
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field))
    np.testing.assert_array_equal(got.relevance, want.relevance)  # NaN for anchors in both


def test_grid_rows_pick_indices_on_the_stride_with_or_without_gaps() -> None:
    assert grid_rows(np.arange(5, 40), 8).tolist() == [3, 11, 19, 27]  # indices 8, 16, 24, 32
    gappy = np.array([0, 3, 4, 8, 12, 13, 16])
    assert grid_rows(gappy, 4).tolist() == [0, 2, 3, 4, 6]
    assert grid_rows(np.zeros(0, np.int64), 4).tolist() == []
