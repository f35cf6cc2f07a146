"""Renditions: how much of a segment a Qwen3-VL answerer sees, priced in Qwen3-VL visual tokens.

A rendition is (frames, height, width): `frames` of the segment's frames, evenly spaced, resized to
height × width (multiples of patch × merge = 32 px, the segment's aspect kept as closely as the grid
allows). Qwen3-VL reads a clip in temporal patches of 2 frames and merges 2 × 2 patches of 16 px into
one token, so a rendition costs ceil(F/2) · (H/32) · (W/32) tokens (`rendition_cost`). The full
rendition is every frame at the size the Qwen3-VL processor would feed them
(`SegmentVideoProcessor.compressor_frames`); the smallest is one frame on a one-token-high grid.

`pick_rendition(k, ladder)` turns an ATA allocation of k tokens into the costliest rendition that costs
at most k (ties: more frames), so a segment never costs more than ATA gave it. `clip_for(...)` renders
the chosen frames and their stream times into the processor's patches and prompt text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
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


def rendition_cost(frames: int, height: int, width: int, *, factor: int = 32, temporal: int = 2) -> int:
    """Qwen3-VL visual tokens of `frames` frames at height × width px (sides multiples of `factor`)."""
    if frames < 1 or height % factor or width % factor or height < factor or width < factor:
        raise ValueError(f"no Qwen3-VL clip of {frames} frames at {width}×{height} (sides multiples of {factor})")
    return math.ceil(frames / temporal) * (height // factor) * (width // factor)


def frame_counts(num_frames: int, temporal: int = 2) -> list[int]:
    """The frame counts worth offering: 1, then whole temporal patches up to the segment's frames
    (an odd count costs as much as the next even one)."""
    counts = {1, *range(temporal, num_frames + 1, temporal)}
    if num_frames % temporal and num_frames > 1:
        counts.add(num_frames)
    return sorted(c for c in counts if c <= max(1, num_frames))


def rendition_ladder(
    num_frames: int, height: int, width: int, *, factor: int = 32, temporal: int = 2
) -> list[Rendition]:
    """Every rendition of a segment of `num_frames` frames whose full size is height × width px,
    cheapest first (ties: fewer frames first)."""
    grid_h, grid_w = max(1, height // factor), max(1, width // factor)
    out = []
    for f in frame_counts(num_frames, temporal):
        for gh in range(1, grid_h + 1):
            gw = min(grid_w, max(1, round(gh * grid_w / grid_h)))
            out.append(
                Rendition(
                    f,
                    gh * factor,
                    gw * factor,
                    rendition_cost(f, gh * factor, gw * factor, factor=factor, temporal=temporal),
                )
            )
    out = list({(r.frames, r.height, r.width): r for r in out}.values())
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
