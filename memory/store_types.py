"""The values RedisMemoryStore (memory/store.py) returns: a stream's header, commit results, what the
FAISS index reads of segments and a stream's IVF training."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from tempo.memory.errors import SourceChangedError
from tempo.memory.proxy import stream_proxy_settings
from tempo.memory.records import Gap, RetentionPolicy, StorageBytes, StreamSettings
from tempo.streaming.sources import fingerprint_file


class CommitStatus(StrEnum):
    COMMITTED = "committed"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    NOT_WRITER = "not_writer"  # another ingest (or queue producer) holds the stream's writer lease (nothing written)


@dataclass(frozen=True)
class CommitResult:
    index: int
    status: CommitStatus
    committed: int  # the stream's last committed index after this put


@dataclass(frozen=True)
class StreamInfo:
    """A stream's header: identity, settings, retained range and size."""

    name: str
    number: int  # unique, never reused: FAISS ids are number << 40 | index
    source: dict[str, Any]
    settings: StreamSettings
    retention: RetentionPolicy
    created: float  # Unix seconds
    first: int  # oldest retained index
    committed: int  # last fully committed index, -1 when none
    start: float | None  # seconds covered: first retained segment's start
    end: float | None  # last committed segment's end
    bytes: StorageBytes
    last_slot: int | None = None  # first sampling slot of the last committed segment (None: unknown)

    @property
    def segments(self) -> int:
        return max(0, self.committed - self.first + 1)

    @property
    def next_index(self) -> int:
        return self.committed + 1

    @property
    def resume_slot(self) -> int:
        """The sampling slot a file resumes at: the grid window after the last committed segment's.

        Streams written before slots were stored had no gaps in their indices, so index·window."""
        window = self.settings.window
        if self.last_slot is None or self.committed < 0:
            return self.next_index * window
        return (self.last_slot // window + 1) * window

    def check_source_unchanged(self, path: str | None = None) -> None:
        """Refuse (SourceChangedError) when the stream's file source differs from the file it was
        ingested from: its size, modification time or first MiB (the fingerprint stored at creation).
        Streams of live sources, and streams stored before fingerprints, pass."""
        stored = self.source.get("fingerprint")
        if not stored:
            return
        path = path or str(self.source.get("uri"))
        now = fingerprint_file(path)  # a FIFO, a directory or a missing file: one sentence
        changed = [what for key, what in (("size", "size"), ("mtime", "modification time"),
                                          ("head_sha256", "content")) if now[key] != stored.get(key)]
        if changed:
            raise SourceChangedError(
                f"{path} has changed since stream {self.name!r} was ingested from it ({', '.join(changed)} "
                "differ); re-ingest it under a new stream name"
            )

    def summary(self, gaps: Sequence[Gap] = ()) -> dict[str, Any]:
        """The `tempo streams --json` entry; `gaps` are the stream's stretches without video."""
        return {
            "name": self.name,
            "segments": self.segments,
            "start": self.start,
            "end": self.end,
            "bytes": self.bytes.total,
            "proxy": stream_proxy_settings(self.source, self.settings.extra),  # None: a file is re-read
            "gaps": [g.to_dict() for g in gaps],
            "gap_seconds": round(sum(g.seconds for g in gaps), 6),
            "family": self.settings.family,  # open weights (issue 23): the model family that wrote it
        }


@dataclass(frozen=True)
class IndexFeed:
    """What the FAISS index reads of a run of segments."""

    indices: np.ndarray  # (n,) int64
    starts: np.ndarray  # (n,) float64 seconds
    ends: np.ndarray  # (n,) float64 seconds
    first_frame_index: np.ndarray  # (n,) int64
    embeddings: np.ndarray  # (n, E) float32 (stored float16 values)


@dataclass(frozen=True)
class IvfTraining:
    """A stream's IVF training, shared by every process through Redis (memory/index.py)."""

    trained_at: int  # segments the stream had when trained
    centroids: np.ndarray  # (nlist, E) float32 coarse centroids
    pq: np.ndarray | None = None  # (M, 256, E/M) float32 PQ codebook: IVF-PQ; None: IVF-Flat
