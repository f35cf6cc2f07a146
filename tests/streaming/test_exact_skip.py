"""Skipping non-reference frames in a file changes nothing but the work: every slot gets the frame a
full decode gives it (decode.SlotCells), on B-frame files, variable frame rates, pauses and streams.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tempo.streaming import SamplingConfig, iter_segments
from tempo.streaming.decode import SlotCells
from tempo.streaming.synthetic import write_test_video

SMALL = SamplingConfig(max_edge=64, convert_workers=0)


def _sample(path: Path, config: SamplingConfig, **kwargs: object) -> tuple[list, object]:
    with iter_segments(str(path), config=config, **kwargs) as stream:  # type: ignore[arg-type]
        return list(stream), stream.stats


def _assert_same(skipped: list, full: list) -> None:
    assert [s.index for s in skipped] == [s.index for s in full]
    for a, b in zip(skipped, full, strict=True):
        assert np.array_equal(a.timestamps, b.timestamps)
        assert np.array_equal(a.frames, b.frames)


@pytest.fixture(scope="module")
def pyramid_mp4(videos: Path) -> Path:
    """3 B-frames with a pyramid, a keyframe every 250 frames: a third or more are non-reference."""
    return write_test_video(videos / "pyramid.mp4", duration=12.0, fps=30.0, size=(160, 90), bframes=3,
                            keyint=250, texture=True)


@pytest.mark.parametrize("name", ["pyramid_mp4", "h264_mp4", "vfr_mkv", "paused_mkv", "mpegts"])
def test_skipping_gives_the_frames_of_a_full_decode(name: str, request: pytest.FixtureRequest) -> None:
    path = request.getfixturevalue(name)
    skipped, stats = _sample(path, SMALL)
    full, full_stats = _sample(path, SamplingConfig(max_edge=64, convert_workers=0, skip_nonref=False))
    _assert_same(skipped, full)
    assert stats.frames_decoded <= full_stats.frames_decoded


def test_skipping_still_leaves_most_non_reference_frames_out(pyramid_mp4: Path) -> None:
    _segments, stats = _sample(pyramid_mp4, SMALL)
    assert stats.skip_mode == "NONREF"
    assert stats.frames_decoded < 360 * 0.8  # of 360 frames; only those a slot takes are added back


def test_a_resumed_run_gives_the_frames_of_a_full_run(pyramid_mp4: Path) -> None:
    full, _ = _sample(pyramid_mp4, SMALL)
    resumed, _ = _sample(pyramid_mp4, SMALL, start_segment=1, start_slot=8)
    _assert_same(resumed, full[1:])


def test_other_frame_rates_and_grids(tmp_path: Path) -> None:
    # 25 fps sampled at 3 fps: slots fall between frames, and ties between two frames occur.
    path = write_test_video(tmp_path / "pal.mp4", duration=6.0, fps=25.0, size=(96, 64), bframes=3, keyint=100)
    for fps in (3.0, 2.0, 6.25):
        skipped, _ = _sample(path, SamplingConfig(fps=fps, max_edge=64, convert_workers=0))
        full, _ = _sample(path, SamplingConfig(fps=fps, max_edge=64, convert_workers=0, skip_nonref=False))
        _assert_same(skipped, full)


def test_a_cell_holds_the_slots_nearest_to_its_frame() -> None:
    cells = SlotCells(origin=0.0, fps=2.0)
    assert cells.needed(0.0, iter([1 / 30]))  # no predecessor: kept (the edge of the file, or a seek)
    assert not cells.needed(1 / 30, iter([2 / 30]))  # slot 0.0 is nearer to the frame at 0.0
    assert cells.needed(0.5, iter([0.5 + 1 / 30, 0.5 - 1 / 30]))  # on slot 0.5 (neighbours out of order)
    assert cells.needed(0.6, iter([]))  # no successor known: kept
    assert list(cells.recent) == [0.0, 1 / 30, 0.5, 0.6]  # each frame is a neighbour of those to come


def test_both_frames_of_a_tie_are_kept() -> None:
    # Slot 0.5 lies halfway between the frames at 0.4 and 0.6: the sampler takes the earlier one,
    # and only a decoder that has both sees the tie.
    cells = SlotCells(origin=0.0, fps=2.0)
    cells.needed(0.2, iter([0.4]))
    assert cells.needed(0.4, iter([0.6]))
    assert cells.needed(0.6, iter([0.8]))
    assert not cells.needed(0.8, iter([1.1]))  # cell [0.7, 0.95]: no slot
