"""`RedisKeyspace`: the part the agent's Redis stores share — a client, a key prefix, a sliding expiry.

`RedisCheckpointSaver` (graph state) and `ThreadStore` (transcripts) keep a thread's keys under their
own prefix and, with `ttl` set, push every key of a thread `ttl` seconds past its last write. The
rule for `ttl`, the URL constructor and the expiry commands live here once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Self

import redis


class RedisKeyspace:
    """Keys under `prefix` in the Redis of `client`, expiring `ttl` seconds after a thread's last write.

    Subclasses call `_bind_keyspace` from their `__init__` and pass their own keyword arguments
    through `from_url`.
    """

    client: redis.Redis
    prefix: str
    ttl_ms: int | None  # milliseconds (PEXPIRE's unit), at least 1; None: no expiry

    def _bind_keyspace(self, client: redis.Redis, prefix: str, ttl: float | None) -> None:
        if ttl is not None and ttl <= 0:
            raise ValueError("ttl must be a positive number of seconds or None")
        self.client = client
        self.prefix = prefix
        self.ttl_ms = None if ttl is None else max(1, round(ttl * 1000))

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """One on a new client for `url` ("redis://..."); `options` are the constructor's keywords."""
        return cls(redis.Redis.from_url(url), **options)

    def close(self) -> None:
        self.client.close()

    def _expire(self, pipe: redis.client.Pipeline, keys: Iterable[str]) -> None:
        """Queue the sliding expiry of `keys` on `pipe` (nothing without a ttl)."""
        if self.ttl_ms is None:
            return
        for key in keys:
            pipe.pexpire(key, self.ttl_ms)
