"""The unit of work everything downstream consumes: a window of sampled frames with real timestamps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

SourceKind = Literal["file", "network", "device", "stdin"]


@dataclass(frozen=True)
class SourceInfo:
    """What we know about where frames come from. Times are seconds."""

    uri: str
    kind: SourceKind
    live: bool
    container: str | None = None
    codec: str | None = None
    width: int | None = None  # source frame size, before resizing
    height: int | None = None
    average_fps: float | None = None  # as the container reports it; never used to compute times
    duration: float | None = None  # seconds, None for live or unknown
    start_time: float = 0.0  # seconds: stream time of the first decodable frame

    def to_dict(self) -> dict[str, object]:
        return {
            "uri": self.uri,
            "kind": self.kind,
            "live": self.live,
            "container": self.container,
            "codec": self.codec,
            "width": self.width,
            "height": self.height,
            "average_fps": self.average_fps,
            "duration": self.duration,
            "start_time": self.start_time,
        }


def is_live(source: SourceInfo | dict[str, object]) -> bool:
    """The one "is live" rule: a source that cannot be re-read later (network, device, stdin, or a
    file flagged live) keeps proxy clips of its frames; a plain file is simply re-read."""
    if isinstance(source, SourceInfo):
        live, kind = source.live, source.kind
    else:
        live, kind = source.get("live"), source.get("kind")
    return bool(live) or (kind is not None and kind != "file")


@dataclass(frozen=True)
class Segment:
    """A window of sampled frames (DESIGN §2): 8 frames = 4 s at 2 fps by default.

    `timestamps` are the real presentation times of the sampled frames, in seconds relative to the
    start of the source (first frame at 0.0), taken from pts × time base. `start` is the first
    frame's time, `end` the next window's start (or last frame + one sampling interval), so
    consecutive segments tile the timeline. For live sources `wallclock_start` is the capture time
    (Unix seconds) of the first frame.
    """

    stream_id: str
    index: int
    start: float  # seconds
    end: float  # seconds
    timestamps: np.ndarray  # (T,) float64 seconds
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB, H and W multiples of 16
    source: SourceInfo
    sample_fps: float  # the sampling rate the window was built at (frames per second)
    first_frame_index: int = 0  # index of the first frame in the sampled sequence of the whole stream
    wallclock_start: float | None = None  # Unix seconds, live sources only
    gap_before: float = 0.0  # seconds of signal lost (reconnect) right before this segment
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    def frames_for_model(self) -> np.ndarray:
        """Frames as the SVLM needs them: at least 2 (Qwen3-VL's temporal patch is 2 frames).

        A one-frame window is padded by repeating its frame (DESIGN §2). Returns (T', H, W, 3).
        """
        if self.num_frames >= 2:
            return self.frames
        return np.concatenate([self.frames, self.frames], axis=0)

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly summary without pixels."""
        return {
            "index": self.index,
            "start": round(self.start, 6),
            "end": round(self.end, 6),
            "frames": self.num_frames,
            "timestamps": [round(float(t), 6) for t in self.timestamps],
        }
