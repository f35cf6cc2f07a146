"""Our model inputs equal the authors' release, value for value (golden fixtures, no release code here).

tests/fixtures/release_goldens.json and release_ata.npz were made once by
tests/fixtures/make_release_goldens.py, which runs the release's own functions (FeiElysia/Tempo at the
commit recorded in the file, transformers 4.57.1, qwen-vl-utils 0.0.14, Pillow) on the inputs of
tests/fixtures/release_inputs.py and on a tiny checkpoint written by `tempo model tiny`:
- frame sizes: `video_grid_thw` of mm_datautils.process_qwen_content (resize_images → fetch_video →
  Qwen3VLProcessor with do_resize=False);
- pixels: sha256 of that function's `pixel_values_videos` (float32) for whole clips;
- prompts: mm_datautils.video_process_with_frame_idx's input ids with the tiny base SVLM's processor;
- sampling: infer.compute_sample_indices, load_video's real_fps, compute_segment_timestamp's tags;
- ATA: vlm_multimodal_processor.adaptive_linear_budget_allocation's counts;
- buffers: the floating buffers of the release's model after its casts (builder.load_pretrained_model,
  then `model.to(bfloat16)`): float32 mode holds these values, as it holds the weights' bfloat16 values;
- memory (release_memory.npz): the release compressor's memory tokens with that dtype chain, then computed
  in float32 (`model.float()`), on release_inputs.MEMORY_CASE;
- answer: infer.py's greedy answer for that case (dynamic compression, budget 8192), computed the same way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from tempo.models import TempoModel
from tempo.models.ata import allocate_tokens
from tempo.models.compressor import build_compressor_inputs
from tempo.models.processor import SegmentVideoProcessor, VideoProcessorConfig, compressor_frame_size
from tempo.models.tempo_family import segment_centre_time
from tempo.models.text import time_tag
from tempo.streaming.sampling import release_sample_indices

from .conftest import make_segment

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GOLDENS = json.loads((FIXTURES / "release_goldens.json").read_text())
ATA = np.load(FIXTURES / "release_ata.npz")


def _inputs_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("release_inputs", FIXTURES / "release_inputs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


INPUTS = _inputs_module()


@pytest.mark.parametrize("row", GOLDENS["frame_sizes"], ids=lambda r: "x".join(map(str, r["source"])))
def test_frame_size_equals_the_release(row: dict) -> None:
    width, height = row["source"]
    assert list(compressor_frame_size(width, height, num_frames=2)) == row["size"]


@pytest.mark.parametrize("row", GOLDENS["pixels"], ids=lambda r: "x".join(map(str, r["source"])))
def test_pixel_values_equal_the_release_bit_for_bit(row: dict) -> None:
    width, height, count = row["source"]
    frames = INPUTS.pattern_frames(width, height, count)
    if count == 1:
        frames = np.concatenate([frames, frames])  # a one-frame window, padded as the release pads it
    values, grid, _ = SegmentVideoProcessor(VideoProcessorConfig()).pixels(frames)
    assert [list(grid)] == row["grid_thw"]
    assert list(values.shape) == row["shape"]
    assert hashlib.sha256(values.numpy().tobytes()).hexdigest() == row["sha256"]


@pytest.mark.parametrize("row", GOLDENS["prompts"], ids=lambda r: f"{r['frames']}f@{r['first_index']}")
def test_compressor_prompt_ids_equal_the_release(row: dict, tiny_model: TempoModel) -> None:
    # The golden ids come from the tiny checkpoint's own tokenizer and chat template: `tempo model tiny`
    # is deterministic, so the checkpoint the tests build is the one the generator read.
    width, height = INPUTS.PROMPT_FRAME_SIZE
    frames = INPUTS.pattern_frames(width, height, row["frames"], seed=row["first_index"])
    fps = row["real_fps"]
    segment = dataclasses.replace(
        make_segment(0, frames=row["frames"], size=(height, width), fps=fps),
        frames=frames,
        first_frame_index=row["first_index"],
        start=row["first_index"] / fps + 0.013,  # a presentation time off the sampling clock: not used
        extra={"sampling": "release", "real_fps": fps},
    )
    inputs = build_compressor_inputs(
        [segment],
        row["query"],
        processor=tiny_model.processor,
        tokenizer=tiny_model.svlm_tokenizer,
        num_memory_tokens=tiny_model.num_memory_tokens,
    )
    ids = inputs.input_ids[0, : int(inputs.valid_lengths[0])].tolist()
    assert tiny_model.svlm_tokenizer.decode(ids, skip_special_tokens=False) == row["text"]
    assert ids == row["input_ids"]


@pytest.mark.parametrize("row", GOLDENS["sampling"], ids=lambda r: f"{r['total']}@{r['fps']}")
def test_sampled_indices_real_fps_and_time_tags_equal_the_release(row: dict) -> None:
    indices, real_fps = release_sample_indices(row["total"], row["duration"])
    assert indices == row["indices"]
    assert real_fps == row["real_fps"]
    segments = [
        dataclasses.replace(make_segment(i), first_frame_index=8 * i, sample_fps=real_fps,
                            extra={"sampling": "release", "real_fps": real_fps})
        for i in range(len(row["time_tags"]))
    ]
    assert [time_tag(segment_centre_time(s, 8)) for s in segments] == row["time_tags"]


def test_the_sampling_goldens_cover_the_frame_cap() -> None:
    durations = [row["duration"] for row in GOLDENS["sampling"]]
    assert max(durations) > 512 and min(durations) < 2  # the 1024 cap and the 4-frame floor both apply
    assert {len(row["indices"]) for row in GOLDENS["sampling"]} >= {4, 1024}


@pytest.mark.parametrize("name", [str(n) for n in ATA["names"]])
def test_token_allocation_equals_the_release(name: str) -> None:
    budget, tokens = ATA[f"{name}/budget_tokens"].tolist()
    counts = allocate_tokens(ATA[f"{name}/scores"], tokens_per_segment=tokens, budget=budget)
    np.testing.assert_array_equal(counts, ATA[f"{name}/counts"])


def test_the_allocation_goldens_hold_ties_and_more_segments_than_budget() -> None:
    names = [str(n) for n in ATA["names"]]
    assert any(n.startswith("ties-") for n in names) and any(n.startswith("over-") for n in names)
    assert (ATA["equal-over/counts"] == 0).all()  # all equal with n > B: ⌊B/n⌋ = 0, unclamped


def test_the_buffer_goldens_cover_both_llms_and_the_vision_tower() -> None:
    names = {row["name"] for row in GOLDENS["buffers"]}
    assert {"model.rotary_emb.inv_freq", "model.vision_tower_aux_list.0.vlm.model.language_model.rotary_emb.inv_freq",
            "model.vision_tower_aux_list.0.vlm.model.visual.rotary_pos_emb.inv_freq"} <= names


@pytest.fixture(scope="module")
def bfloat16_model(tiny_dir: Path) -> TempoModel:
    return TempoModel.load(tiny_dir, dtype="bfloat16")


@pytest.mark.parametrize("row", GOLDENS["buffers"], ids=lambda r: r["name"])
def test_floating_buffers_hold_the_release_values_in_float32_and_bfloat16(
    row: dict, tiny_model: TempoModel, bfloat16_model: TempoModel
) -> None:
    # float32 mode: the release's bfloat16 values computed in float32 — the buffers as the weights.
    ours = dict(tiny_model.network.named_buffers())[row["name"]]
    assert ours.dtype == torch.float32
    assert ours.flatten().tolist() == row["values"]
    ours16 = dict(bfloat16_model.network.named_buffers())[row["name"]]
    assert str(ours16.dtype).removeprefix("torch.") == row["dtype"]
    assert ours16.float().flatten().tolist() == row["values"]


def _memory_case() -> tuple[list, str]:
    """release_inputs.MEMORY_CASE as release-sampled 8-frame segments, and its query."""
    width, height, count, seed, fps, query = INPUTS.MEMORY_CASE
    frames = INPUTS.pattern_frames(width, height, count, seed=seed)
    segments = [
        dataclasses.replace(make_segment(i, frames=8, size=(height, width), fps=fps), frames=frames[8 * i : 8 * i + 8],
                            first_frame_index=8 * i, extra={"sampling": "release", "real_fps": fps})
        for i in range(count // 8)
    ]
    return segments, query


def test_float32_memory_tokens_equal_the_release_computed_in_float32(tiny_model: TempoModel) -> None:
    # The release's bfloat16 values (weights and buffers) computed in float32 on the CPU, as our float32
    # mode computes: equal to float32 rounding (≈1e-6 here; unrounded buffers gave ≈1e-3).
    expected = np.load(FIXTURES / "release_memory.npz")["memory"]
    segments, query = _memory_case()
    _, memory = tiny_model.compress(segments, query)
    assert memory.shape == expected.shape
    assert float(np.abs(memory.numpy() - expected).max()) < 1e-5


def test_float32_greedy_answer_equals_the_release_computed_in_float32(tiny_dir: Path) -> None:
    from tempo.engine.reference import answer_video
    from tempo.models import TempoInferenceConfig
    from tempo.settings import AskSettings

    golden = GOLDENS["answer"]
    model = TempoModel.load(tiny_dir, dtype="float32", config=TempoInferenceConfig(context_limit=16384))
    assert model.tokenizer.decode(golden["ids"], skip_special_tokens=True) == golden["text"]
    segments, query = _memory_case()
    settings = AskSettings(budget=golden["budget"], max_new_tokens=golden["max_new_tokens"])
    assert answer_video(model, segments, query, settings=settings)["answer"] == golden["text"].strip()
