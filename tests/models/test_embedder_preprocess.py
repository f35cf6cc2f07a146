"""SigLIP frame preprocessing is transformers' SigLIP image processor configured by the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tempo.models.embedder import SegmentEmbedder, write_tiny_siglip


@pytest.fixture(scope="module")
def siglip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_siglip(tmp_path_factory.mktemp("siglip") / "siglip", seed=0)


def test_frames_are_resized_and_normalised_as_preprocessor_config_says(siglip_dir: Path) -> None:
    embedder = SegmentEmbedder.from_pretrained(siglip_dir)
    frames = np.zeros((3, 40, 72, 3), dtype=np.uint8)
    frames[1] = 255
    frames[2, :, :, 0] = 255
    pixels = embedder._pixels(frames)
    assert pixels.shape == (3, 3, 32, 32) and pixels.dtype == torch.float32  # size from the config
    assert torch.allclose(pixels[0], torch.full_like(pixels[0], -1.0))  # (0/255 − 0.5) / 0.5
    assert torch.allclose(pixels[1], torch.full_like(pixels[1], 1.0))
    assert torch.allclose(pixels[2, 0], torch.ones(32, 32)) and torch.allclose(pixels[2, 1], -torch.ones(32, 32))


def test_bicubic_resize_is_pillows(siglip_dir: Path) -> None:
    from PIL import Image

    embedder = SegmentEmbedder.from_pretrained(siglip_dir)
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)
    resized = np.asarray(Image.fromarray(frame).resize((32, 32), Image.Resampling.BICUBIC), dtype=np.float32)
    expected = torch.from_numpy((resized / 255.0 - 0.5) / 0.5).permute(2, 0, 1)
    assert torch.allclose(embedder._pixels(frame[None])[0], expected, atol=1e-5)


def test_another_size_and_mean_in_the_config_are_followed(siglip_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "siglip48"
    shutil.copytree(siglip_dir, copy)
    cfg = json.loads((copy / "preprocessor_config.json").read_text())
    cfg.update(size={"height": 48, "width": 48}, image_mean=[0.0, 0.0, 0.0], image_std=[1.0, 1.0, 1.0])
    (copy / "preprocessor_config.json").write_text(json.dumps(cfg))
    pixels = SegmentEmbedder.from_pretrained(copy)._pixels(np.full((1, 20, 30, 3), 51, dtype=np.uint8))
    assert pixels.shape == (1, 3, 48, 48) and torch.allclose(pixels, torch.full_like(pixels, 0.2))
