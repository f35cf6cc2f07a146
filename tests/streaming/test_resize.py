"""The compiled bicubic resize gives PIL's pixels, bit for bit (streaming/resize.py).

PIL is the spec (the release resizes with `Image.resize(size, BICUBIC)`): every case compares the
kernel's output with PIL's on the same array, for shrinking and enlarging, odd sizes, both pass
orders, the release's sizes and real decoded frames.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from tempo.streaming import resize
from tempo.streaming.resize import bicubic_coefficients, resize_rgb, vertical_pass_first
from tempo.streaming.sampling import target_size
from tempo.streaming.synthetic import write_test_video


def pil_resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize(size, Image.Resampling.BICUBIC))


def test_the_numba_kernel_is_what_runs() -> None:
    assert resize.compiled()


def test_random_images_and_sizes_equal_pil() -> None:
    rng = np.random.default_rng(25)
    for _ in range(150):
        height, width = (int(v) for v in rng.integers(1, 90, 2))
        out_h, out_w = (int(v) for v in rng.integers(1, 120, 2))
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        got = resize_rgb(rgb, (out_w, out_h))
        assert got.shape == (out_h, out_w, 3), (width, height, out_w, out_h)
        assert np.array_equal(got, pil_resize(rgb, (out_w, out_h))), (width, height, out_w, out_h)


@pytest.mark.parametrize(("source", "size"), [
    ((101, 57), (101, 23)),  # only the height changes: one vertical pass
    ((57, 101), (23, 101)),  # only the width changes: one horizontal pass
    ((40, 80), (28, 15)),  # the height shrinks by > 2 × what the width does: vertical pass first (Pillow 13)
    ((173, 78), (133, 35)),  # both shrink, the width more: horizontal pass first
    ((16, 10), (23, 5)),  # wider and lower
    ((3, 2), (97, 61)),  # a large enlargement of a tiny image
    ((1, 1), (5, 4)),
    ((301, 37), (512, 64)),
    ((37, 301), (16, 128)),
])
def test_each_pass_order_and_single_passes_equal_pil(source: tuple[int, int], size: tuple[int, int]) -> None:
    rgb = np.random.default_rng(sum(source) + sum(size)).integers(0, 256, (source[1], source[0], 3), dtype=np.uint8)
    assert np.array_equal(resize_rgb(rgb, size), pil_resize(rgb, size))


def test_the_pass_order_rule_is_pillow_13s() -> None:
    assert vertical_pass_first(40, 80, 28, 15)  # 65 rows fewer > 2 × 12 columns fewer
    assert not vertical_pass_first(173, 78, 133, 35)  # 43 ≤ 2 × 40
    assert not vertical_pass_first(1280, 720, 512, 288)  # the release's 720p case: horizontal first
    assert not vertical_pass_first(100, 100, 100, 100)


@pytest.mark.parametrize("source", [(1280, 720), (1920, 1080), (640, 480), (720, 1280), (854, 480), (513, 289)])
def test_the_release_sizes_equal_pil_on_textured_frames(source: tuple[int, int]) -> None:
    width, height = source
    size = target_size(width, height, 512)
    y, x = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    # Hard edges, a fine checkerboard, gradients and noise: overshoot, clipping and every rounding path.
    rgb = np.where(((x // 3 + y // 3) % 2 == 0)[..., None], noise, 255 - noise).astype(np.uint8)
    rgb[: height // 3] = ((x[: height // 3] * 255) // max(1, width - 1)).astype(np.uint8)[..., None]
    assert np.array_equal(resize_rgb(rgb, size), pil_resize(rgb, size))


def test_a_decoder_plane_with_padded_rows_is_read_in_place(videos: Path) -> None:
    path = write_test_video(videos / "odd_width.mp4", duration=0.5, fps=10.0, size=(202, 114), texture=True)
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0)).reformat(format="rgb24")
    plane = frame.planes[0]
    assert plane.line_size > 3 * frame.width  # swscale pads each row: the case being tested
    lines = np.frombuffer(plane, np.uint8)[: frame.height * plane.line_size].reshape(frame.height, plane.line_size)
    view = lines[:, : 3 * frame.width].reshape(frame.height, frame.width, 3)
    assert not view.flags.c_contiguous
    assert np.array_equal(resize_rgb(view, (96, 54)), pil_resize(frame.to_ndarray(), (96, 54)))


def test_a_frame_already_at_size_comes_back_as_is() -> None:
    rgb = np.zeros((4, 6, 3), dtype=np.uint8)
    assert resize_rgb(rgb, (6, 4)) is rgb


def test_without_numba_pil_resizes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resize, "_kernel", lambda: None)
    rgb = np.random.default_rng(1).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    assert not resize.compiled()
    assert np.array_equal(resize_rgb(rgb, (20, 11)), pil_resize(rgb, (20, 11)))


def test_tap_tables_are_pillows_fixed_point_and_cached() -> None:
    bounds, taps = bicubic_coefficients(1280, 512)
    assert taps.shape == (512, 11)  # support 2 × 2.5 → ceil(5) · 2 + 1 taps
    assert bounds[0].tolist() == [0, 6] and bounds[-1].tolist() == [1274, 6]
    sums = taps.sum(axis=1)
    assert np.all(np.abs(sums - (1 << resize.PRECISION_BITS)) <= taps.shape[1])  # each rounded once
    assert bicubic_coefficients(1280, 512)[1] is taps  # one table per (source, output) size
    with pytest.raises(ValueError, match="positive"):
        bicubic_coefficients(0, 5)
