"""Proxy clips of live segments: small H.264 clips that decode to the segment's frame shape."""

from __future__ import annotations

import numpy as np
import pytest
from tempo.memory.proxy import ProxySettings, decode_proxy, encode_proxy, proxy_shape


def _scene(t: int = 8, h: int = 288, w: int = 512) -> np.ndarray:
    """A smooth textured background with a block moving right: (T, H, W, 3) uint8."""
    yy, xx = np.mgrid[0:h, 0:w]
    red = 128 + 60 * np.sin(xx / 17 + yy / 23)
    green = 100 + 50 * np.cos(yy / 11)
    blue = 90 + 40 * np.sin((xx + yy) / 29)
    bg = np.stack([red, green, blue], -1)
    frames = np.repeat(bg[None], t, axis=0)
    for i in range(t):
        frames[i, 100:160, 50 + 20 * i : 110 + 20 * i] = (200, 30, 30)
    return frames.clip(0, 255).astype(np.uint8)


def test_proxy_decodes_to_the_segments_frame_count_and_size() -> None:
    frames = _scene()
    clip = encode_proxy(frames)
    assert proxy_shape(clip) == (8, 288, 512)
    decoded = decode_proxy(clip)
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8


def test_proxy_is_small_and_close_to_the_frames() -> None:
    frames = _scene()
    clip = encode_proxy(frames)
    decoded = decode_proxy(clip).astype(np.float32)
    assert len(clip) < 20_000  # bytes for 8 frames
    assert np.abs(decoded - frames).mean() < 8.0  # out of 255, after a 2× downscale and CRF 32
    # The moving block is where it was in every frame.
    for i in range(8):
        block = decoded[i, 110:150, 60 + 20 * i : 100 + 20 * i].mean(axis=(0, 1))
        assert block[0] > 150 and block[1] < 80


@pytest.mark.parametrize("t", [1, 2, 8])
def test_proxy_keeps_short_windows(t: int) -> None:
    frames = _scene(t=t, h=64, w=96)
    assert decode_proxy(encode_proxy(frames, ProxySettings(max_side=64))).shape == (t, 64, 96, 3)


def test_lower_crf_gives_a_closer_proxy() -> None:
    frames = _scene()
    err = {
        crf: np.abs(decode_proxy(encode_proxy(frames, ProxySettings(crf=crf))).astype(float) - frames).mean()
        for crf in (20, 40)
    }
    assert err[20] < err[40]


def test_a_busy_clip_is_re_encoded_coarser_to_stay_under_the_byte_cap() -> None:
    noisy = np.random.default_rng(0).integers(0, 256, (8, 288, 512, 3), dtype=np.uint8)  # worst case
    uncapped = encode_proxy(noisy, ProxySettings(max_bytes=None))
    capped = encode_proxy(noisy, ProxySettings(max_bytes=len(uncapped) // 2))
    assert len(capped) < len(uncapped)
    assert decode_proxy(capped).shape == noisy.shape
