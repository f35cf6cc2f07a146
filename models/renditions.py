"""Renditions: how much of a segment a Qwen3-VL answerer sees, priced in Qwen3-VL visual tokens.

A rendition is (frames, height, width): `frames` of the segment's frames, evenly spaced, resized to
height × width (multiples of patch × merge = 32 px, the segment's aspect kept as closely as the grid
allows). Qwen3-VL reads a clip in temporal patches of 2 frames and merges 2 × 2 patches of 16 px into
one token, so a rendition costs ceil(F/2) · (H/32) · (W/32) tokens (`rendition_cost`). The full
rendition is every frame at the size the Qwen3-VL processor would feed them
(`SegmentVideoProcessor.compressor_frames`); the smallest is one frame on a one-token-high grid.

A remote answerer (models/remote_answer.py) is sent each frame as an image of its own, and an
OpenAI-compatible server prices images differently (`ImagePricing`, transformers' Qwen2-VL image
processor as `transformers serve` and vLLM run it): every image is resized by the processor's
smart_resize into its [min, max] pixel bounds (small frames are scaled *up*), becomes one temporal patch
of its own, and is wrapped in `<|vision_start|>…<|vision_end|>`, so F frames at H × W cost
F · ((H'/32) · (W'/32) + 2). `rendition_cost(..., images=pricing)` is that unit and
`rendition_ladder(..., images=pricing)` offers every frame count at the sizes the server keeps as
they are; ATA then spends the budget in what the server really counts.

`pick_rendition(k, ladder)` turns an ATA allocation of k tokens into the costliest rendition that costs
at most k (ties: more frames), so a segment never costs more than ATA gave it. `clip_for(...)` renders
the chosen frames and their stream times into the processor's patches and prompt text.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tempo.models.errors import CheckpointError
from tempo.models.processor import VIDEO_PAD, VISION_END, VISION_START, SegmentVideoProcessor
from tempo.models.text import time_tag


@dataclass(frozen=True)
class Rendition:
    """How a segment enters the answerer: `frames` frames at `height` × `width` px, costing `tokens`."""

    frames: int
    height: int
    width: int
    tokens: int

    def to_dict(self) -> dict[str, int]:
        return {"frames": self.frames, "width": self.width, "height": self.height}


# transformers' Qwen2VLImageProcessor class defaults (Qwen3-VL's image processor), for keys a
# preprocessor_config.json leaves out.
IMAGE_DEFAULTS = {"patch_size": 14, "merge_size": 2, "min_pixels": 56 * 56, "max_pixels": 28 * 28 * 1280}
IMAGE_WRAP_TOKENS = 2  # <|vision_start|> and <|vision_end|> around each image's pads (Qwen3-VL's chat template)


@dataclass(frozen=True)
class ImagePricing:
    """How a server's Qwen3-VL image processor prices one image: smart_resize to multiples of `factor`
    within [min_pixels, max_pixels] (no resize when `resize` is False), (H'/factor)(W'/factor) pads,
    plus `wrap` special tokens."""

    factor: int = 32
    min_pixels: int = 65536
    max_pixels: int = 16777216
    resize: bool = True
    wrap: int = IMAGE_WRAP_TOKENS

    @classmethod
    def from_dir(cls, directory: str | Path) -> ImagePricing:
        """The pricing of the image processor in a checkpoint's preprocessor_config.json, read as
        transformers reads it (top-level min_pixels / max_pixels override `size`); CheckpointError (one
        sentence) when the file is missing or its bounds make no sense."""
        path = Path(directory) / "preprocessor_config.json"
        try:
            raw = json.loads(path.read_text())
            size = raw.get("size") if isinstance(raw.get("size"), dict) else {}
            lo = raw.get("min_pixels", size.get("shortest_edge", IMAGE_DEFAULTS["min_pixels"]))
            hi = raw.get("max_pixels", size.get("longest_edge", IMAGE_DEFAULTS["max_pixels"]))
            patch = raw.get("patch_size", IMAGE_DEFAULTS["patch_size"])
            merge = raw.get("merge_size", IMAGE_DEFAULTS["merge_size"])
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi, patch, merge)):
                raise TypeError("the pixel bounds, patch_size and merge_size must be integers")
            pricing = cls(
                factor=patch * merge, min_pixels=lo, max_pixels=hi, resize=raw.get("do_resize", True) is not False
            )
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            reason = "the file is missing" if isinstance(exc, FileNotFoundError) else " ".join(str(exc).split())
            raise CheckpointError(
                f"{path} does not say how the answer server's image processor sizes images ({reason}); "
                "the remote answerer prices each frame by it"
            ) from None
        if (
            pricing.factor < 1
            or pricing.min_pixels < 0
            or pricing.max_pixels < max(pricing.min_pixels, pricing.factor**2)
        ):
            raise CheckpointError(
                f"{path} has image bounds no image fits: {pricing.min_pixels}..{pricing.max_pixels} pixels at "
                f"{pricing.factor}-pixel steps"
            )
        return pricing

    def size(self, height: int, width: int) -> tuple[int, int]:
        """(H', W') the server's processor feeds an image of height × width: transformers' smart_resize
        (image_processing_qwen2_vl.py) step for step, its rounding included."""
        if not self.resize:
            return height, width
        f = self.factor
        if max(height, width) / min(height, width) > 200:
            raise ValueError(f"no Qwen3-VL image at {width}×{height}: the aspect ratio is above 200")
        h_bar, w_bar = round(height / f) * f, round(width / f) * f
        if h_bar * w_bar > self.max_pixels:
            beta = math.sqrt((height * width) / self.max_pixels)
            h_bar = max(f, math.floor(height / beta / f) * f)
            w_bar = max(f, math.floor(width / beta / f) * f)
        elif h_bar * w_bar < self.min_pixels:
            beta = math.sqrt(self.min_pixels / (height * width))
            h_bar = math.ceil(height * beta / f) * f
            w_bar = math.ceil(width * beta / f) * f
        return h_bar, w_bar

    def image_tokens(self, height: int, width: int) -> int:
        """Prompt tokens of one image of height × width px: its pads and the two around them."""
        h, w = self.size(height, width)
        return (h // self.factor) * (w // self.factor) + self.wrap


def rendition_cost(
    frames: int, height: int, width: int, *, factor: int = 32, temporal: int = 2, images: ImagePricing | None = None
) -> int:
    """Tokens the answerer pays for `frames` frames at height × width px (sides multiples of `factor`):
    as a video, Qwen3-VL visual tokens ceil(F/2)·(H/32)·(W/32) (`images` None: the local answerer);
    as F separate images priced by `images` (a remote answerer's server), F·((H'/32)(W'/32) + 2)."""
    if frames < 1 or height % factor or width % factor or height < factor or width < factor:
        raise ValueError(f"no Qwen3-VL clip of {frames} frames at {width}×{height} (sides multiples of {factor})")
    if images is not None:
        return frames * images.image_tokens(height, width)
    return math.ceil(frames / temporal) * (height // factor) * (width // factor)


def frame_counts(num_frames: int, temporal: int = 2) -> list[int]:
    """The frame counts worth offering: 1, then whole temporal patches up to the segment's frames
    (an odd count costs as much as the next even one; `temporal` 1: every count, as for images)."""
    counts = {1, *range(temporal, num_frames + 1, temporal)}
    if num_frames % temporal and num_frames > 1:
        counts.add(num_frames)
    return sorted(c for c in counts if c <= max(1, num_frames))


def rendition_ladder(
    num_frames: int,
    height: int,
    width: int,
    *,
    factor: int = 32,
    temporal: int = 2,
    images: ImagePricing | None = None,
) -> list[Rendition]:
    """Every rendition of a segment of `num_frames` frames whose full size is height × width px,
    cheapest first (ties: fewer frames first). Priced as a video, or with `images` as separate images:
    then every frame count is offered, each size is the one the server's processor keeps as it is (a
    frame it would scale up is rendered at that size instead), and of renditions with the same frames
    and cost only the largest stays."""
    grid_h, grid_w = max(1, height // factor), max(1, width // factor)
    out = []
    for f in frame_counts(num_frames, 1 if images is not None else temporal):
        for gh in range(1, grid_h + 1):
            gw = min(grid_w, max(1, round(gh * grid_w / grid_h)))
            h, w = gh * factor, gw * factor
            if images is not None:
                h, w = images.size(h, w)
            if h % factor or w % factor:  # a server whose factor differs from the answerer's: its own grid
                continue
            cost = rendition_cost(f, h, w, factor=factor, temporal=temporal, images=images)
            out.append(Rendition(f, h, w, cost))
    out = list({(r.frames, r.height, r.width): r for r in out}.values())
    if images is not None:  # same frames, same cost: the larger frames
        best: dict[tuple[int, int], Rendition] = {}
        for r in out:
            key = (r.frames, r.tokens)
            if key not in best or r.height * r.width > best[key].height * best[key].width:
                best[key] = r
        out = list(best.values())
    out.sort(key=lambda r: (r.tokens, r.frames, r.height))
    return out


def pick_rendition(tokens: int, ladder: list[Rendition]) -> Rendition | None:
    """The costliest rendition of `ladder` costing at most `tokens` (ties: more frames, then larger
    frames); None when even the smallest costs more."""
    fitting = [r for r in ladder if r.tokens <= tokens]
    if not fitting:
        return None
    return max(fitting, key=lambda r: (r.tokens, r.frames, r.height * r.width))


def select_frames(num_frames: int, count: int) -> np.ndarray:
    """Indices of `count` evenly spaced frames among `num_frames` (first and last included)."""
    return np.unique(np.rint(np.linspace(0, num_frames - 1, count)).astype(np.int64))


def resize_frames_to(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """(T, H, W, 3) uint8 → (T, height, width, 3) uint8 (bicubic with antialias, as the processor)."""
    if frames.shape[1:3] == (height, width):
        return frames
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    video = torch.nn.functional.interpolate(
        video, size=[height, width], mode="bicubic", align_corners=False, antialias=True
    )
    return video.clamp_(0, 255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


@dataclass(frozen=True)
class RenderedClip:
    """One kept segment as the answerer reads it (the same frames and times go to a remote answerer)."""

    index: int  # the segment's index
    frames: np.ndarray  # (f, h, w, 3) uint8 at the rendition's size
    frame_times: tuple[float, ...]  # (f,) seconds of stream time per frame
    rendition: Rendition
    stream: str | None = None  # cross-stream asks: the segment's stream, named in its time tags


def render_clip(
    index: int, frames: np.ndarray, frame_times: np.ndarray, rendition: Rendition, stream: str | None = None
) -> RenderedClip:
    """The rendition's frames (evenly spaced, resized) of a segment's full-size `frames` and their times."""
    pick = select_frames(frames.shape[0], rendition.frames)
    chosen = resize_frames_to(frames[pick], rendition.height, rendition.width)
    times = tuple(float(t) for t in np.asarray(frame_times, dtype=np.float64)[pick])
    return RenderedClip(index=index, frames=chosen, frame_times=times, rendition=rendition, stream=stream)


def clip_inputs(
    processor: SegmentVideoProcessor, clip: RenderedClip, words: str = ""
) -> tuple[torch.Tensor, tuple[int, int, int], str]:
    """(uint8 patches, grid_thw, prompt text) of a rendered clip: the frames are patchified at their
    size (no further resize) and each temporal patch is written after its stream-time tag, as
    Qwen3VLProcessor writes a video whose metadata carries those times (the tag names the clip's
    stream in a cross-stream ask). `words` (the segment's cues, tempo.engine.text_track.segment_words)
    go after the first tag, before the frames: where the Tempo family puts them."""
    patches, grid, _ = processor._patchify(torch.from_numpy(np.ascontiguousarray(clip.frames)))
    times = processor.patch_times(np.array(clip.frame_times))
    per_patch = VISION_START + VIDEO_PAD * processor.tokens_per_patch(grid) + VISION_END
    tags = [time_tag(t, clip.stream) for t in times]
    return patches, grid, "".join(tag + (words if p == 0 else "") + per_patch for p, tag in enumerate(tags))
