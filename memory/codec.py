"""Compact encodings of what a segment stores: memory tokens (int8 + per-token scale) and embeddings.

Tokens. The head of a segment's generic memory tokens, (K, D) float, is stored as K records of
`D + 2 + 4·R` bytes (R = 8), token-major:

    [scale: float16][R × (channel: uint16, value: float16)][D × int8]

The R largest-magnitude values of each token are kept exactly (float16) beside their channel, and
the other values are int8 on a scale of their own max |x| / 127 — so a few outlier channels, which
language-model hidden states have, do not coarsen every other value's step. The scale is rounded
to float16 *before* quantising, so decode uses the very value the encoder divided by; the error of
a non-outlier value is at most half a step (plus float16 rounding). Token t occupies bytes
[t·w, (t+1)·w), so the first k tokens of a segment are a prefix of the value and Redis GETRANGE
fetches exactly the anchors an answer needs. Measured (tests/memory/test_codec.py,
bench/storage.py): relative RMS error 0.7 % on Gaussian tokens, about 1.5 % on heavy-tailed tokens
with outlier channels. 16 tokens of D = 2048 take 33,312 bytes, the same 40 KiB allocation in Redis
as without outliers.

Embeddings. float16, (E,). Anything that indexes embeddings must index the *decoded* values so an
index rebuilt from Redis is identical to one built while ingesting.
"""

from __future__ import annotations

import numpy as np

_INT8_MAX = 127.0
OUTLIERS = 8  # R: values per token kept exactly
# Smallest normal float16: a scale below it would lose precision (all-near-zero tokens).
_MIN_SCALE = float(np.finfo(np.float16).tiny)
_HEAD = 2 + 4 * OUTLIERS  # bytes before the int8 values


def token_record_bytes(dim: int) -> int:
    """Bytes one stored token takes: scale, R outliers (channel + value), `dim` int8 values."""
    return dim + _HEAD


def encode_tokens(tokens: np.ndarray) -> bytes:
    """(K, D) float tokens → K·(D + 2 + 4R) bytes (see the module doc for the layout)."""
    x = np.asarray(tokens, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"tokens must be (K, D), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("tokens contain NaN or infinity")
    k, d = x.shape
    r = min(OUTLIERS, d)
    rows = np.arange(k)[:, None]
    channels = np.argpartition(-np.abs(x), r - 1, axis=1)[:, :r] if r < d else np.tile(np.arange(d), (k, 1))
    channels = np.sort(channels, axis=1).astype(np.uint16)  # (K, r)
    values = x[rows, channels].astype(np.float16)  # (K, r) kept exactly (to float16)
    rest = x.copy()
    rest[rows, channels] = 0.0
    scale = np.maximum(np.abs(rest).max(axis=1) / _INT8_MAX, _MIN_SCALE).astype(np.float16)  # (K,)
    q = np.clip(np.rint(rest / scale.astype(np.float32)[:, None]), -_INT8_MAX, _INT8_MAX).astype(np.int8)
    out = np.zeros((k, d + _HEAD), dtype=np.uint8)
    out[:, :2] = scale.view(np.uint8).reshape(k, 2)
    slots = np.zeros((k, OUTLIERS, 2), dtype=np.uint16)
    slots[:, :r, 0] = channels
    slots[:, :r, 1] = values.view(np.uint16)
    slots[:, r:] = slots[:, r - 1 : r]  # D < R only: unused slots repeat the last one
    out[:, 2:_HEAD] = slots.view(np.uint8).reshape(k, 4 * OUTLIERS)
    out[:, _HEAD:] = q.view(np.uint8)
    return out.tobytes()


def _decode_rows(rows: np.ndarray) -> np.ndarray:
    """(..., D + head) uint8 records → (..., D) float32."""
    lead = rows.shape[:-1]
    flat = rows.reshape(-1, rows.shape[-1])  # (N, w)
    scale = flat[:, :2].copy().view(np.float16).astype(np.float32)  # (N, 1)
    out = flat[:, _HEAD:].view(np.int8).astype(np.float32)  # (N, D)
    out *= scale
    slots = flat[:, 2:_HEAD].copy().view(np.uint16).reshape(-1, OUTLIERS, 2)  # (N, R, 2)
    values = slots[:, :, 1].copy().view(np.float16).astype(np.float32)  # (N, R)
    # Outliers replace their channel (their int8 is 0); repeated slots write the same value.
    out[np.arange(len(flat))[:, None], slots[:, :, 0].astype(np.int64)] = values
    return out.reshape(*lead, -1)


def decode_tokens(data: bytes, dim: int) -> np.ndarray:
    """Bytes of k whole token records → (k, dim) float32. `data` may be any whole-record prefix."""
    width = token_record_bytes(dim)
    if len(data) % width:
        raise ValueError(f"{len(data)} bytes is not a whole number of {width}-byte token records")
    return _decode_rows(np.frombuffer(data, dtype=np.uint8).reshape(-1, width))


def decode_token_batch(data: list[bytes], k: int, dim: int) -> np.ndarray:
    """Many segments' first-k-token prefixes → (n, k, dim) float32 in one vectorised pass."""
    width = token_record_bytes(dim)
    blob = b"".join(data)
    if len(blob) != len(data) * k * width:
        raise ValueError("some segments store fewer tokens than requested")
    return _decode_rows(np.frombuffer(blob, dtype=np.uint8).reshape(len(data), k, width))


def encode_embedding(vector: np.ndarray) -> bytes:
    """(E,) float → float16 bytes."""
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    if not np.isfinite(v).all():
        raise ValueError("embedding contains NaN or infinity")
    return v.astype(np.float16).tobytes()


def decode_embedding(data: bytes) -> np.ndarray:
    """float16 bytes → (E,) float32."""
    return np.frombuffer(data, dtype=np.float16).astype(np.float32)


def roundtrip_embedding(vector: np.ndarray) -> np.ndarray:
    """What an embedding reads back as: the value every index must use."""
    return decode_embedding(encode_embedding(vector))
