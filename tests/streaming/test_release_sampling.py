"""The release's whole-file sampling ("release" mode): frame count and duration from the stream's own
timestamps, frames picked by presentation index, real_fps on every segment. Real files, real decoding."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from tempo.streaming import SamplingConfig, iter_segments
from tempo.streaming.release import count_frames
from tempo.streaming.sampling import release_sample_indices
from tempo.streaming.synthetic import read_frame_time, write_test_video

RELEASE = SamplingConfig(sampling="release", max_edge=64)
# Irregular frame times (seconds): steps of 1/60 to 1/12 s, then a 1.5 s pause (a variable-rate file).
VFR_TIMES = np.cumsum(np.r_[0.0, np.tile([1 / 60, 1 / 30, 1 / 12, 1 / 20], 30), 1.5, np.full(40, 1 / 25)])


def _count(path: Path) -> tuple[int, float]:
    with av.open(str(path)) as container:
        found = count_frames(container, container.streams.video[0])
    return found.total, found.duration


def test_b_frame_file_counts_its_frames_and_length_from_timestamps(h264_mp4: Path) -> None:
    assert _count(h264_mp4) == (300, pytest.approx(10.0))  # 30 fps for 10 s, 2 B-frames: decode order differs


def test_b_frame_file_gives_the_frames_at_the_release_indices(h264_mp4: Path) -> None:
    segments = list(iter_segments(str(h264_mp4), config=RELEASE))
    indices, real_fps = release_sample_indices(300, 10.0)
    assert len(indices) == 20 and real_fps == 2.0
    shown = [read_frame_time(frame) for s in segments for frame in s.frames]
    # Frame k of the file shows k/30 s: each sampled frame is the k-th in presentation order.
    assert shown == pytest.approx([k / 30.0 for k in indices], abs=1e-3)  # frames draw milliseconds
    assert [s.first_frame_index for s in segments] == [0, 8, 16]
    assert all(s.sample_fps == 2.0 and s.extra["sampling"] == "release" for s in segments)
    assert [float(t) for s in segments for t in s.timestamps] == pytest.approx([k / 30.0 for k in indices])


def test_variable_rate_file_is_sampled_by_frame_index_over_its_real_length(tmp_path: Path) -> None:
    path = write_test_video(tmp_path / "vfr.mkv", duration=float(VFR_TIMES[-1]) + 0.04, frame_times=list(VFR_TIMES),
                            size=(96, 64))
    total, duration = _count(path)
    assert total == len(VFR_TIMES)
    # The last frame's start plus its own duration (Matroska stores one; at most the longest step).
    assert VFR_TIMES[-1] < duration <= VFR_TIMES[-1] + 1.5 + 1e-3
    indices, real_fps = release_sample_indices(total, duration)
    segments = list(iter_segments(str(path), config=RELEASE))
    assert segments[0].sample_fps == pytest.approx(real_fps)
    shown = [read_frame_time(frame) for s in segments for frame in s.frames]
    assert shown == pytest.approx([float(VFR_TIMES[k]) for k in indices], abs=2e-3)


def test_a_short_clip_is_upsampled_to_four_frames_by_repeating_indices(tmp_path: Path) -> None:
    path = write_test_video(tmp_path / "short.mp4", duration=0.5, fps=4.0, size=(64, 48))  # 2 frames, 0.5 s
    (segment,) = list(iter_segments(str(path), config=RELEASE))
    assert release_sample_indices(2, 0.5) == ([0, 0, 1, 1], 8.0)
    assert segment.num_frames == 4 and segment.sample_fps == 8.0
    assert segment.timestamps.tolist() == pytest.approx([0.0, 0.0, 0.25, 0.25])


def test_release_sampling_cannot_resume_at_a_segment(h264_mp4: Path) -> None:
    with pytest.raises(ValueError, match="whole file"):
        iter_segments(str(h264_mp4), config=RELEASE, start_segment=1)


def test_sampling_mode_is_checked() -> None:
    with pytest.raises(ValueError, match="sampling must be"):
        SamplingConfig(sampling="fast")  # type: ignore[arg-type]
