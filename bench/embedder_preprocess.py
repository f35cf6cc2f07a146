"""SigLIP frame preprocessing: transformers' image processor (what the embedder uses) against a plain
torch bicubic resize of the same frames, and the whole embedder on the tiny SigLIP.

    python bench/embedder_preprocess.py [--frames 64] [--height 288] [--width 512] [--runs 5] [--json]

The two preprocessing paths run alternately `--runs` times, so a busy machine slows both alike; we
print both medians, their ratio (torch time / processor time: above 1 means the processor is faster)
and frames per second of the full `embed_frames` (preprocessing + tiny image tower).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tempo.models.embedder import SegmentEmbedder, write_tiny_siglip


def torch_resize(frames: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """The baseline: (N, H, W, 3) uint8 → (N, 3, h, w) with torch's antialiased bicubic, then normalised."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 255) / 255.0
    return (x - 0.5) / 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64, help="frames per call (one embedder batch)")
    parser.add_argument("--height", type=int, default=288, help="source frame height in pixels")
    parser.add_argument("--width", type=int, default=512, help="source frame width in pixels")
    parser.add_argument("--size", type=int, default=224, help="SigLIP input side in pixels (224 for siglip-base)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (args.frames, args.height, args.width, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        directory = write_tiny_siglip(Path(tmp) / "siglip")
        tiny = SegmentEmbedder.from_pretrained(directory)  # its own 32² input, for embed_frames
        cfg = json.loads((directory / "preprocessor_config.json").read_text())
        cfg["size"] = {"height": args.size, "width": args.size}
        (directory / "preprocessor_config.json").write_text(json.dumps(cfg))
        embedder = SegmentEmbedder.from_pretrained(directory)
        processor_s, torch_s, embed_s = [], [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            embedder._pixels(frames)
            processor_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            torch_resize(frames, (args.size, args.size))
            torch_s.append(time.perf_counter() - t0)
        for _ in range(args.runs):
            t0 = time.perf_counter()
            tiny.embed_frames(frames)
            embed_s.append(time.perf_counter() - t0)
    result = {
        "frames": args.frames,
        "processor_s": statistics.median(processor_s),
        "torch_s": statistics.median(torch_s),
        "ratio_torch_over_processor": statistics.median(torch_s) / statistics.median(processor_s),
        "processor_frames_per_s": args.frames / statistics.median(processor_s),
        "embed_frames_per_s": args.frames / statistics.median(embed_s),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.frames} frames {args.height}×{args.width} → {args.size}²")
    rate = result["processor_frames_per_s"]
    print(f"  SigLIP image processor  {result['processor_s'] * 1000:8.1f} ms  ({rate:.0f} frames/s)")
    print(f"  torch bicubic resize    {result['torch_s'] * 1000:8.1f} ms")
    print(f"  ratio torch / processor {result['ratio_torch_over_processor']:.2f}")
    print(f"  embed_frames (tiny)     {result['embed_frames_per_s']:.0f} frames/s")


if __name__ == "__main__":
    main()
