"""Sampled frames converted on threads beside decoding: the same pixels, in the same order, as in the reading thread.

The release's resize (PIL bicubic from full-size RGB, `sampling.resize_frame`) is the spec; the pool
only moves where it runs, so every frame must stay bit-equal to resizing the full-size RGB frame.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from tempo.streaming import SamplingConfig, iter_segments
from tempo.streaming.convert import ConvertPipeline, FrameConverter
from tempo.streaming.sampling import resize_frame
from tempo.streaming.synthetic import write_test_video


@pytest.fixture(scope="module")
def wide_mp4(videos: Path) -> Path:
    """A source larger than the output (640×360 → 512×288 at max_edge 512): the resize really runs."""
    return write_test_video(videos / "wide.mp4", duration=6.0, fps=30.0, size=(640, 360), bframes=2, keyint=30,
                            texture=True)


def pil_bicubic(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The release's resize itself (PIL), not our kernel that reproduces it."""
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))


def _segments(path: Path, config: SamplingConfig) -> list:
    with iter_segments(str(path), config=config) as stream:
        return list(stream)


@pytest.mark.parametrize("sampling", ["stream", "release"])
def test_threads_give_the_pixels_and_times_of_the_reading_thread(wide_mp4: Path, sampling: str) -> None:
    serial = _segments(wide_mp4, SamplingConfig(sampling=sampling, convert_workers=0))  # type: ignore[arg-type]
    pooled = _segments(wide_mp4, SamplingConfig(sampling=sampling, convert_workers=3))  # type: ignore[arg-type]
    assert len(serial) == len(pooled) >= 2
    for a, b in zip(serial, pooled, strict=True):
        assert (a.index, a.start, a.end, a.first_frame_index) == (b.index, b.start, b.end, b.first_frame_index)
        assert np.array_equal(a.timestamps, b.timestamps)
        assert a.frames.shape[1:] == (288, 512, 3)
        assert np.array_equal(a.frames, b.frames)


def test_each_frame_is_pil_bicubic_of_the_full_size_rgb(wide_mp4: Path) -> None:
    """The pooled frames equal the release's chain run by hand: full-size rgb24, then PIL bicubic."""
    with av.open(str(wide_mp4)) as container:
        full = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    times = [i / 30.0 for i in range(len(full))]
    segments = _segments(wide_mp4, SamplingConfig(convert_workers=2, skip_nonref=False))
    for segment in segments:
        for t, frame in zip(segment.timestamps, segment.frames, strict=True):
            k = min(range(len(times)), key=lambda i: abs(times[i] - t))
            assert np.array_equal(frame, pil_bicubic(full[k], (512, 288)))
            assert np.array_equal(frame, resize_frame(full[k], (512, 288)))


def test_the_pipeline_keeps_order_and_bounds_what_is_in_flight(wide_mp4: Path) -> None:
    with av.open(str(wide_mp4)) as container:
        frames = [frame for _, frame in zip(range(20), container.decode(video=0), strict=False)]
    converter = FrameConverter((256, 144))
    expected = [converter(frame) for frame in frames]
    with ConvertPipeline(converter, workers=3, depth=4) as pipeline:
        out: list[tuple[int, np.ndarray]] = []
        for i, frame in enumerate(frames):
            out += pipeline.put(i, frame)
            assert len(pipeline._pending) <= 4
        out += pipeline.drain()
    assert [key for key, _ in out] == list(range(20))
    assert all(np.array_equal(rgb, want) for (_, rgb), want in zip(out, expected, strict=True))


def test_a_consumer_that_stops_early_stops_the_threads(wide_mp4: Path) -> None:
    import threading

    before = {t for t in threading.enumerate() if t.name.startswith("tempo-convert")}
    stream = iter_segments(str(wide_mp4), config=SamplingConfig(convert_workers=2))
    next(stream)
    stream.close()
    after = {t for t in threading.enumerate() if t.name.startswith("tempo-convert") and t.is_alive()}
    assert after <= before


def test_convert_workers_is_checked() -> None:
    with pytest.raises(ValueError, match="convert_workers"):
        SamplingConfig(convert_workers=-1)
    assert dataclasses.replace(SamplingConfig(), convert_workers=0).convert_workers == 0
