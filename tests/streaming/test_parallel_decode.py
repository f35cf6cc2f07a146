"""GOP-parallel decoding of files (streaming/parallel_decode.py) changes nothing but the speed: every
segment (pixels, timestamps, edges) equals the one frame-threaded decoder's, bit for bit.
"""

from __future__ import annotations

import threading
from pathlib import Path

import av
import numpy as np
import pytest
from tempo.streaming import SamplingConfig, iter_segments
from tempo.streaming.decode import IngestStats, _Packets
from tempo.streaming.parallel_decode import MIN_JOB_PACKETS, _Fallback, _jobs
from tempo.streaming.synthetic import write_corrupted, write_test_video

SMALL = dict(max_edge=64, convert_workers=0)


def _sample(path: Path, decoders: int, **kwargs: object) -> tuple[list, object]:
    config = SamplingConfig(file_decoders=decoders, **{**SMALL, **kwargs.pop("config", {})})  # type: ignore[arg-type]
    with iter_segments(str(path), config=config, **kwargs) as stream:  # type: ignore[arg-type]
        return list(stream), stream.stats


def _assert_same(parallel: list, threaded: list) -> None:
    assert [s.index for s in parallel] == [s.index for s in threaded]
    for a, b in zip(parallel, threaded, strict=True):
        assert (a.start, a.end, a.first_frame_index) == (b.start, b.end, b.first_frame_index)
        assert np.array_equal(a.timestamps, b.timestamps)
        assert np.array_equal(a.frames, b.frames)


def _assert_parallel_equals_threaded(path: Path, *, decoders: int = 2, split: bool = True, **config: object) -> None:
    threaded, threaded_stats = _sample(path, 1, config=config)
    parallel, stats = _sample(path, decoders, config=config)
    assert threaded and threaded_stats.parallel_decoders == 0
    _assert_same(parallel, threaded)
    assert stats.skip_mode == threaded_stats.skip_mode
    assert stats.decode_errors == threaded_stats.decode_errors == 0
    assert 0 < stats.frames_decoded <= threaded_stats.frames_decoded  # a job stops after its last sampled frame
    if split:
        assert stats.parallel_decoders == decoders


@pytest.fixture(scope="module")
def gops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gops")


@pytest.mark.parametrize("keyint", [30, 45, 100])
def test_b_frame_files_of_several_gop_sizes(gops: Path, keyint: int) -> None:
    path = write_test_video(gops / f"k{keyint}.mp4", duration=8.0, fps=30.0, size=(96, 64), bframes=3,
                            keyint=keyint, texture=True)
    _assert_parallel_equals_threaded(path)


def test_a_job_stops_after_the_last_frame_a_slot_takes(gops: Path) -> None:
    # GOPs of 45 frames at 30 fps sampled at 2 fps: the frames after a GOP's last slot are not decoded.
    path = write_test_video(gops / "stop.mp4", duration=9.0, fps=30.0, size=(96, 64), bframes=0, keyint=45)
    _threaded, threaded_stats = _sample(path, 1)
    _parallel, stats = _sample(path, 2)
    assert stats.frames_decoded < threaded_stats.frames_decoded == 270


def test_tiny_gops_are_joined_into_jobs(gops: Path) -> None:
    # A keyframe every 4 frames: only keyframes are decoded ("NONKEY"), GOPs joined into jobs.
    path = write_test_video(gops / "tiny.mp4", duration=6.0, fps=30.0, size=(96, 64), bframes=1, keyint=4)
    _assert_parallel_equals_threaded(path, decoders=3)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        jobs = list(_jobs(_Packets(container, stream, IngestStats(), "tiny", None, read_ahead=True), "DEFAULT"))
    assert len(jobs) > 2 and all(isinstance(job, list) for job in jobs)
    assert all(len(job) >= MIN_JOB_PACKETS and job[0][0].is_keyframe for job in jobs[:-1])
    assert sum(len(job) for job in jobs) == 180  # every packet in exactly one job, in decode order


def test_intra_only_file(gops: Path) -> None:
    path = write_test_video(gops / "intra.mp4", duration=4.0, fps=25.0, size=(96, 64), bframes=0, keyint=1)
    _assert_parallel_equals_threaded(path, decoders=3)


def test_one_gop_for_the_whole_file_keeps_one_decoder(gops: Path) -> None:
    path = write_test_video(gops / "one.mp4", duration=5.0, fps=30.0, size=(96, 64), bframes=3, keyint=1000)
    _assert_parallel_equals_threaded(path, split=False)


def test_variable_frame_rate_and_pauses(vfr_mkv: Path, paused_mkv: Path) -> None:
    _assert_parallel_equals_threaded(vfr_mkv)
    _assert_parallel_equals_threaded(paused_mkv)


def test_open_gop_x264_is_exact(gops: Path) -> None:
    path = write_test_video(gops / "open.mp4", duration=8.0, fps=30.0, size=(96, 64), bframes=3, keyint=30,
                            x264_params="open-gop=1", texture=True)
    _assert_parallel_equals_threaded(path)
    # x264 gave some keyframes leading B-frames (shown before them, decoded after): no job starts there
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [p for p in container.demux(stream) if p.size]
        open_keys = {i for i, p in enumerate(packets) if p.is_keyframe and any(q.pts < p.pts for q in packets[i:i + 8])}
        container.seek(0)
        jobs = list(_jobs(_Packets(container, stream, IngestStats(), "x", None, read_ahead=True), "DEFAULT"))
    starts, at = set(), 0
    for job in jobs:
        assert isinstance(job, list)
        starts.add(at)
        at += len(job)
    assert open_keys and len(starts) > 1 and not starts & open_keys


def test_hevc(gops: Path) -> None:
    if "libx265" not in av.codecs_available:
        pytest.skip("this PyAV wheel has no HEVC encoder")
    path = write_test_video(gops / "hevc.mp4", duration=6.0, fps=30.0, size=(96, 64), codec="libx265",
                            bframes=3, keyint=30)
    _assert_parallel_equals_threaded(path)


def test_a_file_with_audio(gops: Path) -> None:
    path = write_test_video(gops / "audio.mp4", duration=6.0, fps=30.0, size=(96, 64), keyint=30, audio=True)
    _assert_parallel_equals_threaded(path)


@pytest.mark.parametrize("fps", [3.0, 6.25])
def test_other_grids(gops: Path, fps: float) -> None:
    path = write_test_video(gops / "pal.mp4", duration=6.0, fps=25.0, size=(96, 64), bframes=3, keyint=25)
    _assert_parallel_equals_threaded(path, fps=fps)


def test_a_resumed_run_gives_the_segments_of_a_full_run(h264_mp4: Path) -> None:
    full, _ = _sample(h264_mp4, 1)
    resumed, stats = _sample(h264_mp4, 2, start_segment=1, start_slot=8)
    _assert_same(resumed, full[1:])
    assert stats.parallel_decoders == 2
    skipped, _ = _sample(h264_mp4, 2, start_segment=2)  # decoding the segments before and dropping them
    _assert_same(skipped, full[2:])


def test_a_damaged_packet_is_counted_and_decoding_goes_on(gops: Path, caplog: pytest.LogCaptureFixture) -> None:
    whole = write_test_video(gops / "whole.mp4", duration=8.0, fps=30.0, size=(96, 64), keyint=30, texture=True)
    damaged = write_corrupted(whole, gops / "damaged.mp4", at=0.5, length=600)
    threaded, threaded_stats = _sample(damaged, 1)
    with caplog.at_level("WARNING", logger="tempo.streaming"):
        parallel, stats = _sample(damaged, 2)
    assert stats.decode_errors > 0 and threaded_stats.decode_errors > 0
    assert stats.warnings and "going on" in stats.warnings[-1]
    assert any("going on" in record.message for record in caplog.records)
    assert [s.index for s in parallel] == [s.index for s in threaded]
    # the segments before the damage (the first 3 s of 8) are untouched
    _assert_same(parallel[:1], threaded[:1])


def test_closing_early_stops_the_decoders(gops: Path) -> None:
    path = write_test_video(gops / "long.mp4", duration=10.0, fps=30.0, size=(96, 64), keyint=30)
    before = threading.active_count()
    with iter_segments(str(path), config=SamplingConfig(file_decoders=2, **SMALL)) as stream:  # type: ignore[arg-type]
        first = next(stream)
        assert stream.stats.parallel_decoders == 2
    assert first.index == 0
    assert not [t for t in threading.enumerate() if t.name.startswith("tempo-gop")]
    assert threading.active_count() <= before


def test_no_split_point_within_reach_goes_to_the_frame_threaded_decoder(
        h264_mp4: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GOPs of 30 packets, jobs of at least 100, at most 80 packets read without a split: one
    # fall-back from the first packet on, exact all the same.
    import tempo.streaming.parallel_decode as parallel_decode

    monkeypatch.setattr(parallel_decode, "MIN_JOB_PACKETS", 100)
    monkeypatch.setattr(parallel_decode, "MAX_JOB_PACKETS", 80)
    with av.open(str(h264_mp4)) as container:
        stream = container.streams.video[0]
        jobs = list(_jobs(_Packets(container, stream, IngestStats(), "x", None, read_ahead=True), "DEFAULT"))
    assert len(jobs) == 1 and isinstance(jobs[0], _Fallback) and jobs[0].packets[0][0].is_keyframe
    threaded, _ = _sample(h264_mp4, 1)
    parallel, stats = _sample(h264_mp4, 2)
    _assert_same(parallel, threaded)
    assert stats.parallel_decoders == 0  # the frame-threaded decoder took over


def test_file_decoders_is_checked() -> None:
    with pytest.raises(ValueError, match="file_decoders"):
        SamplingConfig(file_decoders=0)
