"""What differs when the memory lives on a Redis Cluster (`connect` returns redis-py's RedisCluster).

The key layout makes the difference small: every key of a stream carries the hash tag `{name}`
(memory/keys.py), so each Lua script and each MULTI/EXEC touches one slot and runs on one shard,
exactly as on a single server. What a cluster client needs beyond that is here:

  * scripts inside pipelines: redis-py's cluster pipeline refuses EVALSHA, so a script queued on
    one is sent as EVAL with its text (the shard caches it by SHA1 like SCRIPT LOAD would);
    `Script` does that and otherwise behaves as redis-py's registered script;
  * `is_cluster`, for the few places that differ: the work queue reads job streams slot by slot
    (memory/jobqueue.py), monitoring's deployment-wide keys share the hash tag `{tempo}` there
    (memory/keys.py's `MonitoringKeys`; alert events reach them through each stream's outbox, see
    memory/alerts.py), threads and checkpoints update their global indexes after each transaction
    (agent/threads.py, agent/checkpoint.py).

Cross-slot work needs nothing of its own: redis-py's cluster pipeline (transaction=False) groups
its commands per node and sends each group in one round trip, multi-key DEL is split per slot, and
SCAN iterates every primary. Transactions must stay within one slot (redis-py raises
CrossSlotTransactionError otherwise), which is why no module writes a stream's keys and a global
key in one MULTI/EXEC.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.cluster import ClusterPipeline


def is_cluster(client: Any) -> bool:
    """True for redis-py's cluster client and its pipelines."""
    return isinstance(client, redis.RedisCluster | ClusterPipeline)


class Script:
    """A Lua script registered on `client`, callable like redis-py's `Script`:
    `script(keys=[...], args=[...], client=pipe_or_None)`; also on a Redis Cluster pipeline."""

    def __init__(self, client: redis.Redis | redis.RedisCluster, text: str) -> None:
        self.text = text
        self._registered = client.register_script(text)

    def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = (), client: Any = None) -> Any:
        if isinstance(client, ClusterPipeline):
            return client.execute_command("EVAL", self.text, len(keys), *keys, *args)
        return self._registered(keys=list(keys), args=list(args), client=client)
