"""Deterministic synthetic segment records for the memory tests (and their writer subprocesses)."""

from __future__ import annotations

import numpy as np
from tempo.memory import SegmentRecord, StreamSettings
from tempo.memory.records import FileReference
from tempo.streaming.segment import SourceInfo

DIM = 64  # token dim D of the synthetic records (the released model's is 2048)
EMB = 32  # embedding dim E
SETTINGS = StreamSettings(
    model_id="tiny", embedder_id="tiny-siglip", embedding_dim=EMB, token_dim=DIM, stored_tokens=4
)
FILE_SOURCE = SourceInfo(uri="/videos/a.mp4", kind="file", live=False, duration=3600.0)


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def make_record(
    stream: str, index: int, *, seed: int = 0, seconds: float = 4.0, wallclock: float | None = None
) -> SegmentRecord:
    """Segment `index`: 8 frames at 2 fps over [4·index, 4·index + 4) s, tokens/embedding from the seed."""
    rng = np.random.default_rng([seed, index])
    start = index * seconds
    return SegmentRecord(
        stream=stream,
        index=index,
        start=start,
        end=start + seconds,
        timestamps=start + np.arange(8) * seconds / 8,
        frame_size=(64, 96),
        first_frame_index=index * 8,
        wallclock_start=None if wallclock is None else wallclock + start,
        tokens=rng.normal(size=(SETTINGS.stored_tokens, DIM)).astype(np.float32),
        embedding=unit(rng.normal(size=EMB)),
        file_ref=FileReference("/videos/a.mp4", start, start + seconds),
    )
