"""Token quantisation (int8 + per-token float16 scale) and embedding encoding."""

from __future__ import annotations

import numpy as np
from tempo.memory import codec


def _tokens(seed: int = 0, k: int = 16, d: int = 2048) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(k, d)).astype(np.float32)


def test_token_error_is_within_half_a_quantisation_step_per_value() -> None:
    x = _tokens() * np.linspace(0.01, 100.0, 16, dtype=np.float32)[:, None]  # scales over 4 decades
    y = codec.decode_tokens(codec.encode_tokens(x), 2048)
    # The 8 largest |x| of a token are kept as float16; the rest share a step of their own max / 127.
    rest_max = np.sort(np.abs(x), axis=1)[:, -codec.OUTLIERS - 1]  # (K,)
    bound = rest_max / 127.0 * 0.5 + np.abs(x).max(axis=1) * 2.0**-11  # + float16 rounding
    assert (np.abs(y - x).max(axis=1) <= bound * 1.0001).all()


def test_token_relative_rms_error_is_below_one_percent_on_gaussian_tokens() -> None:
    x = _tokens(seed=1)
    y = codec.decode_tokens(codec.encode_tokens(x), 2048)
    rel_rms = np.sqrt(((y - x) ** 2).mean() / (x**2).mean())
    cosine = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
    assert rel_rms < 0.01
    assert cosine.min() > 0.9999


def test_outlier_channels_do_not_coarsen_the_other_values() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_t(3, size=(16, 2048)).astype(np.float32)
    x[:, rng.choice(2048, 4, replace=False)] *= 30  # a few huge channels, as LLM hidden states have
    y = codec.decode_tokens(codec.encode_tokens(x), 2048)
    assert np.sqrt(((y - x) ** 2).mean() / (x**2).mean()) < 0.02


def test_tokens_narrower_than_the_outlier_slots_round_trip() -> None:
    x = np.random.default_rng(4).normal(size=(3, 5)).astype(np.float32)
    np.testing.assert_allclose(codec.decode_tokens(codec.encode_tokens(x), 5), x, rtol=1e-3)


def test_token_record_size_and_a_prefix_decodes_the_first_tokens() -> None:
    x = _tokens(k=16, d=2048)
    blob = codec.encode_tokens(x)
    width = codec.token_record_bytes(2048)
    assert width == 2048 + 2 + 4 * codec.OUTLIERS and len(blob) == 16 * width
    full = codec.decode_tokens(blob, 2048)
    head = codec.decode_tokens(blob[: 4 * width], 2048)
    np.testing.assert_array_equal(head, full[:4])
    batch = codec.decode_token_batch([blob[: 4 * width], blob[: 4 * width]], 4, 2048)
    assert batch.shape == (2, 4, 2048)
    np.testing.assert_array_equal(batch[1], full[:4])


def test_all_zero_token_round_trips_to_zero() -> None:
    y = codec.decode_tokens(codec.encode_tokens(np.zeros((2, 8), np.float32)), 8)
    np.testing.assert_array_equal(y, 0.0)


def test_embedding_is_stored_as_float16() -> None:
    v = np.random.default_rng(2).normal(size=768).astype(np.float32)
    data = codec.encode_embedding(v)
    assert len(data) == 768 * 2
    np.testing.assert_allclose(codec.decode_embedding(data), v, rtol=1e-3, atol=1e-4)
