"""Monitoring rules scored in the generic pass equal the reference single-prompt scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tempo.models import GENERIC_QUERY, TempoModel
from tempo.models.compressor import build_compressor_inputs

from .conftest import make_segment

RULES = ["a person climbs the fence", "Is there a dog?", GENERIC_QUERY, "x", "a red truck stops at the gate"]


def _mixed_segments():
    # Different frame counts and time tags of different token lengths give different prefix lengths.
    return [
        make_segment(0),
        make_segment(1, seed=3),
        make_segment(2, frames=1),
        make_segment(30, start=1234.5),
        make_segment(4, frames=5),
    ]


def test_each_rule_score_equals_the_reference_pass_with_that_rule_as_the_query(tiny_model: TempoModel) -> None:
    segs = _mixed_segments()
    _, _, rule_scores = tiny_model.compress_with_rules(segs, GENERIC_QUERY, RULES, batch_size=3)
    assert rule_scores.shape == (len(segs), len(RULES))
    for j, text in enumerate(RULES):
        reference, _ = tiny_model.compress(segs, text, batch_size=1)
        np.testing.assert_allclose(rule_scores[:, j], reference, rtol=0, atol=2e-6)
    # Rules are told apart: the scores are not all one value.
    assert np.ptp(rule_scores) > 1e-4


def test_the_generic_outputs_are_unchanged_by_the_rules(tiny_model: TempoModel) -> None:
    segs = _mixed_segments()
    scores, memory = tiny_model.compress(segs, GENERIC_QUERY, batch_size=3)
    with_rules, memory_rules, _ = tiny_model.compress_with_rules(segs, GENERIC_QUERY, RULES[:2], batch_size=3)
    np.testing.assert_array_equal(with_rules, scores)
    torch.testing.assert_close(memory_rules, memory, rtol=0, atol=0)


def test_rule_prompts_share_the_generic_prompt_up_to_the_query(tiny_model: TempoModel) -> None:
    # The shared prefix (system + video) is most of the prompt: that is what a rule does not pay for.
    inp = build_compressor_inputs(
        [make_segment(0)],
        GENERIC_QUERY,
        processor=tiny_model.processor,
        tokenizer=tiny_model.svlm_tokenizer,
        num_memory_tokens=tiny_model.num_memory_tokens,
        extra_queries=RULES,
    )
    generic = inp.input_ids[0, : int(inp.valid_lengths[0])].tolist()
    video_id = tiny_model.network.compressor.config.video_token_id
    last_video = max(i for i, t in enumerate(generic) if t == video_id)
    for ids in inp.extra_ids[0]:
        shared = next((i for i, (a, b) in enumerate(zip(generic, ids, strict=False)) if a != b), len(ids))
        assert shared > last_video
        assert len(ids) - shared < 0.25 * len(ids)


def test_no_rules_gives_an_empty_score_matrix(tiny_model: TempoModel) -> None:
    _, _, rule_scores = tiny_model.compress_with_rules([make_segment(0)], GENERIC_QUERY, [])
    assert rule_scores.shape == (1, 0)


@pytest.mark.parametrize("max_rows", [1, 4])
def test_chunked_rule_rows_give_the_same_scores(tiny_model: TempoModel, max_rows: int) -> None:
    segs = _mixed_segments()[:3]
    _, _, full = tiny_model.compress_with_rules(segs, GENERIC_QUERY, RULES)
    compressor = tiny_model.network.compressor
    original = compressor.score_queries
    try:
        compressor.score_queries = lambda cache, inputs: original(cache, inputs, max_rows=max_rows)  # type: ignore[method-assign]
        _, _, chunked = tiny_model.compress_with_rules(segs, GENERIC_QUERY, RULES)
    finally:
        del compressor.score_queries
    np.testing.assert_allclose(chunked, full, rtol=0, atol=1e-6)
