"""Our Qwen3-VL video path against transformers' own processor, wherever torchvision can be imported.

transformers' video processors require torchvision (and Pillow); the CPU build of torch used in CI
has no matching torchvision on PyPI, so there these tests are skipped and the tests in
test_compressor.py cover the behaviour instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("PIL")
pytest.importorskip("torchvision")

from tempo.models.processor import SegmentVideoProcessor, VideoProcessorConfig
from transformers import AutoProcessor, Qwen3VLVideoProcessor
from transformers.video_utils import VideoMetadata

RELEASED = {
    "size": {"shortest_edge": 4096, "longest_edge": 25165824},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
}
CLIPS = [(8, 96, 128), (7, 288, 512), (2, 100, 150), (8, 720, 1280), (3, 40, 300)]


def _frames(t: int, h: int, w: int) -> np.ndarray:
    return np.random.default_rng(t * h + w).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("budget", ["released", "tiny"])
def test_pixels_and_grid_match_transformers(clip: tuple[int, int, int], budget: str) -> None:
    raw = RELEASED if budget == "released" else dict(RELEASED, size={"shortest_edge": 2048, "longest_edge": 32768})
    frames = _frames(*clip)
    hf = Qwen3VLVideoProcessor(**raw)(
        videos=[frames],
        do_sample_frames=False,
        cap_pixels_per_frame=False,
        return_tensors="pt",
        video_metadata=[VideoMetadata(total_num_frames=clip[0], fps=2.0, frames_indices=list(range(clip[0])))],
    )
    ours, grid, _ = SegmentVideoProcessor(VideoProcessorConfig.from_dict(raw)).pixels(frames)
    assert list(grid) == hf["video_grid_thw"][0].tolist()
    torch.testing.assert_close(ours, hf["pixel_values_videos"], rtol=0, atol=0)  # bit for bit


def test_prompt_expansion_matches_transformers(tiny_dir: Path) -> None:
    processor = AutoProcessor.from_pretrained(tiny_dir / "qwen3-vl-base")  # the tiny base dir is a full HF dir
    frames = _frames(7, 96, 128)
    times = np.arange(7) / 2.0
    out = processor(
        text=["<|video_pad|>"],
        videos=[frames],
        do_sample_frames=False,
        cap_pixels_per_frame=False,
        video_metadata=[VideoMetadata(total_num_frames=7, fps=2.0, frames_indices=list(range(7)))],
        return_tensors="pt",
    )
    processor_ours = SegmentVideoProcessor.from_dir(tiny_dir / "qwen3-vl-base")
    ours = processor_ours(frames, times)
    assert processor.tokenizer.decode(out["input_ids"][0]) == ours.prompt
    torch.testing.assert_close(processor_ours.normalize(ours.pixel_values), out["pixel_values_videos"], rtol=0, atol=0)
