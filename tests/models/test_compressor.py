"""The SVLM compressor: memory-token placement, relevance position, batching and determinism."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from tempo.models import GENERIC_QUERY, TempoInferenceConfig, TempoModel
from tempo.models.compressor import build_compressor_inputs, segment_frame_times
from tempo.models.modeling_tempo import release_weight_values
from tempo.models.processor import SegmentVideoProcessor, VideoProcessorConfig, compressor_frame_size, smart_resize
from transformers import Qwen3VLForConditionalGeneration

from .conftest import make_segment


def _inputs(model: TempoModel, segs, query: str):
    return build_compressor_inputs(
        segs,
        query,
        processor=model.processor,
        tokenizer=model.svlm_tokenizer,
        num_memory_tokens=model.num_memory_tokens,
    )


def _hf_forward(model: TempoModel, seg, query: str, with_memory: bool) -> torch.Tensor:
    """transformers' own Qwen3VLModel.forward on one unpadded sequence (+ the M memory embeddings)."""
    vl = model.network.compressor.vlm.model
    inp = _inputs(model, [seg], query)
    n = int(inp.valid_lengths[0])
    m = model.num_memory_tokens if with_memory else 0
    ids = inp.input_ids[:, : n + m]
    memory = model.network.compressor.compression_tokens[0]

    def put_memory(_module, _args, out):  # embeddings of the M slots are the learned memory tokens
        out = out.clone()
        out[0, n : n + m] = memory[:m]
        return out

    hook = vl.language_model.embed_tokens.register_forward_hook(put_memory)
    try:
        with torch.inference_mode():
            out = vl(
                input_ids=ids,
                pixel_values_videos=model.processor.normalize(inp.pixel_values),
                video_grid_thw=inp.grid_thw,
                mm_token_type_ids=(ids == model.network.compressor.config.video_token_id).int() * 2,
            )
    finally:
        hook.remove()
    vl.rope_deltas = None
    return out.last_hidden_state[0]  # (n + m, D)


def test_memory_tokens_are_the_hidden_states_right_after_the_valid_tokens(tiny_model: TempoModel) -> None:
    seg = make_segment(0)
    _, memory = tiny_model.compress([seg], "Is there a dog?")
    n = int(_inputs(tiny_model, [seg], "Is there a dog?").valid_lengths[0])
    reference = _hf_forward(tiny_model, seg, "Is there a dog?", with_memory=True)[n:]
    torch.testing.assert_close(memory[0], reference, rtol=1e-4, atol=1e-5)


def test_relevance_reads_the_position_before_the_first_memory_token(tiny_model: TempoModel, tiny_dir) -> None:
    # The base SVLM's own Yes/No logits at the last prompt token give the same score end to end.
    seg = make_segment(1)
    scores, _ = tiny_model.compress([seg], "Is there a dog?")
    base = Qwen3VLForConditionalGeneration.from_pretrained(tiny_dir / "qwen3-vl-base").eval()
    # w_Yes − w_No: the release loads the base LM head straight in bfloat16 and subtracts there.
    head = base.lm_head.weight.detach().to(torch.bfloat16)
    direction = (head[tiny_model.relevance.yes_id] - head[tiny_model.relevance.no_id]).float()
    with torch.no_grad():  # the body as the compressor holds it (float16 load, then bfloat16)
        for param in base.parameters():
            param.copy_(release_weight_values(param))
    inp = _inputs(tiny_model, [seg], "Is there a dog?")
    n = int(inp.valid_lengths[0])
    ids = inp.input_ids[:, :n]
    with torch.inference_mode():
        h = base.model(
            input_ids=ids,
            pixel_values_videos=tiny_model.processor.normalize(inp.pixel_values),
            video_grid_thw=inp.grid_thw,
            mm_token_type_ids=(ids == base.config.video_token_id).int() * 2,
        ).last_hidden_state[0, -1]
    assert scores[0] == pytest.approx(torch.sigmoid(h.float() @ direction).item(), abs=1e-5)


def test_memory_tokens_do_not_change_the_prompt_states(tiny_model: TempoModel) -> None:
    seg = make_segment(2)
    with_mem = _hf_forward(tiny_model, seg, "red car", with_memory=True)
    without = _hf_forward(tiny_model, seg, "red car", with_memory=False)
    torch.testing.assert_close(with_mem[: without.shape[0]], without, rtol=1e-4, atol=1e-5)


def test_batch_equals_one_at_a_time(tiny_model: TempoModel) -> None:
    # Different lengths in one batch (a 1-frame window, 5 frames, 8 frames, another resolution) force padding.
    segs = [
        make_segment(0),
        make_segment(1, frames=1),
        make_segment(2, frames=5),
        make_segment(3, size=(64, 160)),
    ]
    scores, memory = tiny_model.compress(segs, "What happens?", batch_size=4)
    for i, seg in enumerate(segs):
        s1, m1 = tiny_model.compress([seg], "What happens?", batch_size=1)
        assert scores[i] == pytest.approx(s1[0], abs=1e-5)
        torch.testing.assert_close(memory[i], m1[0], rtol=1e-4, atol=1e-5)


def test_prefetching_batches_gives_the_same_results(tiny_dir, segments) -> None:
    segs = segments(5)
    plain = TempoModel.load(tiny_dir, config=TempoInferenceConfig(prefetch=False))
    ahead = TempoModel.load(tiny_dir, config=TempoInferenceConfig(prefetch=True))
    a, b = plain.compress(segs, "dog", batch_size=2), ahead.compress(segs, "dog", batch_size=2)
    assert np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_outputs_have_the_documented_shapes(tiny_model: TempoModel, segments) -> None:
    scores, memory = tiny_model.compress(segments(3), GENERIC_QUERY)
    assert scores.shape == (3,) and scores.dtype == np.float32
    assert ((scores > 0) & (scores < 1)).all()
    assert memory.shape == (3, tiny_model.num_memory_tokens, tiny_model.memory_dim)


def test_query_changes_scores_and_memory(tiny_model: TempoModel) -> None:
    seg = make_segment(0)
    s1, m1 = tiny_model.compress([seg], "a dog")
    s2, m2 = tiny_model.compress([seg], "the red truck on the left")
    assert s1[0] != s2[0]
    assert not torch.allclose(m1, m2)


def test_compression_is_deterministic(tiny_model: TempoModel, segments) -> None:
    segs = segments(2)
    a = tiny_model.compress(segs, "dog")
    b = tiny_model.compress(segs, "dog")
    assert np.array_equal(a[0], b[0])
    assert torch.equal(a[1], b[1])


def test_one_frame_window_is_padded_one_sampling_step_later() -> None:
    seg = make_segment(3, frames=1)  # first frame at 12 s, sampled at 2 fps
    assert segment_frame_times(seg).tolist() == [12.0, 12.5]


def test_odd_clip_is_padded_with_the_next_sampling_times() -> None:
    # qwen-vl-utils pads a 7-frame clip with a copy of its last frame, whose index (and time) is the next.
    seg = make_segment(2, frames=7)
    assert segment_frame_times(seg).tolist() == [8.0 + j / 2 for j in range(8)]


def test_release_sampled_segments_use_the_sample_index_over_real_fps() -> None:
    # The release's clock: absolute sample index / real_fps, even where the frame's own pts differs.
    seg = dataclasses.replace(make_segment(2), first_frame_index=16, sample_fps=1.7, start=9.31,
                              extra={"sampling": "release", "real_fps": 1.7})
    assert segment_frame_times(seg) == pytest.approx([(16 + j) / 1.7 for j in range(8)])


def test_processor_writes_one_time_tag_per_temporal_patch() -> None:
    proc = SegmentVideoProcessor(VideoProcessorConfig())
    seg = make_segment(0, frames=7, size=(96, 128))
    clip = proc(seg.frames_for_model(), segment_frame_times(seg))
    assert clip.grid_thw[0] == 4  # 7 frames padded to 8, two per temporal patch
    assert clip.patch_times == (0.25, 1.25, 2.25, 3.25)  # the padding frame sits at the next index, 3.5 s
    per_patch = clip.grid_thw[1] * clip.grid_thw[2] // 4
    assert clip.prompt.startswith(
        "<0.2 seconds><|vision_start|>" + "<|video_pad|>" * per_patch + "<|vision_end|>"
    )
    assert clip.prompt.count("<|video_pad|>") == 4 * per_patch
    assert clip.pixel_values.shape == (4 * clip.grid_thw[1] * clip.grid_thw[2], 3 * 2 * 16 * 16)


def test_frame_size_follows_the_release_chain() -> None:
    # 720p 16:9: 512×288 after the first step, 288/64 = 4.5 rounds (half to even) to 4 → 512×256.
    assert compressor_frame_size(1280, 720) == (512, 256)
    assert compressor_frame_size(640, 480) == (512, 384)
    # Small frames grow to the per-frame minimum of 128 vision tokens (128·32² pixels).
    w, h = compressor_frame_size(128, 96)
    assert (w, h) == (384, 384) and w * h >= 128 * 32 * 32


def test_qwen_vl_utils_smart_resize_rounds_half_to_even() -> None:
    assert smart_resize(288, 512, 64, min_pixels=4 * 64 * 64, max_pixels=16384 * 64 * 64) == (256, 512)
    assert smart_resize(352, 512, 64, min_pixels=4 * 64 * 64, max_pixels=16384 * 64 * 64) == (384, 512)
    h, w = smart_resize(2000, 3000, 32, min_pixels=128 * 32 * 32, max_pixels=768 * 32 * 32)
    assert h % 32 == 0 and w % 32 == 0 and h * w <= 768 * 32 * 32


def test_processor_normalises_to_minus_one_one() -> None:
    proc = SegmentVideoProcessor(VideoProcessorConfig())
    frames = np.zeros((2, 384, 384, 3), dtype=np.uint8)  # already at the chain's size: no resize
    frames[1] = 255
    patches, grid, _ = proc.pixels(frames)
    assert grid == (1, 24, 24)
    x = patches.view(24 * 24, 3, 2, 16, 16)  # (patch, C, tp, p, p)
    assert torch.all(x[:, :, 0] == -1.0) and torch.all(x[:, :, 1] == 1.0)


def test_svlm_prompt_times_are_stream_time(tiny_model: TempoModel) -> None:
    seg = make_segment(5)  # starts at 20 s
    ids = _inputs(tiny_model, [seg], "dog").input_ids[0].tolist()
    text = tiny_model.svlm_tokenizer.decode(ids, skip_special_tokens=False)
    assert "<20.2 seconds><|vision_start|>" in text and "<23.2 seconds>" in text and "<0.2 seconds>" not in text


def test_svlm_prompt_is_the_release_chat(tiny_model: TempoModel) -> None:
    ids = _inputs(tiny_model, [make_segment(0)], "Is there a dog?").input_ids[0].tolist()
    text = tiny_model.svlm_tokenizer.decode(ids, skip_special_tokens=False)
    assert text.startswith(
        "<|im_start|>system\nYou are a query-conditioned visual compressor. Store in the provided memory "
        "tokens the minimal visual information needed to answer the Query. Ignore irrelevant details. Now, "
        "before compressing, answer exactly 'Yes' or 'No': is this segment relevant to the Query?<|im_end|>\n"
        "<|im_start|>user\n<0.2 seconds><|vision_start|>"
    )
    assert "<|vision_end|>\nQuery:\nIs there a dog?<|im_end|>\n<|im_start|>assistant\n<|endoftext|>" in text
