"""Which decoded frames to keep, and at what size: pure Python, no decoding here.

The sampling grid is slot n at time n / fps (seconds after the first frame). Slot n takes the decoded
frame nearest to its time, if one lies within the tolerance; otherwise the slot stays empty (a gap in
a variable-frame-rate source). Windows are runs of `window` consecutive slots, so window k always
covers [k·window/fps, (k+1)·window/fps) of a file: that is what lets a resumed ingest seek straight
to window k and produce exactly the segments a full run would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, TypeVar

Payload = TypeVar("Payload")

# Two times closer than this are the same instant (pts × time base in floating point).
TIME_EPSILON = 1e-6


@dataclass(frozen=True)
class SamplingConfig:
    """How a source becomes segments. Times in seconds, sizes in pixels."""

    fps: float = 2.0  # sampled frames per second (DESIGN §2)
    window: int = 8  # sampled frames per segment
    max_edge: int = 512  # longer side of a sampled frame, at most; both sides multiples of 16
    tolerance: float | None = None  # max |frame time − slot time|; None = half a sampling interval
    skip_nonref: bool = True  # let the codec skip frames nothing sampled needs (non-reference; or
    # all but keyframes when keyframes are that dense) when the tolerance allows it
    decoder_threads: int = 0  # 0 = automatic (FFmpeg's choice live, a deeper pipeline for files)
    connect_timeout: float = 10.0  # seconds to open a network source or device
    read_timeout: float = 10.0  # seconds without data before a network read counts as failed
    reconnect_attempts: int = 5  # live sources: attempts after a disconnect (0 = never reconnect)
    reconnect_delay: float = 0.5  # first back-off delay, doubled at each failed attempt
    reconnect_max_delay: float = 8.0
    live_queue: int = 16  # live sources: segments buffered for a slow consumer before dropping the oldest

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.window < 1:
            raise ValueError(f"window must be at least 1 frame, got {self.window}")
        if self.max_edge < 16:
            raise ValueError(f"max_edge must be at least 16 pixels, got {self.max_edge}")
        if self.tolerance is not None and not 0 <= self.tolerance <= 0.5 / self.fps:
            raise ValueError(f"tolerance must lie in [0, {0.5 / self.fps:g}] s (half a sampling interval)")
        if self.live_queue < 1:
            raise ValueError("live_queue must hold at least one segment")

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


def target_size(width: int, height: int, max_edge: int = 512) -> tuple[int, int]:
    """(width, height) after resizing: longer edge ≤ max_edge, both sides multiples of 16, aspect kept.

    Sources smaller than max_edge keep their size (rounded to the 16-pixel grid); nothing drops
    below 16 pixels.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    long_side, short_side = max(width, height), min(width, height)
    new_long = max(16, (min(long_side, max_edge) // 16) * 16)
    scale = new_long / long_side
    new_short = max(16, round(short_side * scale / 16) * 16)
    new_short = min(new_short, new_long)
    return (new_long, new_short) if width >= height else (new_short, new_long)


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
