"""Persistent memory, storage only: Redis store (source of truth), embedded Redis, FAISS index, retention.

Owns: the Redis store (store.py: streams and IVF training; its segment commits and writer lease in
store_writes.py, segment reads in store_reads.py, the values it returns in store_types.py), its key
layout (keys.py) and atomic Lua scripts (scripts.py), records
and their codecs (records.py, codec.py), proxy clips of live sources (proxy.py), the open-weights
family's anchor thumbnails (thumbnails.py), the embedded
redis-server (embedded.py) and what differs on a Redis Cluster (cluster.py), the FAISS index
(index.py; one stream's part in stream_index.py, the cross-stream index in cross_index.py, IVF/PQ
training in ivf.py), retention and compaction (retention.py), the cold tier of old segments' token heads and
proxies in shards outside Redis (cold.py), a stream's writer lease (lease.py), frame replay for
recompression (replay.py), recall's caches in Redis (caches.py) and of anchor tokens in process
(anchors.py), the work queue's Redis transport (jobqueue.py; its frame codec frames.py, its Prometheus
metrics queue_metrics.py), monitoring's rules and alerts in Redis (alerts.py), the text track's cues and
keyword index (text_index.py, its appendable BM25 in bm25.py). The stages that run
models on it (ingest, the queue's producer and worker, recall) are tempo.engine's.

May import `tempo.streaming` and the shared top-level modules (`tempo.errors`, `tempo.inputs`,
`tempo.settings`); never `tempo.models` (no model code, not even lazily: what storage needs of a
model is a small Protocol, e.g. proxy.FrameProcessor), engine, agent, tools or service
(tests/test_import_stages.py).
"""

from tempo.memory.anchors import AnchorCache
from tempo.memory.embedded import EmbeddedRedis, connect, tempo_home
from tempo.memory.errors import (
    ClusterNotReadyError,
    InvalidStreamNameError,
    MemoryUnavailableError,
    OutOfOrderCommitError,
    SegmentNotFoundError,
    StreamBusyError,
    StreamSettingsMismatchError,
    UnknownStreamError,
)
from tempo.memory.index import SearchHit, SegmentIndex, Timeline
from tempo.memory.records import (
    FileReference,
    Gap,
    RetentionPolicy,
    SegmentRecord,
    StorageBytes,
    StreamSettings,
)
from tempo.memory.retention import RetentionWorker, collect_garbage, enforce_retention
from tempo.memory.store import RedisMemoryStore
from tempo.memory.store_types import CommitResult, CommitStatus, StreamInfo

__all__ = [
    "AnchorCache",
    "ClusterNotReadyError",
    "CommitResult",
    "CommitStatus",
    "EmbeddedRedis",
    "FileReference",
    "Gap",
    "InvalidStreamNameError",
    "MemoryUnavailableError",
    "OutOfOrderCommitError",
    "RedisMemoryStore",
    "RetentionPolicy",
    "RetentionWorker",
    "SearchHit",
    "SegmentIndex",
    "SegmentNotFoundError",
    "SegmentRecord",
    "StorageBytes",
    "StreamBusyError",
    "StreamInfo",
    "StreamSettings",
    "StreamSettingsMismatchError",
    "Timeline",
    "UnknownStreamError",
    "collect_garbage",
    "connect",
    "enforce_retention",
    "tempo_home",
]
