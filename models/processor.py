"""The compressor's input: the release's frame resize chain, then Qwen3-VL's video path with no resize.

What the released model was trained on (tempo/mm_datautils.py + qwen-vl-utils 0.0.14's `fetch_video` +
transformers' Qwen3VLProcessor with `do_resize=False`), step for step:

A. longest edge > 512 → PIL bicubic resize to ≈512, sides rounded to 16 (`tempo.streaming.target_size`,
   done while decoding, so `Segment.frames` are already at that size);
B. qwen-vl-utils `fetch_image`, per frame: sides rounded to multiples of 64 — `fetch_video` passes its
   32-pixel factor (patch 16 × merge 2) where `fetch_image` expects a patch size and doubles it again —
   within [4·64², 16384·64²] pixels, PIL's default (bicubic) resize;
C. qwen-vl-utils `fetch_video`, per clip: smart_resize with factor 32 within [128·32², 768·32²] pixels
   per frame (the upper bound also shrinks with clip length), torchvision's float bicubic antialiased
   resize (rounded back to uint8), usually the identity after B;
D. the processor with `do_resize=False`: fused rescale + normalise ((x − 255·mean) / (255·std), float32),
   then patchify: pad the clip to whole temporal patches by repeating its last frame, and flatten into
   (grid_t·grid_h·grid_w, C·tp·p·p) rows in the vision tower's merge order;
E. prompt: per temporal patch `<{t:.1f} seconds><|vision_start|><|video_pad|>×n<|vision_end|>`, t the
   mean time of the patch's first and last frame.

A 16:9 720p source ends at 512×256 (width × height): A gives 512×288, B rounds 288/64 = 4.5 to 4 (Python
rounds half to even). `compressor_frame_size` and `compressor_frames` are the one place this chain
lives; everything that stores or compares the compressor's input (proxies, tests) calls them.

Why not call transformers' processor: its video path requires torchvision, and the only torchvision
wheel on PyPI for torch 2.13 (0.28.0) links CUDA libraries, so it does not load next to the CPU build
of torch on its own. The parity tests compare this module with transformers' processor and
qwen-vl-utils (tests/models/test_processor_parity.py) and with golden values from the release.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tempo.models.text import time_tag
from tempo.streaming.sampling import RELEASE_MAX_EDGE, resize_frames, target_size

VIDEO_PROCESSOR_FILE = "video_preprocessor_config.json"
IMAGE_PROCESSOR_FILE = "preprocessor_config.json"

VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
VIDEO_PAD = "<|video_pad|>"

# qwen-vl-utils 0.0.14's constants (vision_process.py): tokens per frame and frames per temporal patch.
IMAGE_MIN_TOKEN_NUM = 4
IMAGE_MAX_TOKEN_NUM = 16384
VIDEO_MIN_TOKEN_NUM = 128
VIDEO_MAX_TOKEN_NUM = 768
FRAME_FACTOR = 2
MAX_RATIO = 200
MODEL_SEQ_LEN = 128000  # its MODEL_SEQ_LEN default: a clip's total pixel budget is 0.9 × this many tokens


def smart_resize(
    height: int, width: int, factor: int, min_pixels: float, max_pixels: float
) -> tuple[int, int]:
    """qwen-vl-utils' per-frame rule: (height, width) as multiples of `factor` with H·W in [min, max] pixels.

    Python's `round` (half to even) as in the release: 288 px at factor 64 → 256, not 320.
    """
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ValueError(f"aspect ratio {max(height, width) / min(height, width):.0f} is above {MAX_RATIO}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def _grid_size(height: int, width: int, factor: int) -> tuple[int, int]:
    """Step B: `fetch_image`'s size, with the factor it really uses (2 × the 32-pixel video factor)."""
    grid = 2 * factor
    return smart_resize(
        height, width, grid, min_pixels=IMAGE_MIN_TOKEN_NUM * grid**2, max_pixels=IMAGE_MAX_TOKEN_NUM * grid**2
    )


def _clip_size(height: int, width: int, factor: int, num_frames: int) -> tuple[int, int]:
    """Step C: `fetch_video`'s size for a clip of `num_frames` (after padding to an even count)."""
    min_pixels = VIDEO_MIN_TOKEN_NUM * factor * factor
    total_pixels = MODEL_SEQ_LEN * factor * factor * 0.9
    max_pixels = max(
        min(VIDEO_MAX_TOKEN_NUM * factor * factor, total_pixels / num_frames * FRAME_FACTOR), int(min_pixels * 1.05)
    )
    return smart_resize(height, width, factor, min_pixels=min_pixels, max_pixels=max_pixels)


def _padded_count(num_frames: int) -> int:
    return math.ceil(num_frames / FRAME_FACTOR) * FRAME_FACTOR


def compressor_frame_size(
    width: int,
    height: int,
    *,
    num_frames: int = 8,
    patch_size: int = 16,
    merge_size: int = 2,
    max_edge: int = RELEASE_MAX_EDGE,
) -> tuple[int, int]:
    """(width, height) in pixels of the frames the compressor's vision tower reads, for a source frame
    of `width` × `height` in a clip of `num_frames` frames (steps A–C; a window of 8 by default).

    Both sides are multiples of patch_size × merge_size. 1280×720 → (512, 256); 1920×1080 → (512, 256).
    """
    factor = patch_size * merge_size
    w, h = target_size(width, height, max_edge)
    h, w = _grid_size(h, w, factor)
    h, w = _clip_size(h, w, factor, _padded_count(num_frames))
    return w, h


def compressor_frames(
    frames: np.ndarray,
    *,
    patch_size: int = 16,
    merge_size: int = 2,
    max_edge: int = RELEASE_MAX_EDGE,
) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 RGB at any size → (T, h, w, 3) uint8 exactly as the release's chain
    makes them (steps A–C), (w, h) = `compressor_frame_size(W, H, num_frames=T)`.

    Step A is the identity for frames whose longer edge is ≤ max_edge (decoded segments already are).
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (T, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    from PIL import Image

    factor = patch_size * merge_size
    t, height, width = frames.shape[:3]
    frames = resize_frames(frames, max_edge)  # A
    height, width = frames.shape[1:3]
    grid_h, grid_w = _grid_size(height, width, factor)
    if (grid_h, grid_w) != (height, width):  # B: PIL's `Image.resize` default filter is bicubic
        frames = np.stack(
            [np.asarray(Image.fromarray(f).resize((grid_w, grid_h), Image.Resampling.BICUBIC)) for f in frames]
        )
    clip_h, clip_w = _clip_size(grid_h, grid_w, factor, _padded_count(t))
    if (clip_h, clip_w) != (grid_h, grid_w):  # C: torchvision's tensor resize (float bicubic, rounded)
        video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()  # (T, 3, H, W)
        video = F.interpolate(video, size=[clip_h, clip_w], mode="bicubic", align_corners=False, antialias=True)
        video = video.clamp_(0, 255).round_().to(torch.uint8)
        frames = video.permute(0, 2, 3, 1).contiguous().numpy()
    return frames


@dataclass(frozen=True)
class VideoProcessorConfig:
    """The fields of a Qwen3-VL `video_preprocessor_config.json` that shape the vision input."""

    # Defaults are transformers' Qwen3VLVideoProcessor class defaults. The release runs the processor with
    # do_resize=False, so the config's pixel bounds play no part: the frames come from `compressor_frames`.
    patch_size: int = 16
    temporal_patch_size: int = 2
    merge_size: int = 2
    image_mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    image_std: tuple[float, ...] = (0.5, 0.5, 0.5)
    rescale_factor: float = 1 / 255
    do_rescale: bool = True
    do_normalize: bool = True
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
        return cls(
            patch_size=int(raw.get("patch_size", d.patch_size)),  # type: ignore[arg-type]
            temporal_patch_size=int(raw.get("temporal_patch_size", d.temporal_patch_size)),  # type: ignore[arg-type]
            merge_size=int(raw.get("merge_size", d.merge_size)),  # type: ignore[arg-type]
            image_mean=tuple(raw.get("image_mean", d.image_mean)),  # type: ignore[arg-type]
            image_std=tuple(raw.get("image_std", d.image_std)),  # type: ignore[arg-type]
            rescale_factor=float(raw.get("rescale_factor", d.rescale_factor)),  # type: ignore[arg-type]
            do_rescale=bool(raw.get("do_rescale", True)),
            do_normalize=bool(raw.get("do_normalize", True)),
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

    def frame_size(self, width: int, height: int, num_frames: int = 8) -> tuple[int, int]:
        """(width, height) the vision tower reads for a source frame of width × height (`compressor_frame_size`)."""
        c = self.config
        return compressor_frame_size(
            width, height, num_frames=num_frames, patch_size=c.patch_size, merge_size=c.merge_size
        )

    def compressor_frames(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 → (T, h, w, 3) uint8: the frames the compressor is fed for them (the
        release's chain, `compressor_frames`, at this processor's patch and merge sizes)."""
        c = self.config
        return compressor_frames(frames, patch_size=c.patch_size, merge_size=c.merge_size)

    def pixels(self, frames: np.ndarray) -> tuple[torch.Tensor, tuple[int, int, int], tuple[int, int]]:
        """frames (T, H, W, 3) uint8 RGB, T ≥ 2 → (float32 patches, grid_thw, resized (h, w)), as the release."""
        patches, grid, hw = self.raw_patches(frames)
        return self.normalize(patches), grid, hw

    def raw_patches(self, frames: np.ndarray) -> tuple[torch.Tensor, tuple[int, int, int], tuple[int, int]]:
        """Resized by the release's chain and patchified, still uint8: (grid_t·grid_h·grid_w, C·tp·p·p).

        Patchifying is a pure permutation and normalising is per element with per-channel constants, so
        patchify-then-normalise gives exactly transformers' normalise-then-patchify while moving 4× fewer
        bytes; `normalize` can then run on the accelerator.
        """
        c = self.config
        frames = compressor_frames(frames, patch_size=c.patch_size, merge_size=c.merge_size)
        return self._patchify(torch.from_numpy(np.ascontiguousarray(frames)))

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

    def _patchify(self, video: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int], tuple[int, int]]:
        """(T, H, W, C) → rows of C·tp·p·p values in the vision tower's merge order."""
        c = self.config
        p, tp, ms = c.patch_size, c.temporal_patch_size, c.merge_size
        t = video.shape[0]
        if pad := -t % tp:
            # Pad the clip to whole temporal patches by repeating its last frame.
            video = torch.cat([video, video[-1:].expand(pad, *video.shape[1:])], dim=0)
            t += pad
        _, h, w, ch = video.shape
        gt, gh, gw = t // tp, h // p, w // p
        # Rows ordered (t, h-block, w-block, h-in-block, w-in-block) so that each run of ms² rows is one
        # merged vision token; each row is (C, tp, p, p).
        x = video.view(gt, tp, gh // ms, ms, p, gw // ms, ms, p, ch)
        x = x.permute(0, 2, 5, 3, 6, 8, 1, 4, 7)
        patches = x.reshape(gt * gh * gw, ch * tp * p * p)
        return patches, (gt, gh, gw), (h, w)

    def patch_times(self, frame_times: np.ndarray) -> list[float]:
        """Seconds per temporal patch: mean of its first and last frame time (Qwen3VLProcessor's rule).

        frame_times must already cover the padded clip: the caller knows the time of the frame that pads
        an odd clip (the release gives it the next sampled index, `segment_frame_times`).
        """
        tp = self.config.temporal_patch_size
        times = [float(x) for x in np.asarray(frame_times, dtype=np.float64).reshape(-1)]
        if len(times) % tp:
            times.extend([times[-1]] * (tp - len(times) % tp))
        return [(times[i] + times[i + tp - 1]) / 2 for i in range(0, len(times), tp)]

    def tokens_per_patch(self, grid_thw: tuple[int, int, int]) -> int:
        """Vision tokens the LM sees per temporal patch (after the spatial merge)."""
        return grid_thw[1] * grid_thw[2] // (self.config.merge_size**2)

    def __call__(self, frames: np.ndarray, frame_times: np.ndarray) -> ProcessedClip:
        """frames (T, H, W, 3) uint8 with T ≥ 2; frame_times (T,) or (T + 1,) seconds as written into the
        prompt (one more when T is odd: the time of the frame that pads the clip)."""
        if len(frame_times) not in (frames.shape[0], _padded_count(frames.shape[0])):
            raise ValueError(f"{frames.shape[0]} frames but {len(frame_times)} frame times")
        patches, grid, resized = self.raw_patches(frames)
        times = self.patch_times(frame_times)
        per_patch = VISION_START + VIDEO_PAD * self.tokens_per_patch(grid) + VISION_END
        prompt = "".join(time_tag(t) + per_patch for t in times)
        return ProcessedClip(
            pixel_values=patches, grid_thw=grid, prompt=prompt, patch_times=tuple(times), resized_hw=resized
        )
