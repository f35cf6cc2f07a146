"""The Qwen3-VL video path for already-sampled segments: pixels → patches, grid and prompt text.

This reproduces, step for step, what transformers' `Qwen3VLVideoProcessor` + `Qwen3VLProcessor` do
to a pre-sampled clip (`do_sample_frames=False`), configured from the model's own
`video_preprocessor_config.json`:

1. `smart_resize` picks the output size: multiples of patch_size × merge_size within the
   [shortest_edge, longest_edge] pixel budget of the whole clip (transformers' rule, restated here
   because its module cannot even be imported without Pillow);
2. bicubic, antialiased resize (the kernel torchvision's `resize` runs: native uint8 on CPU);
3. fused rescale + normalise ((x − 255·mean) / (255·std), float32);
4. patchify: pad the clip to a multiple of the temporal patch by repeating the last frame, then
   flatten into (grid_t·grid_h·grid_w, C·tp·p·p) rows in the vision tower's merge order;
5. prompt: per temporal patch `<{t:.1f} seconds><|vision_start|><|video_pad|>×n<|vision_end|>`,
   t the mean time of the patch's first and last frame.

Why not call the transformers class: its video processors require torchvision, and the only
torchvision wheel on PyPI for torch 2.13 (0.28.0) links CUDA libraries, so it cannot load next to
the CPU build of torch used here. The test-suite compares this class with transformers' processor
wherever torchvision is importable.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

VIDEO_PROCESSOR_FILE = "video_preprocessor_config.json"
IMAGE_PROCESSOR_FILE = "preprocessor_config.json"

VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
VIDEO_PAD = "<|video_pad|>"


def smart_resize(
    num_frames: int,
    height: int,
    width: int,
    temporal_factor: int = 2,
    factor: int = 32,
    min_pixels: int = 128 * 32 * 32,
    max_pixels: int = 32 * 32 * 768,
) -> tuple[int, int]:
    """Qwen3-VL's output (height, width): sides rounded to `factor`, T·H·W kept within [min, max] pixels."""
    if num_frames < temporal_factor:
        raise ValueError(f"a clip needs at least {temporal_factor} frames, got {num_frames}")
    if height < factor or width < factor:
        scale = max(factor / height, factor / width)
        height, width = int(height * scale), int(width * scale)
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio {max(height, width) / min(height, width):.0f} is above 200")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    t_bar = round(num_frames / temporal_factor) * temporal_factor
    if t_bar * h_bar * w_bar > max_pixels:
        beta = math.sqrt((num_frames * height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif t_bar * h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (num_frames * height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True)
class VideoProcessorConfig:
    """The fields of a Qwen3-VL `video_preprocessor_config.json` that shape the vision input."""

    # Defaults are transformers' Qwen3VLVideoProcessor class defaults.
    patch_size: int = 16
    temporal_patch_size: int = 2
    merge_size: int = 2
    min_pixels: int = 128 * 32 * 32  # size.shortest_edge: over the whole clip (T·H·W)
    max_pixels: int = 32 * 32 * 768  # size.longest_edge
    image_mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    image_std: tuple[float, ...] = (0.5, 0.5, 0.5)
    rescale_factor: float = 1 / 255
    do_resize: bool = True
    do_rescale: bool = True
    do_normalize: bool = True
    # transformers' per-frame pixel cap (off unless the config turns it on, as in the release).
    cap_pixels_per_frame: bool = False
    max_video_tokens: int = 768
    raw: dict[str, object] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dir(cls, directory: str | Path) -> VideoProcessorConfig:
        """Read `video_preprocessor_config.json` (else `preprocessor_config.json`) from a model directory."""
        directory = Path(directory)
        for name in (VIDEO_PROCESSOR_FILE, IMAGE_PROCESSOR_FILE):
            path = directory / name
            if path.is_file():
                return cls.from_dict(json.loads(path.read_text()))
        raise FileNotFoundError(f"{directory} has neither {VIDEO_PROCESSOR_FILE} nor {IMAGE_PROCESSOR_FILE}")

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> VideoProcessorConfig:
        d = cls()
        size = raw.get("size") or {}
        assert isinstance(size, dict)
        return cls(
            patch_size=int(raw.get("patch_size", d.patch_size)),  # type: ignore[arg-type]
            temporal_patch_size=int(raw.get("temporal_patch_size", d.temporal_patch_size)),  # type: ignore[arg-type]
            merge_size=int(raw.get("merge_size", d.merge_size)),  # type: ignore[arg-type]
            min_pixels=int(size.get("shortest_edge", raw.get("min_pixels", d.min_pixels))),
            max_pixels=int(size.get("longest_edge", raw.get("max_pixels", d.max_pixels))),
            image_mean=tuple(raw.get("image_mean", d.image_mean)),  # type: ignore[arg-type]
            image_std=tuple(raw.get("image_std", d.image_std)),  # type: ignore[arg-type]
            rescale_factor=float(raw.get("rescale_factor", d.rescale_factor)),  # type: ignore[arg-type]
            do_resize=bool(raw.get("do_resize", True)),
            do_rescale=bool(raw.get("do_rescale", True)),
            do_normalize=bool(raw.get("do_normalize", True)),
            cap_pixels_per_frame=bool(raw.get("cap_pixels_per_frame") or False),
            max_video_tokens=int(raw.get("max_video_tokens", d.max_video_tokens)),  # type: ignore[arg-type]
            raw=dict(raw),
        )


@dataclass(frozen=True)
class ProcessedClip:
    """One segment ready for the SVLM."""

    pixel_values: torch.Tensor  # (grid_t·grid_h·grid_w, C·tp·p·p) uint8: `SegmentVideoProcessor.normalize` next
    grid_thw: tuple[int, int, int]  # patches along time, height, width (before spatial merge)
    prompt: str  # the video's text: time tags and vision placeholders
    patch_times: tuple[float, ...]  # (grid_t,) seconds written into the prompt
    resized_hw: tuple[int, int]

    @property
    def num_video_tokens(self) -> int:
        t, h, w = self.grid_thw
        return t * h * w  # before merge; see SegmentVideoProcessor.tokens_per_clip


class SegmentVideoProcessor:
    """Qwen3-VL video preprocessing for one pre-sampled segment (see the module docstring)."""

    def __init__(self, config: VideoProcessorConfig) -> None:
        self.config = config

    @classmethod
    def from_dir(cls, directory: str | Path) -> SegmentVideoProcessor:
        return cls(VideoProcessorConfig.from_dir(directory))

    def output_size(self, num_frames: int, height: int, width: int) -> tuple[int, int]:
        """(height, width) of the resized clip, as transformers' `Qwen3VLVideoProcessor.resize` picks it."""
        c = self.config
        factor = c.patch_size * c.merge_size
        max_pixels = c.max_pixels
        if c.cap_pixels_per_frame:
            frame_cap = c.max_video_tokens * factor * factor
            per_frame = max(min(frame_cap, c.max_pixels // num_frames), int(c.min_pixels * 1.05))
            max_pixels = per_frame * num_frames
        return smart_resize(
            num_frames=num_frames,
            height=height,
            width=width,
            temporal_factor=c.temporal_patch_size,
            factor=factor,
            min_pixels=c.min_pixels,
            max_pixels=max_pixels,
        )

    def pixels(self, frames: np.ndarray) -> tuple[torch.Tensor, tuple[int, int, int], tuple[int, int]]:
        """frames (T, H, W, 3) uint8 RGB, T ≥ 2 → (float32 patches, grid_thw, resized (h, w)), as transformers."""
        patches, grid, hw = self.raw_patches(frames)
        return self.normalize(patches), grid, hw

    def raw_patches(self, frames: np.ndarray) -> tuple[torch.Tensor, tuple[int, int, int], tuple[int, int]]:
        """Resized and patchified but still uint8: (grid_t·grid_h·grid_w, C·tp·p·p).

        Patchifying is a pure permutation and normalising is per element with per-channel constants, so
        patchify-then-normalise gives exactly transformers' normalise-then-patchify while moving 4× fewer
        bytes; `normalize` can then run on the accelerator.
        """
        c = self.config
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
        num_frames, height, width = frames.shape[:3]
        video = torch.from_numpy(np.ascontiguousarray(frames))  # (T, H, W, 3)
        if c.do_resize:
            new_h, new_w = self.output_size(num_frames, height, width)
            if (new_h, new_w) != (height, width):
                # torchvision's resize for uint8 bicubic on CPU: the native antialiased uint8 kernel.
                chw = video.permute(0, 3, 1, 2).contiguous()  # (T, 3, H, W)
                chw = F.interpolate(chw, size=[new_h, new_w], mode="bicubic", align_corners=False, antialias=True)
                return self._patchify(chw, channels_last=False)
        return self._patchify(video, channels_last=True)

    def normalize(self, patches: torch.Tensor) -> torch.Tensor:
        """uint8 patches (N, C·tp·p·p) → float32, rescaled and normalised per channel, on their own device."""
        c = self.config
        x = patches.to(torch.float32).view(patches.shape[0], 3, -1)  # (N, C, tp·p·p)
        if c.do_rescale and c.do_normalize:
            # Fused rescale + normalise, exactly as transformers folds the factor into mean and std.
            mean = torch.tensor(c.image_mean) * (1.0 / c.rescale_factor)
            std = torch.tensor(c.image_std) * (1.0 / c.rescale_factor)
            x = x.sub_(mean.to(x.device).view(1, -1, 1)).div_(std.to(x.device).view(1, -1, 1))
        elif c.do_normalize:
            x = (x - torch.tensor(c.image_mean, device=x.device).view(1, -1, 1)) / torch.tensor(
                c.image_std, device=x.device
            ).view(1, -1, 1)
        elif c.do_rescale:
            x = x * c.rescale_factor
        return x.view(patches.shape[0], -1)

    def _patchify(
        self, video: torch.Tensor, *, channels_last: bool
    ) -> tuple[torch.Tensor, tuple[int, int, int], tuple[int, int]]:
        """(T, H, W, C) or (T, C, H, W) → rows of C·tp·p·p values in the vision tower's merge order."""
        c = self.config
        p, tp, ms = c.patch_size, c.temporal_patch_size, c.merge_size
        t = video.shape[0]
        if pad := -t % tp:
            # Pad the clip to whole temporal patches by repeating its last frame.
            video = torch.cat([video, video[-1:].expand(pad, *video.shape[1:])], dim=0)
            t += pad
        if channels_last:
            _, h, w, ch = video.shape
        else:
            _, ch, h, w = video.shape
        gt, gh, gw = t // tp, h // p, w // p
        # Rows ordered (t, h-block, w-block, h-in-block, w-in-block) so that each run of ms² rows is one
        # merged vision token; each row is (C, tp, p, p).
        if channels_last:
            x = video.view(gt, tp, gh // ms, ms, p, gw // ms, ms, p, ch)
            x = x.permute(0, 2, 5, 3, 6, 8, 1, 4, 7)
        else:
            x = video.view(gt, tp, ch, gh // ms, ms, p, gw // ms, ms, p)
            x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
        patches = x.reshape(gt * gh * gw, ch * tp * p * p)
        return patches, (gt, gh, gw), (h, w)

    def patch_times(self, frame_times: np.ndarray) -> list[float]:
        """Seconds per temporal patch: mean of its first and last frame (the last frame pads a short clip)."""
        tp = self.config.temporal_patch_size
        times = [float(x) for x in np.asarray(frame_times, dtype=np.float64).reshape(-1)]
        if len(times) % tp:
            times.extend([times[-1]] * (tp - len(times) % tp))
        return [(times[i] + times[i + tp - 1]) / 2 for i in range(0, len(times), tp)]

    def tokens_per_patch(self, grid_thw: tuple[int, int, int]) -> int:
        """Vision tokens the LM sees per temporal patch (after the spatial merge)."""
        return grid_thw[1] * grid_thw[2] // (self.config.merge_size**2)

    def __call__(self, frames: np.ndarray, frame_times: np.ndarray) -> ProcessedClip:
        """frames (T, H, W, 3) uint8 with T ≥ 2; frame_times (T,) seconds as written into the prompt."""
        if len(frame_times) != frames.shape[0]:
            raise ValueError(f"{frames.shape[0]} frames but {len(frame_times)} frame times")
        patches, grid, resized = self.raw_patches(frames)
        times = self.patch_times(frame_times)
        per_patch = VISION_START + VIDEO_PAD * self.tokens_per_patch(grid) + VISION_END
        prompt = "".join(f"<{t:.1f} seconds>" + per_patch for t in times)
        return ProcessedClip(
            pixel_values=patches, grid_thw=grid, prompt=prompt, patch_times=tuple(times), resized_hw=resized
        )
