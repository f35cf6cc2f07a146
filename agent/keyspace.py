"""`RedisKeyspace`: the part the agent's Redis stores share — a client, a key prefix, a sliding expiry.

`RedisCheckpointSaver` (graph state) and `ThreadStore` (transcripts) keep a thread's keys under their
own prefix and, with `ttl` set, push every key of a thread `ttl` seconds past its last write. The
rule for `ttl`, the URL constructor and the expiry commands live here once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Self

import redis
from tempo.memory.cluster import is_cluster
from tempo.memory.embedded import connect


class RedisKeyspace:
    """Keys under `prefix` in the Redis of `client`, expiring `ttl` seconds after a thread's last write.

    Subclasses call `_bind_keyspace` from their `__init__` and pass their own keyword arguments
    through `from_url`.
    """

    client: redis.Redis
    prefix: str
    ttl_ms: int | None  # milliseconds (PEXPIRE's unit), at least 1; None: no expiry
    # On a Redis Cluster a transaction stays in one slot: a thread's keys share a `{id}` hash tag
    # there, and the stores' global indexes are updated right after each transaction, not inside it.
    cluster: bool

    def _bind_keyspace(self, client: redis.Redis, prefix: str, ttl: float | None) -> None:
        if ttl is not None and ttl <= 0:
            raise ValueError("ttl must be a positive number of seconds or None")
        self.client = client
        self.prefix = prefix
        self.ttl_ms = None if ttl is None else max(1, round(ttl * 1000))
        self.cluster = is_cluster(client)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """One on a new client for `url` (`tempo.memory.connect`: a cluster client for a Redis Cluster
        node); `options` are the constructor's keywords."""
        return cls(connect(url), **options)

    def close(self) -> None:
        self.client.close()

    def _expire(self, pipe: redis.client.Pipeline, keys: Iterable[str]) -> None:
        """Queue the sliding expiry of `keys` on `pipe` (nothing without a ttl)."""
        if self.ttl_ms is None:
            return
        for key in keys:
            pipe.pexpire(key, self.ttl_ms)
