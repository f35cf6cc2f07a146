"""Sampling rules on their own: output sizes, the slot grid, the configuration's limits."""

from __future__ import annotations

import pytest
from tempo.streaming import SamplingConfig, target_size
from tempo.streaming.sampling import SlotSampler


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ((1280, 720), (512, 288)),
        ((1920, 1080), (512, 288)),
        ((720, 1280), (288, 512)),  # portrait keeps its orientation
        ((640, 480), (512, 384)),
        ((160, 96), (160, 96)),  # small sources are not enlarged
        ((100, 60), (100, 60)),  # nor rounded: the release leaves frames within 512 untouched
        ((4000, 100), (512, 16)),  # never below 16 pixels
        ((1000, 562), (512, 288)),  # 287.7 → 288
        ((1000, 570), (512, 288)),  # 291.8 → 18.24 × 16 → 288
    ],
)
def test_target_size_caps_the_longer_edge_and_rounds_both_sides_to_16(source, expected) -> None:
    assert target_size(*source, max_edge=512) == expected


def test_target_size_keeps_the_aspect_ratio_within_one_grid_step() -> None:
    for width, height in [(1280, 720), (1920, 800), (1000, 1000), (854, 480), (3840, 1600)]:
        out_w, out_h = target_size(width, height, 512)
        assert out_w % 16 == 0 and out_h % 16 == 0
        assert max(out_w, out_h) <= 512
        # The short side is the exact scaled value rounded to the nearest multiple of 16.
        scale = max(out_w, out_h) / max(width, height)
        assert abs(min(out_w, out_h) - min(width, height) * scale) <= 8


def test_target_size_rounds_a_custom_max_edge_that_is_not_a_multiple_of_16_as_the_release() -> None:
    # Both sides are scaled by 300/1280 and rounded to 16: 18.75 → 19 × 16 = 304, 10.55 → 11 × 16 = 176.
    assert target_size(1280, 720, max_edge=300) == (304, 176)


def test_sampler_takes_the_frame_nearest_to_each_slot() -> None:
    sampler: SlotSampler[int] = SlotSampler(fps=2.0, tolerance=0.25)
    kept = []
    for i in range(31):  # 30 fps for one second
        kept += sampler.push(i / 30, i)
    kept += sampler.finish()
    assert [(slot, payload) for slot, _, payload in kept] == [(0, 0), (1, 15), (2, 30)]


def test_sampler_leaves_a_slot_empty_when_no_frame_is_within_tolerance() -> None:
    sampler: SlotSampler[str] = SlotSampler(fps=2.0, tolerance=0.25)
    kept = sampler.push(0.0, "a") + sampler.push(0.45, "b") + sampler.push(2.1, "c") + sampler.finish()
    # Slots 1.0 and 1.5 have no frame near them (a variable-frame-rate pause); 2.0 takes "c".
    assert [(slot, t, p) for slot, t, p in kept] == [(0, 0.0, "a"), (1, 0.45, "b"), (4, 2.1, "c")]


def test_sampler_uses_each_frame_at_most_once() -> None:
    sampler: SlotSampler[str] = SlotSampler(fps=4.0, tolerance=0.125)
    kept = sampler.push(0.0, "a") + sampler.push(0.375, "b") + sampler.finish()
    # "b" is exactly between slots 0.25 and 0.5: it fills the first, not both.
    assert [(slot, p) for slot, _, p in kept] == [(0, "a"), (1, "b")]


def test_sampler_counts_from_an_origin_that_may_be_negative() -> None:
    sampler: SlotSampler[int] = SlotSampler(fps=2.0, tolerance=0.25, origin=-1.2)
    kept = []
    for i in range(60):
        kept += sampler.push(-1.2 + i / 30, i)
    kept += sampler.finish()
    # Frames cover [0, 1.967] s after the origin; slot 4 (2.0 s) takes the last one, 33 ms away.
    assert [slot for slot, _, _ in kept] == [0, 1, 2, 3, 4]
    assert [round(t - (-1.2), 3) for _, t, _ in kept] == [0.0, 0.5, 1.0, 1.5, 1.967]


def test_sampler_can_start_at_a_later_slot_for_resuming() -> None:
    sampler: SlotSampler[int] = SlotSampler(fps=2.0, tolerance=0.25, first_slot=4)
    kept = []
    for i in range(1, 100):
        kept += sampler.push(i / 30, i)
    assert [slot for slot, _, _ in kept][:2] == [4, 5]
    assert [payload for _, _, payload in kept][:2] == [60, 75]


def test_config_defaults_follow_the_design() -> None:
    config = SamplingConfig()
    assert (config.fps, config.window, config.max_edge) == (2.0, 8, 512)
    assert config.effective_tolerance == 0.25  # half a sampling interval
    assert config.window_duration == 4.0


@pytest.mark.parametrize(
    "kwargs",
    [{"fps": 0}, {"window": 0}, {"max_edge": 8}, {"tolerance": 0.3}, {"tolerance": -0.1}, {"live_queue": 0}],
)
def test_config_rejects_values_that_make_no_sense(kwargs) -> None:
    with pytest.raises(ValueError):
        SamplingConfig(**kwargs)
