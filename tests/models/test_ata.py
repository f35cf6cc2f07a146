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
    """DESIGN §2 written as a plain loop, to check the vectorised version against."""
    n = len(scores)
    m = min(m, M)
    if n * m > B:
        m = max(1, B // n)
    lo, hi = min(scores), max(scores)
    if hi - lo < 1e-8:
        k = [min(M, B // n)] * n
    else:
        u = [(s - lo) / (hi - lo) for s in scores]
        ideal = [m + math.floor(x * (M - m)) for x in u]
        if sum(ideal) <= B:
            k = ideal
        else:
            extra = B - n * m
            w = [x / sum(u) for x in u]
            e = [math.floor(x * extra) for x in w]
            left = extra - sum(e)
            for i in sorted(range(n), key=lambda i: -w[i])[:left]:
                e[i] += 1
            k = [m + x for x in e]
    return [min(max(x, m), M) for x in k]


scores_st = st.lists(st.floats(min_value=0.0, max_value=1.0, allow_nan=False), min_size=1, max_size=300)


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
@given(scores=scores_st, M=st.integers(1, 128), B=st.integers(0, 20000))
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
@given(scores=scores_st, M=st.integers(1, 128), B=st.integers(1, 20000))
def test_every_count_lies_between_floor_and_M(scores: list[float], M: int, B: int) -> None:
    k = allocate_tokens(scores, tokens_per_segment=M, budget=B)
    floor = min(4, M) if len(scores) * min(4, M) <= B else max(1, B // len(scores))
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
