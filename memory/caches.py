"""Caches of recall's results in Redis, each with a TTL, under the stream's hash tag.

`QueryCache` keeps query-aware compression results per (stream, model, question, segment), so a
follow-up turn or another process does not recompress; `AnswerCache` keeps greedy answers keyed by
everything they are a function of. Both are read and written by `RecallPipeline` (engine/recall.py).

    tempo:qc:{stream}:{digest}:{i}   STRING relevance score, M, D (<fII) + tokens (M × D float32)
    tempo:ac:{stream}:{digest}       STRING answer text (UTF-8)
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

import numpy as np
import redis

__all__ = ["AnswerCache", "QueryCache"]


_CACHE_HEADER = struct.Struct("<fII")  # relevance score, M, D


class QueryCache:
    """Query-aware compression results in Redis, keyed by (stream, model, question, segment), with a TTL.

    Tokens are kept in float32 so an answer from cached tokens is the answer from fresh ones.
    """

    def __init__(self, client: redis.Redis, *, prefix: str = "tempo", ttl: float = 3600.0) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = ttl

    def _key(self, stream: str, model_id: str, question: str, index: int) -> str:
        digest = hashlib.sha1(f"{model_id}\0{question}".encode()).hexdigest()[:20]
        return f"{self.prefix}:qc:{{{stream}}}:{digest}:{index}"

    def get_many(
        self, stream: str, model_id: str, question: str, indices: Sequence[int]
    ) -> dict[int, tuple[float, np.ndarray]]:
        """Cached (score, tokens (M, D) float32) for the indices that have them."""
        if not indices:
            return {}
        raw = self.client.mget([self._key(stream, model_id, question, i) for i in indices])
        out: dict[int, tuple[float, np.ndarray]] = {}
        for i, data in zip(indices, raw, strict=True):
            if data:
                score, m, d = _CACHE_HEADER.unpack_from(data)
                tokens = np.frombuffer(data, dtype=np.float32, offset=_CACHE_HEADER.size).reshape(m, d)
                out[int(i)] = (float(score), tokens)
        return out

    def put_many(
        self, stream: str, model_id: str, question: str, results: dict[int, tuple[float, np.ndarray]]
    ) -> None:
        pipe = self.client.pipeline(transaction=False)
        for i, (score, tokens) in results.items():
            tokens = np.ascontiguousarray(tokens, dtype=np.float32)
            payload = _CACHE_HEADER.pack(score, *tokens.shape) + tokens.tobytes()
            pipe.set(self._key(stream, model_id, question, i), payload, px=int(self.ttl * 1000))
        pipe.execute()


class AnswerCache:
    """Greedy answers in Redis, keyed by everything they are a function of, with a TTL."""

    def __init__(self, client: redis.Redis, *, prefix: str = "tempo", ttl: float = 3600.0) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = ttl

    def key(self, stream: str, parts: Sequence[bytes | str]) -> str:
        h = hashlib.sha1()
        for part in parts:
            data = part.encode() if isinstance(part, str) else part
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)
        return f"{self.prefix}:ac:{{{stream}}}:{h.hexdigest()[:24]}"

    def get(self, key: str) -> str | None:
        raw = self.client.get(key)
        return None if raw is None else (raw.decode() if isinstance(raw, bytes) else str(raw))

    def put(self, key: str, text: str) -> None:
        self.client.set(key, text.encode(), px=int(self.ttl * 1000))
