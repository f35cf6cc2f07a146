"""Which decoded frames to keep, and at what size: no decoding here.

Two named sampling modes (`SamplingConfig.sampling`):

- "stream" (ingest, live sources, memory): a fixed grid, slot n at time n / fps (seconds after the
  first frame). Slot n takes the decoded frame nearest to its time, if one lies within the
  tolerance; otherwise the slot stays empty (a gap in a variable-frame-rate source). Windows are
  runs of `window` consecutive slots, so window k always covers [k·window/fps, (k+1)·window/fps) of a
  file: that is what lets a resumed ingest seek straight to window k, and a live stream (which has
  no duration) be sampled at all. A deviation from the release, named and documented in the README.
- "release" (`tempo ask VIDEO`, evaluation): the authors' rule for a whole file
  (`release_sample_indices`): N = clamp(round(duration·fps), min_frames, max_frames) frames at
  decoded-frame indices round(linspace(0, total − 1, N)), and every later time uses
  real_fps = N / duration.

Frame size (`target_size`, `resize_frames`) is the release's first resize step for both modes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

import numpy as np

Payload = TypeVar("Payload")

# Two times closer than this are the same instant (pts × time base in floating point).
TIME_EPSILON = 1e-6
# The release resizes frames whose longer edge exceeds this (mm_datautils.resize_images, resolution=512).
RELEASE_MAX_EDGE = 512
# The release's frame-count bounds for a file (infer.py: min_frames_num=4, max_frames_num=1024).
RELEASE_MIN_FRAMES = 4
RELEASE_MAX_FRAMES = 1024

SamplingMode = Literal["release", "stream"]


@dataclass(frozen=True)
class SamplingConfig:
    """How a source becomes segments. Times in seconds, sizes in pixels."""

    fps: float = 2.0  # sampled frames per second (DESIGN §2): the grid ("stream") or the target rate ("release")
    window: int = 8  # sampled frames per segment
    max_edge: int = RELEASE_MAX_EDGE  # frames with a longer side above this are resized (`target_size`)
    sampling: SamplingMode = "stream"  # "release": the authors' whole-file rule (files only, see module doc)
    min_frames: int = RELEASE_MIN_FRAMES  # "release" mode: fewest sampled frames of a file
    max_frames: int = RELEASE_MAX_FRAMES  # "release" mode: most sampled frames of a file
    tolerance: float | None = None  # max |frame time − slot time|; None = half a sampling interval
    skip_nonref: bool = True  # let the codec skip frames nothing sampled needs (non-reference; or
    # all but keyframes when keyframes are that dense) when the tolerance allows it
    decoder_threads: int = 0  # 0 = automatic (FFmpeg's choice live, a deeper pipeline for files)
    decode: str = "cpu"  # "cpu" (bit-exact with the release), "gpu" (NVDEC + torch resize, files in
    # "stream" sampling; see streaming/gpu.py) or "auto" (gpu when available)
    convert_workers: int | None = None  # files: threads converting/resizing sampled frames while
    # decoding goes on (None = automatic, `convert.default_convert_workers`; 0 = in the reading thread)
    connect_timeout: float = 10.0  # seconds to open a network source or device
    read_timeout: float = 10.0  # seconds without data before a network read counts as failed
    reconnect_attempts: int = 5  # live sources: attempts after a disconnect (0 = never reconnect)
    reconnect_delay: float = 0.5  # first back-off delay, doubled at each failed attempt
    reconnect_max_delay: float = 8.0
    live_queue: int = 16  # live sources: segments buffered for a slow consumer before dropping the oldest
    file_decoders: int | None = None  # files: decoders working on whole GOPs side by side (None =
    # one per core, streaming/parallel_decode.py; 1 = one frame-threaded decoder)

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.window < 1:
            raise ValueError(f"window must be at least 1 frame, got {self.window}")
        if self.max_edge < 16:
            raise ValueError(f"max_edge must be at least 16 pixels, got {self.max_edge}")
        if self.tolerance is not None and not 0 <= self.tolerance <= 0.5 / self.fps:
            raise ValueError(f"tolerance must lie in [0, {0.5 / self.fps:g}] s (half a sampling interval)")
        if self.decode not in ("auto", "cpu", "gpu"):
            raise ValueError(f"decode must be auto, cpu or gpu, not {self.decode!r}")
        if self.convert_workers is not None and not 0 <= self.convert_workers <= 64:
            raise ValueError(f"convert_workers must lie in [0, 64], got {self.convert_workers}")
        if self.file_decoders is not None and not 1 <= self.file_decoders <= 64:
            raise ValueError(f"file_decoders must lie in [1, 64], got {self.file_decoders}")
        if self.live_queue < 1:
            raise ValueError("live_queue must hold at least one segment")
        if self.sampling not in ("release", "stream"):
            raise ValueError(f"sampling must be 'release' or 'stream', not {self.sampling!r}")
        if not 1 <= self.min_frames <= self.max_frames:
            raise ValueError("min_frames and max_frames must satisfy 1 ≤ min_frames ≤ max_frames")

    @property
    def interval(self) -> float:
        """Seconds between two sampled frames."""
        return 1.0 / self.fps

    @property
    def effective_tolerance(self) -> float:
        return 0.5 / self.fps if self.tolerance is None else self.tolerance

    @property
    def window_duration(self) -> float:
        return self.window / self.fps


def target_size(width: int, height: int, max_edge: int = RELEASE_MAX_EDGE) -> tuple[int, int]:
    """(width, height) after the release's first resize step (mm_datautils.resize_images).

    A frame whose longer edge exceeds max_edge is scaled by max_edge / longer edge, each side rounded
    to a multiple of 16 (Python's round, half to even; at least 16); a smaller frame keeps its size.
    With the default 512: 1280×720 → 512×288, 640×480 → 512×384, 320×240 unchanged.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    longer = max(width, height)
    if longer <= max_edge:
        return width, height
    ratio = max_edge / longer
    return max(16, round(width * ratio / 16) * 16), max(16, round(height * ratio / 16) * 16)


def resize_frames(frames: np.ndarray, max_edge: int = RELEASE_MAX_EDGE) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB → (T, h, w, 3) at `target_size`, with PIL's bicubic filter as the release."""
    height, width = frames.shape[1:3]
    width_out, height_out = target_size(width, height, max_edge)
    if (width_out, height_out) == (width, height):
        return frames
    return np.stack([resize_frame(f, (width_out, height_out)) for f in frames])


def resize_frame(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One (H, W, 3) uint8 RGB frame → (size[1], size[0], 3), PIL bicubic (antialiased when shrinking):
    PIL's very pixels, computed by the compiled kernel of streaming/resize.py (PIL without numba)."""
    from tempo.streaming.resize import resize_rgb

    return resize_rgb(rgb, (int(size[0]), int(size[1])))


def release_sample_indices(
    total_frames: int,
    duration: float,
    *,
    fps: float = 2.0,
    min_frames: int = RELEASE_MIN_FRAMES,
    max_frames: int = RELEASE_MAX_FRAMES,
) -> tuple[list[int], float]:
    """The release's sampling of a whole file (infer.py compute_sample_indices + load_video).

    total_frames: frames the file holds; duration: its length in seconds. Returns (indices into the
    frames in presentation order, real_fps = len(indices) / duration), N = clamp(round(duration·fps),
    min_frames, max_frames) at round(linspace(0, total − 1, N)) — numpy's round, half to even; the
    indices may repeat when N > total (a short clip is upsampled by repeating frames).
    """
    if total_frames <= 1:
        return [0], fps if duration <= 0 else 1.0 / duration
    target = max(1, round(duration * fps))
    count = min(max(target, min_frames), max_frames)
    if count == 1:
        indices = [total_frames - 1]
    else:
        indices = np.clip(np.round(np.linspace(0, total_frames - 1, count)).astype(int), 0, total_frames - 1).tolist()
    real_fps = len(indices) / duration if duration > 0 else fps
    return indices, real_fps


class SlotSampler(Generic[Payload]):
    """Streams decoded frames in, yields (slot, time, payload) for the frames the grid keeps.

    Feed frames in presentation order with `push(time, payload)`; times are seconds on the same
    clock as `origin` (the time of slot 0). Each frame fills at most one slot; a frame is held back
    (one frame of look-ahead) until the next frame shows whether it is the nearest to its slot.
    """

    def __init__(self, fps: float, tolerance: float, *, first_slot: int = 0, origin: float = 0.0) -> None:
        self.fps = fps
        self.tolerance = tolerance
        self.slot = first_slot  # the next slot to fill
        self.origin = origin  # time of slot `base_slot`
        self.base_slot = 0
        self._held: tuple[float, Payload] | None = None  # the latest frame before the slot's time

    def slot_time(self, slot: int) -> float:
        return self.origin + (slot - self.base_slot) / self.fps

    def rebase(self, slot: int, origin: float) -> None:
        """Restart the grid: `slot` is now at time `origin` (live sources after a gap)."""
        self._held = None
        self.slot, self.base_slot, self.origin = slot, slot, origin

    def push(self, time: float, payload: Payload) -> list[tuple[int, float, Payload]]:
        kept: list[tuple[int, float, Payload]] = []
        while True:
            target = self.slot_time(self.slot)
            if time < target - TIME_EPSILON:
                # Before the slot: remember it as the candidate from below (a later frame may be nearer).
                self._held = (time, payload)
                return kept
            below = self._held
            self._held = None
            d_below = target - below[0] if below is not None else math.inf
            d_here = time - target
            near_below = d_below <= d_here + TIME_EPSILON and d_below <= self.tolerance + TIME_EPSILON
            if below is not None and near_below:
                kept.append((self.slot, below[0], below[1]))
                self.slot += 1
                continue  # this frame may still fill the next slot
            if d_here <= self.tolerance + TIME_EPSILON:
                kept.append((self.slot, time, payload))
                self.slot += 1
                return kept
            # No frame near this slot (variable frame rate gap): jump to the first slot this frame
            # could fill, instead of stepping through every empty slot of a long gap.
            self.slot = max(
                self.slot + 1,
                self.base_slot + math.ceil((time - self.tolerance - self.origin) * self.fps - TIME_EPSILON),
            )

    def finish(self, end: float | None = None) -> list[tuple[int, float, Payload]]:
        """End of stream: the held frame fills the pending slot if it is near enough.

        `end` (same clock) is when the video stops showing its last frame: a slot at or after it lies
        beyond the video (a 20 s file sampled at 2 fps has slots 0.0 … 19.5, not 20.0).
        """
        below, self._held = self._held, None
        if end is not None and self.slot_time(self.slot) >= end - TIME_EPSILON:
            return []
        if below is not None and self.slot_time(self.slot) - below[0] <= self.tolerance + TIME_EPSILON:
            self.slot += 1
            return [(self.slot - 1, below[0], below[1])]
        return []
