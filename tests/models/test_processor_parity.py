"""Our compressor input against the release's frame pipeline run live: qwen-vl-utils 0.0.14's `fetch_video`
(the release's call) and transformers' Qwen3VLProcessor with `do_resize=False`, bit for bit.

The reference side runs in tests/models/parity_worker.py, a process of its own, because it needs
torchvision, which the Makefile installs outside the venv's site-packages (PyPI's torchvision for
torch 2.13 is a CUDA build; see tests/fixtures/torchvision_cpu.py). These tests never skip: without
torchvision they fail, saying how to install it. The release's first resize step (PIL, ≤ 512 px) and
everything the release's own code adds are pinned by test_release_goldens.py.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tempo.models import TempoModel
from tempo.models.compressor import segment_frame_times
from tempo.models.processor import compressor_frames

from .conftest import make_segment

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("parity_worker", HERE / "parity_worker.py")
assert _spec is not None and _spec.loader is not None
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)
_inputs_spec = importlib.util.spec_from_file_location("release_inputs", worker.FIXTURES / "release_inputs.py")
assert _inputs_spec is not None and _inputs_spec.loader is not None
release_inputs = importlib.util.module_from_spec(_inputs_spec)
_inputs_spec.loader.exec_module(release_inputs)


@pytest.fixture(scope="module")
def reference(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    out = tmp_path_factory.mktemp("parity") / "reference.npz"
    run = subprocess.run(
        [sys.executable, str(HERE / "parity_worker.py"), str(out), str(tiny_dir / "qwen3-vl-base")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, f"the reference worker failed:\n{run.stderr[-3000:]}"
    return dict(np.load(out))


def _case(i: int) -> tuple[np.ndarray, int, float]:
    width, height, count, first, fps = worker.CASES[i]
    return release_inputs.pattern_frames(width, height, count, seed=i), first, fps


@pytest.mark.parametrize("i", range(len(worker.CASES)))
def test_frames_equal_qwen_vl_utils_fetch_video(i: int, reference: dict[str, np.ndarray]) -> None:
    frames, _, _ = _case(i)
    ours = compressor_frames(frames)
    theirs = reference[f"{i}/frames"]
    # fetch_video pads an odd clip with its last frame; the processor's patchify does the same for ours.
    assert ours.shape[1:] == theirs.shape[1:]
    np.testing.assert_array_equal(ours, theirs[: ours.shape[0]])


@pytest.mark.parametrize("i", range(len(worker.CASES)))
def test_pixel_values_grid_and_prompt_equal_transformers(
    i: int, reference: dict[str, np.ndarray], tiny_model: TempoModel
) -> None:
    frames, first, fps = _case(i)
    segment = dataclasses.replace(
        make_segment(0, frames=frames.shape[0], size=frames.shape[1:3], fps=fps),
        frames=frames,
        first_frame_index=first,
        extra={"sampling": "release", "real_fps": fps},
    )
    clip = tiny_model.processor(segment.frames_for_model(), segment_frame_times(segment))
    assert list(clip.grid_thw) == reference[f"{i}/grid_thw"].tolist()
    torch.testing.assert_close(
        tiny_model.processor.normalize(clip.pixel_values), torch.from_numpy(reference[f"{i}/pixel_values"]),
        rtol=0, atol=0,
    )
    assert clip.prompt == str(reference[f"{i}/prompt"])
