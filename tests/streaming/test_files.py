"""Ingest of real files: every sampled frame is the frame for its timestamp, segments tile the timeline."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import pytest
from tempo.streaming import SamplingConfig, Segment, iter_segments, probe_source
from tempo.streaming.synthetic import read_frame_time, write_test_video

SOURCE_FRAME = 1 / 30  # seconds: one frame of the 30 fps fixtures
SMALL = SamplingConfig(max_edge=64)  # small frames keep the tests fast; the time code survives


def assert_frames_match_timestamps(segments: list[Segment]) -> None:
    """The time drawn into each sampled frame equals the segment's timestamp for it (± 1 source frame)."""
    for segment in segments:
        assert segment.frames.dtype == np.uint8
        assert segment.frames.shape[0] == len(segment.timestamps)
        for frame, t in zip(segment.frames, segment.timestamps, strict=True):
            assert abs(read_frame_time(frame) - t) <= SOURCE_FRAME + 1e-6


def assert_tiles(segments: list[Segment], config: SamplingConfig) -> None:
    for current, following in itertools.pairwise(segments):
        assert current.end == following.start
    last = segments[-1]
    assert last.end == pytest.approx(float(last.timestamps[-1]) + config.interval)
    for segment in segments:
        assert segment.start == segment.timestamps[0]
        assert np.all(np.diff(segment.timestamps) > 0)


def test_h264_mp4_with_bframes_samples_the_frame_of_each_timestamp(h264_mp4: Path) -> None:
    segments = list(iter_segments(str(h264_mp4), config=SMALL))
    assert_frames_match_timestamps(segments)
    times = np.concatenate([s.timestamps for s in segments])
    # 10 s at 2 fps: slots 0.0 .. 9.5; slot 10.0 lies at the end of the video, past its last frame.
    assert len(times) == 20
    grid = np.arange(20) / 2.0
    assert np.all(np.abs(times - grid) <= SamplingConfig().effective_tolerance)


def test_segments_are_windows_of_eight_that_tile_the_timeline_and_keep_the_short_tail(h264_mp4: Path) -> None:
    segments = list(iter_segments(str(h264_mp4), stream_id="cam", config=SMALL))
    assert [s.index for s in segments] == [0, 1, 2]
    assert [s.num_frames for s in segments] == [8, 8, 4]
    assert [s.first_frame_index for s in segments] == [0, 8, 16]
    assert segments[0].start == 0.0 and segments[1].start == 4.0
    assert all(s.stream_id == "cam" and s.sample_fps == 2.0 for s in segments)
    assert_tiles(segments, SMALL)


def test_frames_are_resized_to_the_16_pixel_grid_with_the_longer_edge_capped(h264_mp4: Path) -> None:
    # The fixture is 192 x 108: capped at 64 it becomes 64 x 32 (36 rounded to the grid).
    segment = next(iter(iter_segments(str(h264_mp4), config=SamplingConfig(max_edge=64))))
    assert segment.frames.shape == (8, 32, 64, 3)
    full = next(iter(iter_segments(str(h264_mp4))))
    assert full.frames.shape == (8, 108, 192, 3)  # not above 512: kept as it is, as the release keeps it


def test_non_reference_frames_are_skipped_by_the_codec(h264_mp4: Path) -> None:
    stream = iter_segments(str(h264_mp4), config=SMALL)
    list(stream)
    assert stream.stats.skipping_nonref
    assert stream.stats.frames_decoded < 300 * 0.8  # B-frames never decoded
    strict = iter_segments(str(h264_mp4), config=SamplingConfig(max_edge=64, tolerance=0.0))
    list(strict)
    assert not strict.stats.skipping_nonref and strict.stats.frames_decoded == 300


def test_zero_tolerance_samples_exactly_on_the_grid(h264_mp4: Path) -> None:
    segments = list(iter_segments(str(h264_mp4), config=SamplingConfig(max_edge=64, tolerance=0.0)))
    times = np.concatenate([s.timestamps for s in segments])
    assert np.allclose(times, np.arange(20) / 2.0)
    assert_frames_match_timestamps(segments)


def test_variable_frame_rate_mkv_uses_real_timestamps(vfr_mkv: Path) -> None:
    segments = list(iter_segments(str(vfr_mkv), config=SMALL))
    assert_frames_match_timestamps(segments)
    assert_tiles(segments, SMALL)
    times = np.concatenate([s.timestamps for s in segments])
    slots = np.concatenate([s.first_frame_index + np.arange(s.num_frames) for s in segments])
    # Irregular frames, yet each sample lies within the tolerance of its slot on the 2 fps grid.
    assert np.all(np.abs(times - slots / 2.0) <= 0.25 + 1e-9)
    assert not np.allclose(times, slots / 2.0)  # and real times are kept, not the grid's


def test_pauses_in_a_recording_leave_slots_empty_without_errors(paused_mkv: Path) -> None:
    stream = iter_segments(str(paused_mkv), config=SMALL)
    segments = list(stream)
    assert stream.stats.decode_errors == 0  # a pause in an MKV is not damage
    assert_frames_match_timestamps(segments)
    slots = np.concatenate([s.first_frame_index + np.arange(s.num_frames) for s in segments])
    # Nothing is sampled inside the pauses (3.3-5.0 s and 7.0-9.7 s)...
    times = np.concatenate([s.timestamps for s in segments])
    assert not np.any((times > 3.3 + 1e-6) & (times < 5.0 - 1e-6))
    assert not np.any((times > 7.0) & (times < 9.7 - 1e-6))
    # ...and every slot on either side of them is filled.
    assert set(range(0, 7)) <= set(slots) and set(range(10, 14)) <= set(slots) and set(range(20, 24)) <= set(slots)


def test_mpegts_with_nonzero_start_time_is_counted_from_its_first_frame(mpegts: Path) -> None:
    info = probe_source(str(mpegts))
    assert info.container == "mpegts" and info.start_time == pytest.approx(5.0, abs=0.1)
    segments = list(iter_segments(str(mpegts), config=SMALL))
    assert segments[0].start == 0.0
    assert_frames_match_timestamps(segments)
    assert sum(s.num_frames for s in segments) == 20


def test_shifted_stream_clock_does_not_shift_segment_times(offset_mp4: Path) -> None:
    stream = iter_segments(str(offset_mp4), config=SMALL)
    segments = list(stream)
    assert stream.info.start_time == pytest.approx(3.0)
    assert segments[0].timestamps[0] == 0.0
    assert_frames_match_timestamps(segments)


def test_custom_rate_and_window(h264_mp4: Path) -> None:
    config = SamplingConfig(fps=4.0, window=3, max_edge=64)
    segments = list(iter_segments(str(h264_mp4), config=config))
    assert segments[1].first_frame_index == 3 and segments[1].num_frames == 3
    assert abs(segments[1].start - 0.75) <= config.effective_tolerance
    assert_tiles(segments, config)
    assert_frames_match_timestamps(segments)


@pytest.mark.parametrize("fixture", ["h264_mp4", "vfr_mkv", "mpegts", "paused_mkv"])
@pytest.mark.parametrize("start", [1, 2])
def test_resuming_at_a_segment_gives_the_same_segments_as_a_full_run(
    fixture: str, start: int, request: pytest.FixtureRequest
) -> None:
    video = request.getfixturevalue(fixture)
    full_stream = iter_segments(str(video), config=SMALL)
    full = list(full_stream)
    # The memory stores each segment's first slot; resuming seeks to its grid window.
    slot = full[start].first_frame_index // SMALL.window * SMALL.window
    resumed_stream = iter_segments(str(video), config=SMALL, start_segment=start, start_slot=slot)
    resumed = list(resumed_stream)
    assert [s.index for s in resumed] == [s.index for s in full[start:]]
    for a, b in zip(full[start:], resumed, strict=True):
        assert (a.index, a.start, a.end, a.first_frame_index) == (b.index, b.start, b.end, b.first_frame_index)
        assert np.array_equal(a.timestamps, b.timestamps)
        assert np.array_equal(a.frames, b.frames)
    # It seeked: the first seconds were not decoded again.
    assert resumed_stream.stats.frames_decoded < full_stream.stats.frames_decoded - 20 * start


def test_start_time_resumes_at_the_segment_containing_it(h264_mp4: Path) -> None:
    segments = list(iter_segments(str(h264_mp4), config=SMALL, start_time=8.7))
    assert [s.index for s in segments] == [2]


def test_truncated_file_yields_what_is_there_and_warns(truncated_mp4: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="tempo.streaming"):
        stream = iter_segments(str(truncated_mp4), config=SMALL)
        segments = list(stream)
    assert_frames_match_timestamps(segments)
    last = float(segments[-1].timestamps[-1])
    assert 2.0 < last < 8.0
    assert stream.stats.decode_errors >= 1
    assert "truncated" in caplog.text


def test_damage_in_the_middle_is_skipped_with_a_warning_and_ingest_goes_on(corrupt_ts: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="tempo.streaming"):
        stream = iter_segments(str(corrupt_ts), config=SMALL)
        segments = list(stream)
    assert stream.stats.decode_errors >= 1
    assert "damaged" in caplog.text
    # Frames after the damage are still there, and none of the sampled frames is concealed garbage.
    assert float(segments[-1].timestamps[-1]) > 9.0
    assert_frames_match_timestamps(segments)
    assert sum(s.num_frames for s in segments) < 20  # the damaged stretch left slots empty


def test_progress_bar_reports_speed_as_times_realtime(h264_mp4: Path, capsys) -> None:
    list(iter_segments(str(h264_mp4), config=SMALL, progress=True))
    err = capsys.readouterr().err
    assert "× realtime" in err


def test_probe_describes_a_file_without_ingesting_it(h264_mp4: Path) -> None:
    info = probe_source(str(h264_mp4))
    assert (info.kind, info.live, info.codec, info.width, info.height) == ("file", False, "h264", 192, 108)
    assert info.average_fps == pytest.approx(30.0)
    assert info.duration == pytest.approx(10.0, abs=0.05)


def test_webm_vp9_is_read_like_any_other_container(tmp_path: Path) -> None:
    path = write_test_video(tmp_path / "clip.webm", duration=2.0, codec="vp9", size=(128, 64))
    segments = list(iter_segments(str(path), config=SMALL))
    assert [s.num_frames for s in segments] == [4]
    assert_frames_match_timestamps(segments)


def test_frames_without_timestamps_are_placed_one_frame_duration_apart(tmp_path: Path) -> None:
    # A raw H.264 stream carries no timestamps at all; FFmpeg assumes 25 fps for it.
    path = write_test_video(tmp_path / "raw.h264", duration=4.0, fps=30.0, container="h264")
    stream = iter_segments(str(path), config=SMALL)
    segments = list(stream)
    assert stream.info.average_fps == 25.0
    assert not stream.stats.skipping_nonref  # counting frames needs every frame decoded
    for segment in segments:
        for frame, t in zip(segment.frames, segment.timestamps, strict=True):
            source_index = read_frame_time(frame) * 30.0  # which frame of the file this is
            assert abs(source_index - t * 25.0) <= 1.05  # one frame (time codes are in whole ms)


def test_short_gop_mp4_decodes_only_keyframes(tmp_path: Path) -> None:
    # A keyframe every 0.5 s: each 2 fps slot has one within the 0.25 s tolerance (from the MP4 index).
    path = write_test_video(tmp_path / "short_gop.mp4", duration=6.0, fps=30.0, keyint=15)
    stream = iter_segments(str(path), config=SMALL)
    segments = list(stream)
    assert stream.stats.skip_mode == "NONKEY"
    assert stream.stats.frames_decoded == 12  # of 180 frames
    assert_frames_match_timestamps(segments)
    assert np.allclose(np.concatenate([s.timestamps for s in segments]), np.arange(12) / 2.0)
    resumed = list(iter_segments(str(path), config=SMALL, start_segment=1))
    assert np.array_equal(resumed[0].frames, segments[1].frames)


def test_a_timestamp_jump_is_a_gap_in_time_not_in_indices(tmp_path: Path) -> None:
    # Frames stop at 6 s and go on at 12 s: grid window 2 (8–12 s) has no frame at all.
    times = [i / 30 for i in range(180)] + [12.0 + i / 30 for i in range(120)]
    path = write_test_video(tmp_path / "jump.mp4", duration=16.0, fps=30.0, frame_times=times)
    segments = list(iter_segments(str(path), config=SMALL))
    assert [s.index for s in segments] == [0, 1, 2]
    assert [s.first_frame_index for s in segments] == [0, 8, 24]
    # The segment before the gap ends one interval after its last frame; the next carries the gap.
    assert segments[1].end == pytest.approx(float(segments[1].timestamps[-1]) + 0.5)
    assert segments[2].start == pytest.approx(12.0) and segments[2].gap_before == pytest.approx(12.0 - segments[1].end)
    assert [s.gap_before > 0 for s in segments] == [False, False, True]
    assert_frames_match_timestamps(segments)
    # Without the stored slot, a start index decodes from the top and skips: the same segments.
    again = list(iter_segments(str(path), config=SMALL, start_segment=2))
    assert [(s.index, s.start, s.end) for s in again] == [(s.index, s.start, s.end) for s in segments[2:]]
    # With it, the resume seeks past the gap.
    seeked = list(iter_segments(str(path), config=SMALL, start_segment=2, start_slot=16))
    assert [(s.index, s.start, s.end) for s in seeked] == [(s.index, s.start, s.end) for s in segments[2:]]
