"""Adaptive Token Allocation: the five steps of DESIGN §2 as a pure function."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tempo.models.ata import allocate_tokens, average_tokens_per_frame, truncate_memory


def reference_allocation(scores: list[float], M: int, B: int, m: int = 4) -> list[int]:
    """The release's allocation (adaptive_linear_budget_allocation) written as a plain loop in float32.

    Exact for the inputs the property test draws: scores on a 1/1024 grid that include 0 and 1, so
    u_i = s_i and Σu is exact in float32, while each division and product is one correctly rounded
    float32 operation, as in torch; at most 16 segments, where torch's CPU argsort (descending) orders
    equal weights by index (longer tie-heavy timelines are pinned by the release's golden values).
    """
    f32 = np.float32
    n = len(scores)
    if n * m > B:
        m = max(1, B // n)
    s = [f32(x) for x in scores]
    lo, hi = min(s), max(s)
    if f32(hi - lo) < f32(1e-8):
        return [min(M, B // n)] * n  # no clamp: 0 when n > B
    u = [f32(f32(x - lo) / f32(hi - lo)) for x in s]
    ideal = [m + math.floor(f32(x * f32(M - m))) for x in u]
    if sum(ideal) <= B:
        k = ideal
    else:
        extra = B - n * m
        total = f32(sum(u))
        w = [f32(x / total) for x in u]
        e = [math.floor(f32(x * f32(extra))) for x in w]
        left = extra - sum(e)
        for i in sorted(range(n), key=lambda i: -w[i])[: max(0, left)]:
            e[i] += 1
        k = [m + x for x in e]
    return [M if m > M else min(max(x, m), M) for x in k]


scores_st = st.lists(st.floats(min_value=0.0, max_value=1.0, allow_nan=False), min_size=1, max_size=300)
grid_scores_st = st.lists(st.integers(0, 1024), min_size=0, max_size=14).map(
    lambda xs: [0.0, 1.0, *(x / 1024 for x in xs)]
)


def test_ideal_allocation_when_it_fits() -> None:
    k = allocate_tokens([0.0, 0.5, 1.0], tokens_per_segment=128, budget=8192)
    assert k.tolist() == [4, 66, 128]


def test_over_budget_spreads_extra_by_weight_with_largest_remainder() -> None:
    # E = 100 − 3·4 = 88; w = (0, 1/3, 2/3) → e = (0, 29, 58), one token left goes to the largest w.
    k = allocate_tokens([0.0, 0.5, 1.0], tokens_per_segment=128, budget=100)
    assert k.tolist() == [4, 33, 63]
    assert k.sum() == 100


def test_equal_scores_share_the_budget_evenly_capped_at_M() -> None:
    assert allocate_tokens([0.3] * 10, tokens_per_segment=128, budget=200).tolist() == [20] * 10
    assert allocate_tokens([0.7] * 4, tokens_per_segment=128, budget=8192).tolist() == [128] * 4


def test_equal_scores_with_more_segments_than_budget_keep_nothing() -> None:
    # The release's all-equal branch returns ⌊B/n⌋ = 0 tokens each, without the floor of one.
    assert allocate_tokens([0.5] * 30, tokens_per_segment=128, budget=20).tolist() == [0] * 30


def test_scores_are_compared_in_float32() -> None:
    # 1e-9 apart in float64 but the same float32: all equal, the even share (the release's dtype).
    assert allocate_tokens([0.5, 0.5 + 1e-9], tokens_per_segment=128, budget=100).tolist() == [50, 50]


def test_too_many_segments_lower_the_floor() -> None:
    # n·m = 40 > B = 25 → m = ⌊25/10⌋ = 2.
    k = allocate_tokens(np.linspace(0, 1, 10), tokens_per_segment=128, budget=25)
    assert k.min() == 2
    assert k.sum() <= 25


def test_floor_never_drops_below_one_token() -> None:
    k = allocate_tokens(np.linspace(0, 1, 50), tokens_per_segment=128, budget=10)
    assert k.min() == 1  # the budget cannot be met then: every segment keeps its one anchor token


def test_tied_scores_break_towards_the_earlier_segment() -> None:
    # Two equal top scores: the spare token goes to the first of them, and tied counts differ by ≤ 1.
    k = allocate_tokens([0.0, 1.0, 1.0], tokens_per_segment=128, budget=25)
    assert k.tolist() == [4, 11, 10]


def test_empty_timeline() -> None:
    assert allocate_tokens([], tokens_per_segment=128, budget=10).shape == (0,)


def test_rejects_nan_scores() -> None:
    with pytest.raises(ValueError):
        allocate_tokens([0.1, float("nan")], tokens_per_segment=128, budget=100)


@settings(max_examples=300, deadline=None)
@given(scores=grid_scores_st, M=st.integers(1, 128), B=st.integers(0, 2000))
def test_matches_the_loop_reference(scores: list[float], M: int, B: int) -> None:
    assert allocate_tokens(scores, tokens_per_segment=M, budget=B).tolist() == reference_allocation(
        scores, M, B
    )


@settings(max_examples=300, deadline=None)
@given(scores=scores_st, M=st.integers(4, 128), B=st.integers(0, 20000))
def test_budget_respected_whenever_the_floor_fits(scores: list[float], M: int, B: int) -> None:
    k = allocate_tokens(scores, tokens_per_segment=M, budget=B)
    if len(scores) * 4 <= B:
        assert k.sum() <= B
        assert k.min() >= 4
    assert k.max() <= M


@settings(max_examples=300, deadline=None)
@given(scores=scores_st, M=st.integers(4, 128), B=st.integers(1, 20000))
def test_every_count_lies_between_floor_and_M(scores: list[float], M: int, B: int) -> None:
    k = allocate_tokens(scores, tokens_per_segment=M, budget=B)
    s = np.asarray(scores, dtype=np.float32)
    if float(s.max() - s.min()) < 1e-8:
        assert k.tolist() == [min(M, B // len(scores))] * len(scores)  # the release's unclamped even share
        return
    floor = 4 if len(scores) * 4 <= B else max(1, B // len(scores))
    assert k.min() >= floor
    assert k.max() <= M


@settings(max_examples=300, deadline=None)
@given(scores=scores_st, M=st.integers(1, 128), B=st.integers(0, 20000))
def test_higher_score_never_gets_fewer_tokens(scores: list[float], M: int, B: int) -> None:
    s = np.asarray(scores)
    k = allocate_tokens(s, tokens_per_segment=M, budget=B)
    order = np.argsort(s, kind="stable")
    for a, b in itertools.pairwise(order):
        if s[b] > s[a]:
            assert k[b] >= k[a]


def test_truncation_keeps_the_head_of_each_segment() -> None:
    memory = torch.arange(3 * 8 * 2, dtype=torch.float32).view(3, 8, 2)
    kept = truncate_memory(memory, np.array([1, 8, 3]))
    assert [t.shape[0] for t in kept] == [1, 8, 3]
    assert torch.equal(kept[2], memory[2, :3])


def test_average_tokens_per_frame_counts_real_frames() -> None:
    assert average_tokens_per_frame([16, 32, 4], [8, 8, 4]) == pytest.approx(52 / 20)
    assert average_tokens_per_frame([16, 32], 8) == pytest.approx(3.0)
