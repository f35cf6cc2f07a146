"""Reference outputs for test_processor_parity.py, from qwen-vl-utils 0.0.14 and transformers' processor.

Run by the test in a process of its own: torchvision (which both import) is installed outside the
venv's site-packages, in `<venv>/parity-site` (see the Makefile), because importing PyPI's CUDA build
beside the CPU torch needs tests/fixtures/torchvision_cpu.py first, and in the test process itself
transformers would already have decided that torchvision is missing or broken.

    python tests/models/parity_worker.py OUT.npz BASE_SVLM_DIR
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# (width, height, frames, first sample index, fps): sources already at most 512 px wide (the release's
# first resize is pinned by the golden fixtures), odd and even clips, small frames that grow.
CASES = [(512, 288, 8, 0, 2.0), (320, 240, 7, 24, 2.0), (128, 96, 2, 8, 1.75), (500, 300, 5, 40, 0.5),
         (37, 301, 3, 1016, 1.998)]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, FIXTURES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(out: Path, base_dir: Path) -> None:
    site = Path(sys.prefix) / "parity-site"
    if site.is_dir():
        sys.path.insert(0, str(site))
    if _load("torchvision_cpu").import_torchvision() is None:
        raise SystemExit(f"torchvision is not installed (run `make venv`, which puts it in {site})")
    import torch
    from PIL import Image
    from qwen_vl_utils.vision_process import fetch_video
    from transformers import AutoProcessor

    inputs = _load("release_inputs")
    processor = AutoProcessor.from_pretrained(str(base_dir))
    arrays: dict[str, np.ndarray] = {}
    for i, (width, height, count, first, fps) in enumerate(CASES):
        frames = inputs.pattern_frames(width, height, count, seed=i)
        # The release's call (mm_datautils.video_process_with_frame_idx → process_vision_info).
        video, metadata = fetch_video(
            {"type": "video", "video": [Image.fromarray(f) for f in frames], "sample_fps": fps},
            image_patch_size=16,
            return_video_metadata=True,
        )
        metadata["frames_indices"] = [f + first for f in metadata["frames_indices"]]
        out_hf = processor(
            text=["<|video_pad|>"],  # the video placeholder alone: expanded with its time tags and vision tags
            videos=[video],
            video_metadata=[metadata],
            do_sample_frames=False,
            do_resize=False,
            return_tensors="pt",
        )
        arrays[f"{i}/frames"] = video.round().to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (T', H, W, 3)
        arrays[f"{i}/pixel_values"] = out_hf["pixel_values_videos"].to(torch.float32).numpy()
        arrays[f"{i}/grid_thw"] = out_hf["video_grid_thw"][0].numpy()
        arrays[f"{i}/prompt"] = np.array(processor.tokenizer.decode(out_hf["input_ids"][0]))
    np.savez(out, **arrays)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
