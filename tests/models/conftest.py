"""Fixtures for the model tests: one tiny checkpoint per session and segments built from numpy arrays."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from tempo.models import TempoModel
from tempo.models.tiny import write_tiny_checkpoint
from tempo.streaming.segment import Segment, SourceInfo

SOURCE = SourceInfo(uri="memory://test", kind="file", live=False)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "tempo-tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_model(tiny_dir: Path) -> TempoModel:
    return TempoModel.load(tiny_dir)


def make_segment(
    index: int,
    *,
    frames: int = 8,
    size: tuple[int, int] = (96, 128),
    fps: float = 2.0,
    seed: int = 0,
    start: float | None = None,
) -> Segment:
    """A segment of random (H, W) = size frames sampled at `fps`, starting at index·8/fps seconds."""
    rng = np.random.default_rng(seed * 1000 + index)
    start = index * 8 / fps if start is None else start
    times = start + np.arange(frames) / fps
    pixels = rng.integers(0, 256, (frames, *size, 3), dtype=np.uint8)
    return Segment(
        stream_id="test",
        index=index,
        start=start,
        end=start + frames / fps,
        timestamps=times,
        frames=pixels,
        source=SOURCE,
        sample_fps=fps,
        first_frame_index=index * 8,
    )


@pytest.fixture()
def segments() -> Callable[..., list[Segment]]:
    def build(n: int, **kwargs: object) -> list[Segment]:
        return [make_segment(i, **kwargs) for i in range(n)]  # type: ignore[arg-type]

    return build
