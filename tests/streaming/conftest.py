"""Real video files for the streaming tests, written once per session with PyAV (no mocks).

Every frame shows its own time (tempo.streaming.synthetic), so a test can check that a sampled
frame really is the frame for its timestamp.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tempo.streaming.synthetic import (
    write_audio_only,
    write_corrupted,
    write_mpegts,
    write_not_media,
    write_test_video,
    write_truncated,
)

DURATION = 10.0  # seconds: two full 8-frame windows at 2 fps and a short last one
FPS = 30.0


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def h264_mp4(videos: Path) -> Path:
    """H.264 in MP4, 30 fps, 2 B-frames, a keyframe every second (so seeking has somewhere to land)."""
    return write_test_video(videos / "bframes.mp4", duration=DURATION, fps=FPS, size=(192, 108), bframes=2,
                            keyint=30)


@pytest.fixture(scope="session")
def vfr_mkv(videos: Path) -> Path:
    """Variable frame rate: frames 1/60 s to 1/12 s apart, in Matroska (millisecond timestamps)."""
    return write_test_video(videos / "vfr.mkv", duration=DURATION, fps=FPS, vfr=True, seed=3)


@pytest.fixture(scope="session")
def paused_mkv(videos: Path) -> Path:
    """A recording that pauses twice (1.7 s and 2.7 s without frames), 3 B-frames, 2 s GOPs."""
    times = [i / FPS for i in range(100)] + [5.0 + i / FPS for i in range(60)] + [9.7 + i / FPS for i in range(60)]
    return write_test_video(videos / "paused.mkv", duration=12.0, fps=FPS, frame_times=times, keyint=60, bframes=3)


@pytest.fixture(scope="session")
def mpegts(videos: Path) -> Path:
    """MPEG-TS with an audio track, its stream clock starting at 5 s (as a capture that began earlier)."""
    return write_mpegts(videos / "clip.ts", duration=DURATION, fps=FPS, audio=True, start_pts_offset=5.0)


@pytest.fixture(scope="session")
def offset_mp4(videos: Path) -> Path:
    """Timestamps that start 3 s into the stream clock."""
    return write_test_video(videos / "offset.mp4", duration=4.0, fps=FPS, start_pts_offset=3.0)


@pytest.fixture(scope="session")
def truncated_mp4(videos: Path) -> Path:
    """An MP4 (index at the front) whose second half is missing."""
    whole = write_test_video(videos / "whole_faststart.mp4", duration=DURATION, fps=FPS, faststart=True)
    return write_truncated(whole, videos / "truncated.mp4", keep=0.5)


@pytest.fixture(scope="session")
def corrupt_ts(videos: Path) -> Path:
    """MPEG-TS with 6 KiB of garbage in the middle."""
    whole = write_mpegts(videos / "whole.ts", duration=DURATION, fps=FPS, keyint=30)
    return write_corrupted(whole, videos / "corrupt.ts", at=0.5, length=6 * 1024)


@pytest.fixture(scope="session")
def audio_only(videos: Path) -> Path:
    return write_audio_only(videos / "voice.m4a", duration=2.0)


@pytest.fixture(scope="session")
def not_media(videos: Path) -> Path:
    return write_not_media(videos / "notes.mp4")
