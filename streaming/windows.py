"""Cut sampled frames into `Segment`s of `window` consecutive grid slots."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tempo.streaming.segment import Segment, SourceInfo


@dataclass
class _OpenWindow:
    index: int
    grid: int  # first_slot // window: the window of the slot grid this segment fills
    first_slot: int
    last_slot: int
    times: list[float] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)  # each (H, W, 3) uint8
    gap_before: float = 0.0


class WindowAssembler:
    """Collects (slot, time, frame) and returns each Segment once the next window's first frame shows up.

    Grid window g holds slots [g·window, (g+1)·window); each grid window that received frames
    becomes one segment. Segment indices count segments (`first_index`, `first_index` + 1, ...) with
    no hole, whatever the timestamps do: a gap in the video is a gap in time, never in indices.

    A segment's `end` is the next segment's first frame time, so consecutive segments tile the
    timeline, except before a gap: when at least a whole window of slots has no frame (the source
    went silent for ≥ window/fps seconds), the segment ends at its last frame plus one sampling
    interval and the next one carries the silence as `gap_before` (seconds). The last segment also
    ends at its last frame plus one interval.
    """

    def __init__(self, stream_id: str, window: int, fps: float, source: SourceInfo,
                 wallclock_origin: float | None = None, first_index: int = 0) -> None:
        self.stream_id = stream_id
        self.window = window
        self.fps = fps
        self.source = source
        self.wallclock_origin = wallclock_origin  # Unix seconds of time 0.0 (live sources)
        self.next_index = first_index  # index the next segment gets
        self._open: _OpenWindow | None = None
        self._pending_gap = 0.0
        self.extra: dict[str, object] = {}

    def add(self, slot: int, time: float, frame: np.ndarray) -> list[Segment]:
        grid = slot // self.window
        done: list[Segment] = []
        if self._open is not None and slot - self._open.last_slot > self.window:
            # ≥ `window` empty slots: the source was silent; this is a gap, not a segment boundary.
            done.append(self._close(end=self._open.times[-1] + 1.0 / self.fps))
            self._pending_gap += max(0.0, time - done[-1].end)
        elif self._open is not None and grid != self._open.grid:
            done.append(self._close(end=time))
        if self._open is None:
            self._open = _OpenWindow(index=self.next_index, grid=grid, first_slot=slot, last_slot=slot,
                                     gap_before=self._pending_gap)
            self.next_index += 1
            self._pending_gap = 0.0
        self._open.last_slot = slot
        self._open.times.append(time)
        self._open.frames.append(frame)
        return done

    def flush(self) -> list[Segment]:
        """Close the open window (end of stream, or a gap): end = last frame + one interval."""
        if self._open is None:
            return []
        return [self._close(end=self._open.times[-1] + 1.0 / self.fps)]

    def mark_gap(self, seconds: float) -> None:
        """Signal was lost for `seconds` before the next window (recorded as its `gap_before`)."""
        self._pending_gap += max(0.0, seconds)

    def _close(self, end: float) -> Segment:
        window, self._open = self._open, None
        assert window is not None
        times = np.asarray(window.times, dtype=np.float64)  # (T,) seconds
        frames = np.stack(window.frames)  # (T, H, W, 3) uint8
        wallclock = None if self.wallclock_origin is None else self.wallclock_origin + float(times[0])
        return Segment(
            stream_id=self.stream_id,
            index=window.index,
            start=float(times[0]),
            end=float(end),
            timestamps=times,
            frames=frames,
            source=self.source,
            sample_fps=self.fps,
            first_frame_index=window.first_slot,
            wallclock_start=wallclock,
            gap_before=window.gap_before,
            extra=dict(self.extra),
        )
