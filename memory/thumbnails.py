"""Anchor thumbnails: one small RGB frame per segment, stored losslessly with the segment.

In the open-weights family (issue 23) an anchor is the smallest rendition of its segment: one frame on
a one-token-high grid (32 px high for Qwen3-VL; its width follows the segment's aspect). Reading it
from the source at question time means decoding the whole file for a question over a long stream
(bench/open_weights.py --anchors), so ingest stores those pixels with the segment (field `a` of its
hash, in the same atomic commit) and recall reads them instead. The bytes are exactly the pixels the
re-read path renders (zlib over raw uint8, no lossy codec), so an answer does not depend on which
path gave its anchors. Layout: b"TA1" + uint16 height + uint16 width (little endian) + zlib(H·W·3).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

_MAGIC = b"TA1"
_HEAD = struct.Struct("<3sHH")
MAX_THUMBNAIL_PIXELS = 64 * 4096  # a bound far above any one-token-high frame (32 px × ≤ 2048 px)


def encode_thumbnail(frame: np.ndarray) -> bytes:
    """(H, W, 3) uint8 → bytes (module docstring). ValueError for anything else or an oversized frame."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"an anchor thumbnail is an (H, W, 3) uint8 frame, got {frame.shape} {frame.dtype}")
    height, width = int(frame.shape[0]), int(frame.shape[1])
    if height * width > MAX_THUMBNAIL_PIXELS or min(height, width) < 1:
        raise ValueError(f"an anchor thumbnail of {width}×{height} px is out of bounds")
    return _HEAD.pack(_MAGIC, height, width) + zlib.compress(np.ascontiguousarray(frame).tobytes(), 6)


def decode_thumbnail(data: bytes) -> np.ndarray:
    """bytes → (H, W, 3) uint8. ValueError when the bytes are not a whole thumbnail."""
    if len(data) < _HEAD.size:
        raise ValueError("a stored anchor thumbnail is truncated")
    magic, height, width = _HEAD.unpack_from(data)
    if magic != _MAGIC:
        raise ValueError("a stored anchor thumbnail has an unknown layout")
    try:
        raw = zlib.decompress(data[_HEAD.size :])
    except zlib.error as exc:
        raise ValueError("a stored anchor thumbnail is corrupt") from exc
    if len(raw) != height * width * 3:
        raise ValueError("a stored anchor thumbnail is corrupt")
    return np.frombuffer(bytearray(raw), dtype=np.uint8).reshape(height, width, 3)  # writable
