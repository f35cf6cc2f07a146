"""PIL's bicubic resize of RGB frames, bit for bit, compiled with numba.

The release resizes its decoded frames with `PIL.Image.resize(size, BICUBIC)`: this module computes
exactly those pixels (tests/streaming/test_resize.py compares them with PIL's on many sizes), only
faster and straight from an RGB array (no PIL image round trip). It follows Pillow's
libImaging/Resample.c step by step:

- per axis, `bicubic_coefficients` builds the filter taps as `precompute_coeffs` does (cubic
  convolution with a = -0.5, support 2 × the scale when shrinking, so the filter antialiases; each
  output's taps normalised to sum 1) and turns them into fixed point as `normalize_coeffs_8bpc`
  does (PRECISION_BITS = 32 - 8 - 2 = 22 fraction bits, rounded half away from zero);
- the horizontal pass runs over the source rows the vertical pass will read, and its output is
  rounded and clipped to uint8 (`clip8`: + half, arithmetic shift by 22, clamp to 0..255); the
  vertical pass reads that uint8 image with the vertical taps, rounded and clipped alike. Pillow 13
  runs the vertical pass first when the height shrinks by more than twice as many pixels as the
  width (`vertical_pass_first`), and so does this module when Pillow 13 or later is installed.
A pass whose axis keeps its size is skipped, as in `ImagingResampleInner`. Integer sums are exact,
so the order of additions does not matter; the doubles of the tap computation are computed with the
same operations in the same order as the C code (IEEE doubles in both).

The kernel releases the GIL (`nogil`), so the conversion pool of streaming/convert.py runs it beside
decoding; the JIT output is cached on disk (`cache=True`) and the tap tables per (source size,
output size). Without numba, `resize_rgb` falls back to PIL (same pixels, slower).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

PRECISION_BITS = 32 - 8 - 2  # Resample.c: 8 bits of result, 2 for overflow and sign
BICUBIC_SUPPORT = 2.0  # the cubic filter is non-zero on (-2, 2)
_A = -0.5  # Resample.c's bicubic_filter constant
ROW_BLOCK = 16  # rows the horizontal pass turns on their side at a time

def _pillow_major() -> int:
    try:
        from PIL import __version__
    except ImportError:  # pragma: no cover - pillow is a declared dependency
        return 13
    return int(__version__.split(".")[0])


PILLOW_MAJOR = _pillow_major()

def _bicubic(x: float) -> float:
    """Resample.c `bicubic_filter`, the same operations in the same order."""
    if x < 0.0:
        x = -x
    if x < 1.0:
        return ((_A + 2.0) * x - (_A + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * _A
    return 0.0


@functools.lru_cache(maxsize=64)
def bicubic_coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(bounds, taps) of one axis, in_size → out_size pixels: bounds (out_size, 2) int64 holds each
    output's first source pixel and tap count, taps (out_size, ksize) int32 the fixed-point weights
    (22 fraction bits; zero beyond the tap count). Resample.c `precompute_coeffs` (box 0..in_size)
    followed by `normalize_coeffs_8bpc`."""
    if in_size <= 0 or out_size <= 0:
        raise ValueError(f"sizes must be positive, got {in_size} → {out_size}")
    scale = float(in_size) / out_size  # (double)(in1 - in0) / outSize with box (0, in_size)
    filterscale = max(scale, 1.0)
    support = BICUBIC_SUPPORT * filterscale
    ksize = math.ceil(support) * 2 + 1
    bounds = np.zeros((out_size, 2), dtype=np.int64)
    taps = np.zeros((out_size, ksize), dtype=np.int32)
    ss = 1.0 / filterscale
    one = float(1 << PRECISION_BITS)
    for xx in range(out_size):
        center = 0.0 + (xx + 0.5) * scale
        xmin = max(0, int(center - support + 0.5))  # C's (int) truncates toward zero, as int() does
        xmax = min(in_size, int(center + support + 0.5)) - xmin
        weights = [_bicubic((x + xmin - center + 0.5) * ss) for x in range(xmax)]
        ww = 0.0
        for w in weights:
            ww += w
        if ww != 0.0:
            weights = [w / ww for w in weights]
        for x, w in enumerate(weights):
            # (int)(±0.5 + w · 2^22): round half away from zero, then truncate as C does
            taps[xx, x] = int(-0.5 + w * one) if w < 0 else int(0.5 + w * one)
        bounds[xx] = (xmin, xmax)
    return bounds, taps


def _horizontal(src: np.ndarray, width: int, row0: int, rows: int, bounds: np.ndarray,
                taps: np.ndarray) -> np.ndarray:
    """Rows row0 .. row0 + rows of src (H, ≥ 3·width) uint8 RGB, resampled along x → (rows, 3·out) uint8.

    Resample.c sums each output pixel's taps along its row, which vectorises badly (three interleaved
    channels, a different window per pixel). The same integer sums are computed here on blocks of
    ROW_BLOCK rows turned on their side (block[x, c·ROW_BLOCK + b] = pixel x, channel c of row b), so
    that every tap multiplies one contiguous vector of 3·ROW_BLOCK values, as in the vertical pass.
    """
    out_w = bounds.shape[0]
    out = np.empty((rows, out_w * 3), dtype=np.uint8)
    block = np.zeros((width, 3 * ROW_BLOCK), dtype=np.int32)
    acc = np.empty(3 * ROW_BLOCK, dtype=np.int32)
    half = np.int32(1 << (PRECISION_BITS - 1))
    for r0 in range(0, rows, ROW_BLOCK):
        count = min(ROW_BLOCK, rows - r0)
        for x in range(width):  # writes in order: cheaper than reading in order here
            for c in range(3):
                for b in range(count):
                    block[x, c * ROW_BLOCK + b] = src[row0 + r0 + b, 3 * x + c]
        for xx in range(out_w):
            xmin = bounds[xx, 0]
            acc[:] = half
            for x in range(bounds[xx, 1]):
                k = taps[xx, x]
                column = block[xmin + x]
                for i in range(3 * ROW_BLOCK):
                    acc[i] += column[i] * k
            o = 3 * xx
            for b in range(count):  # clip8: the integer part, clamped to 0..255
                out[r0 + b, o] = min(255, max(0, acc[b] >> PRECISION_BITS))
                out[r0 + b, o + 1] = min(255, max(0, acc[ROW_BLOCK + b] >> PRECISION_BITS))
                out[r0 + b, o + 2] = min(255, max(0, acc[2 * ROW_BLOCK + b] >> PRECISION_BITS))
    return out


def _vertical(src: np.ndarray, row0: int, values: int, bounds: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """src (H, ≥ values) uint8 rows (RGB interleaved, `values` = 3·width), resampled along y from row
    row0 on → (out_h, values) uint8."""
    out_h = bounds.shape[0]
    out = np.empty((out_h, values), dtype=np.uint8)
    acc = np.empty(values, dtype=np.int32)
    half = np.int32(1 << (PRECISION_BITS - 1))
    for yy in range(out_h):
        ymin = bounds[yy, 0] - row0
        acc[:] = half
        for y in range(bounds[yy, 1]):
            k = taps[yy, y]
            line = src[ymin + y]
            for i in range(values):
                acc[i] += line[i] * k
        for i in range(values):
            out[yy, i] = min(255, max(0, acc[i] >> PRECISION_BITS))
    return out


def vertical_pass_first(width: int, height: int, out_w: int, out_h: int) -> bool:
    """Whether PIL resamples along y before x. Pillow 13 does when the height shrinks by more than
    twice as many pixels as the width (Resample.c `horizontal_first`); earlier Pillows never do.
    The order changes the pixels (the pass between is rounded to uint8), so it follows the Pillow
    installed beside the release's code, which is the one the goldens were made with."""
    if PILLOW_MAJOR < 13:
        return False
    return height - out_h > 0 and height - out_h > (width - out_w) * 2


@functools.cache
def _kernel() -> Callable[..., np.ndarray] | None:
    """The compiled `_resample` (numba, imported on first use: it costs a fraction of a second), or
    None when numba is not installed. Compiled once per machine: the JIT output is cached on disk."""
    try:
        import numba
    except ImportError:
        return None
    try:
        jit = numba.njit(nogil=True, cache=True)
        horizontal, vertical = jit(_horizontal), jit(_vertical)
    except RuntimeError:  # no writable cache location (a read-only install without a home): compile per process
        jit = numba.njit(nogil=True)
        horizontal, vertical = jit(_horizontal), jit(_vertical)

    def resample(src: np.ndarray, width: int, height: int, xbounds: np.ndarray, xtaps: np.ndarray,
                 ybounds: np.ndarray, ytaps: np.ndarray, vertical_first: bool) -> np.ndarray:
        out_w, out_h = xbounds.shape[0], ybounds.shape[0]
        if out_w == width:
            return vertical(src, 0, width * 3, ybounds, ytaps)
        if out_h == height:
            return horizontal(src, width, 0, height, xbounds, xtaps)
        if vertical_first:
            return horizontal(vertical(src, 0, width * 3, ybounds, ytaps), width, 0, out_h, xbounds, xtaps)
        # Only the source rows the vertical pass reads (Resample.c ybox_first .. ybox_last).
        first = int(ybounds[0, 0])
        last = int(ybounds[out_h - 1, 0] + ybounds[out_h - 1, 1])
        middle = horizontal(src, width, first, last - first, xbounds, xtaps)
        return vertical(middle, first, out_w * 3, ybounds, ytaps)

    return resample


def compiled() -> bool:
    """Whether the numba kernel runs (else PIL resizes)."""
    return _kernel() is not None


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 RGB → (size[1], size[0], 3) uint8, the pixels of PIL's `resize(size, BICUBIC)`.

    `rgb` may have padded rows (a view of a decoder plane whose line is longer than 3·W bytes); its
    pixels must be contiguous within a row. A frame already at `size` comes back unchanged.
    """
    height, width = rgb.shape[:2]
    out_w, out_h = size
    if (width, height) == (out_w, out_h):
        return rgb
    if out_w <= 0 or out_h <= 0:
        raise ValueError(f"output size must be positive, got {out_w}x{out_h}")
    kernel = _kernel()
    if kernel is None or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        return _resize_with_pil(rgb, size)
    if rgb.strides[1:] != (3, 1) or rgb.strides[0] < 3 * width:
        rgb = np.ascontiguousarray(rgb)
    # The rows as flat byte lines (row stride kept: no copy of a padded decoder plane).
    lines = np.lib.stride_tricks.as_strided(rgb, shape=(height, 3 * width), strides=(rgb.strides[0], 1))
    xbounds, xtaps = bicubic_coefficients(width, out_w)
    ybounds, ytaps = bicubic_coefficients(height, out_h)
    vertical_first = vertical_pass_first(width, height, out_w, out_h)
    out = kernel(lines, width, height, xbounds, xtaps, ybounds, ytaps, vertical_first)
    return out.reshape(out_h, out_w, 3)


def _resize_with_pil(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize(size, Image.Resampling.BICUBIC))
