"""Frame clips of queued jobs: a segment's sampled frames, losslessly compressed for the work queue.

A job's frames are the sampled frames exactly (the proxy encoder is lossy, and a worker must compress
what a single-process ingest would, so that both give the same memory):

    magic (4 bytes) | T | H | W (uint32 each, little-endian) | compressed (T, H, W, 3) uint8 pixels

TQF2 is zstd level 1, what producers write; TQF1 (zlib) was the first format and is still read.
"""

from __future__ import annotations

import threading
import zlib

import numpy as np
import zstandard
from tempo.memory.errors import JobError

# The most pixel bytes one job's frames may decompress to (a 256-frame window at 1280×720 is 675 MiB):
# a header claiming more is refused before anything is allocated.
MAX_FRAME_BYTES = 1 << 30
_FRAMES_MAGIC = b"TQF1"  # zlib (the first format)
_ZSTD_MAGIC = b"TQF2"  # zstd


def encode_frames(frames: np.ndarray, *, codec: str = "zstd") -> bytes:
    """(T, H, W, 3) uint8 → lossless bytes: magic, T, H, W (uint32 each), the compressed pixels.

    `codec` "zstd" (level 1, magic TQF2) is what producers write: as dense as zlib level 1 at about a
    third of its CPU both ways (`bench/scale.py`). "zlib" (TQF1) was the first format; it is still
    read (jobs an older producer queued) and written only by the benchmark, as its baseline."""
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got shape {frames.shape}")
    dims = np.array(frames.shape[:3], dtype="<u4").tobytes()
    if codec == "zstd":
        return _ZSTD_MAGIC + dims + _zstd_compressor().compress(frames)  # (no copy: the buffer is read)
    if codec == "zlib":
        return _FRAMES_MAGIC + dims + zlib.compress(frames.tobytes(), 1)
    raise ValueError(f"unknown frame codec {codec!r} (zstd or zlib)")


def decode_frames(data: bytes) -> np.ndarray:
    """Bytes from `encode_frames` (either codec) → (T, H, W, 3) uint8 (read-only); JobError when
    they are not that."""
    magic = data[:4]
    if len(data) < 16 or magic not in (_FRAMES_MAGIC, _ZSTD_MAGIC):
        raise JobError("the job's frames are not a Tempo frame clip")
    t, h, w = (int(x) for x in np.frombuffer(data[4:16], dtype="<u4"))
    size = t * h * w * 3
    if not size or size > MAX_FRAME_BYTES:
        raise JobError(f"the job's frame header claims {t}×{h}×{w} frames ({size} bytes), which cannot be right")
    try:
        if magic == _ZSTD_MAGIC:
            raw = zstandard.ZstdDecompressor().decompress(data[16:], max_output_size=size)
        else:
            inflate = zlib.decompressobj()
            raw = inflate.decompress(data[16:], size + 1)  # never more than the header claims
    except (zlib.error, zstandard.ZstdError) as exc:
        raise JobError(f"the job's frames are corrupt ({exc})") from None
    if len(raw) != size:
        raise JobError(f"the job's frames hold {len(raw)} bytes, not {t}×{h}×{w}×3")
    return np.frombuffer(raw, dtype=np.uint8).reshape(t, h, w, 3)


_zstd_local = threading.local()


def _zstd_compressor() -> zstandard.ZstdCompressor:
    """One compressor per thread (a ZstdCompressor is not thread-safe; making one costs ~50 µs)."""
    comp = getattr(_zstd_local, "compressor", None)
    if comp is None:
        comp = _zstd_local.compressor = zstandard.ZstdCompressor(level=1)
    return comp


# A segment's audio in a job (speech recognition on the worker): magic | n (uint32) | zstd(int16 PCM)
# at 16 kHz mono; 4 s are 128 KB raw, a few per cent of the frames'.
_AUDIO_MAGIC = b"TQA1"
MAX_AUDIO_SAMPLES = 16_000 * 600  # ten minutes of 16 kHz audio: more than any window holds


def encode_audio(samples: np.ndarray) -> bytes:
    """(n,) float32 samples in [-1, 1] → the job's audio bytes (16-bit PCM, zstd)."""
    pcm = (np.clip(np.asarray(samples, np.float32), -1.0, 1.0) * 32767).astype("<i2")  # (n,)
    return _AUDIO_MAGIC + np.array([len(pcm)], "<u4").tobytes() + _zstd_compressor().compress(pcm.tobytes())


def decode_audio_bytes(data: bytes) -> np.ndarray:
    """Bytes from `encode_audio` → (n,) float32; JobError when they are not that."""
    if len(data) < 8 or data[:4] != _AUDIO_MAGIC:
        raise JobError("the job's audio is not a Tempo audio clip")
    n = int(np.frombuffer(data[4:8], "<u4")[0])
    if n > MAX_AUDIO_SAMPLES:
        raise JobError(f"the job's audio claims {n} samples, over the limit of {MAX_AUDIO_SAMPLES}")
    try:
        raw = zstandard.ZstdDecompressor().decompress(data[8:], max_output_size=2 * n) if n else b""
    except zstandard.ZstdError as exc:
        raise JobError(f"the job's audio is corrupt ({exc})") from None
    if len(raw) != 2 * n:
        raise JobError(f"the job's audio holds {len(raw)} bytes, not {n} samples")
    return np.frombuffer(raw, "<i2").astype(np.float32) / 32767.0
