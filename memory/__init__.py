"""Persistent memory: Redis store (source of truth), embedded Redis, FAISS index, retention."""

from tempo.memory.embedded import EmbeddedRedis, connect, tempo_home
from tempo.memory.errors import (
    InvalidStreamNameError,
    MemoryUnavailableError,
    OutOfOrderCommitError,
    StreamSettingsMismatchError,
    UnknownStreamError,
)
from tempo.memory.records import (
    FileReference,
    RetentionPolicy,
    SegmentRecord,
    StorageBytes,
    StreamSettings,
)
from tempo.memory.store import AnchorBatch, CommitResult, CommitStatus, RedisMemoryStore, StreamInfo

__all__ = [
    "AnchorBatch",
    "CommitResult",
    "CommitStatus",
    "EmbeddedRedis",
    "FileReference",
    "InvalidStreamNameError",
    "MemoryUnavailableError",
    "OutOfOrderCommitError",
    "RedisMemoryStore",
    "RetentionPolicy",
    "SegmentRecord",
    "StorageBytes",
    "StreamInfo",
    "StreamSettings",
    "StreamSettingsMismatchError",
    "UnknownStreamError",
    "connect",
    "tempo_home",
]
