"""Proxy clips: the sampled frames of a live segment kept as a small H.264 clip for recompression.

A live source cannot be re-read, so to recompress a segment for a new question we keep its sampled
frames (8 at 2 fps by default) as a tiny video: downscaled so the longer edge is at most
`max_side` px (even sides), encoded with libx264 at a high CRF in one GOP (the later frames are
P-frames, nearly free on a fixed camera). The bytes are a 16-byte header + a raw Annex-B H.264
stream (no container: nothing to spend on boxes). Decoding scales back to the segment's own frame
size, so callers get (T, H, W, 3) uint8 of the original shape; detail lost to the downscale is the
price of ~30 KiB per 4 s segment (see bench/storage.py).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

_MAGIC = b"TPX1"
_HEADER = struct.Struct("<4sHHHHHH")  # magic, T, H, W, proxy h, proxy w, crf


@dataclass(frozen=True)
class ProxySettings:
    """How proxies are encoded. Defaults meet the 64 MiB per video-hour storage target."""

    max_side: int = 256  # px, longer edge of the proxy
    crf: int = 32  # libx264 constant rate factor (0 = lossless … 51 = worst)
    preset: str = "medium"
    # A busy scene (foliage in wind, crowds, rain) can cost several times a calm one. Above this
    # many bytes the clip is re-encoded at CRF +4 (up to twice), so a stream-hour stays within
    # its storage budget (900 segments × 24 KB ≈ 21 MiB of proxies). None: no cap.
    max_bytes: int | None = 24_000


def _proxy_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(height, width))
    # yuv420p needs even sides.
    h = max(2, round(height * scale / 2) * 2)
    w = max(2, round(width * scale / 2) * 2)
    return h, w


def encode_proxy(frames: np.ndarray, settings: ProxySettings | None = None) -> bytes:
    """(T, H, W, 3) uint8 RGB → proxy clip bytes (at most `settings.max_bytes` when reachable)."""
    settings = settings or ProxySettings()
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames must be (T, H, W, 3) with T ≥ 1, got shape {frames.shape}")
    crf = settings.crf
    clip = _encode(frames, settings, crf)
    for _ in range(2):
        if settings.max_bytes is None or len(clip) <= settings.max_bytes or crf >= 51:
            break
        crf = min(51, crf + 4)
        clip = _encode(frames, settings, crf)
    return clip


def _encode(frames: np.ndarray, settings: ProxySettings, crf: int) -> bytes:
    t, height, width, _ = frames.shape
    ph, pw = _proxy_size(height, width, settings.max_side)
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = pw, ph, "yuv420p"
    codec.time_base = Fraction(1, 2)  # nominal; real times live in the segment metadata
    codec.gop_size = max(t, 1)
    codec.options = {
        "crf": str(crf),
        "preset": settings.preset,
        "bf": "0",  # no B-frames: decode order = display order, no reordering delay
        "threads": "1",
        "x264-params": "log-level=none",
    }
    payload = bytearray()
    for i in range(t):
        frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
        frame = frame.reformat(width=pw, height=ph, format="yuv420p", interpolation="AREA")
        frame.pts = i
        for packet in codec.encode(frame):
            payload += bytes(packet)
    for packet in codec.encode(None):
        payload += bytes(packet)
    return _HEADER.pack(_MAGIC, t, height, width, ph, pw, crf) + bytes(payload)


def proxy_shape(data: bytes) -> tuple[int, int, int]:
    """(T, H, W) of the frames a proxy decodes to."""
    magic, t, height, width, _, _, _ = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise ValueError("not a Tempo proxy clip")
    return t, height, width


def decode_proxy(data: bytes) -> np.ndarray:
    """Proxy clip bytes → (T, H, W, 3) uint8 RGB at the segment's original frame size."""
    t, height, width = proxy_shape(data)
    codec = av.CodecContext.create("h264", "r")
    out: list[np.ndarray] = []
    # parse(None) flushes the parser's last buffered packet; the trailing None flushes the decoder.
    packets = [*codec.parse(data[_HEADER.size :]), *codec.parse(None), None]
    for packet in packets:
        for frame in codec.decode(packet):
            rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="BILINEAR")
            out.append(rgb.to_ndarray())
    if len(out) != t:
        raise ValueError(f"proxy clip decoded to {len(out)} frames, expected {t}")
    return np.stack(out)  # (T, H, W, 3)
