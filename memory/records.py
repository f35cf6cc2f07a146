"""Typed records the memory stores and returns: stream settings, segment records, sizes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tempo.memory.proxy import FrameProcessor, ProxySettings, encode_proxy
from tempo.streaming.segment import Segment, is_live
from tempo.streaming.subtitles import Cue


@dataclass(frozen=True)
class StreamSettings:
    """How a stream's segments were made; resuming with different settings is refused.

    Defaults are the released model's: 2 fps, 8-frame windows, M = 128 memory tokens of D = 2048,
    of which the first `stored_tokens` (the head: anchors plus a reserve) are kept. The sampling
    (mode, fps, window, max_edge, tolerance) is compared too: recall re-reads a file's frames with it, so
    a resumed stream sampled otherwise would recompress frames other than the ones it stored.
    """

    model_id: str
    embedder_id: str
    embedding_dim: int  # E
    sample_fps: float = 2.0  # frames per second
    window: int = 8  # frames per segment
    max_edge: int = 512  # longest side of a sampled frame, pixels
    tolerance: float | None = None  # seconds a frame may lie from its slot; None: half an interval
    sampling: str = "stream"  # sampling mode (streaming.SamplingConfig.sampling)
    tokens_per_segment: int = 128  # M
    token_dim: int = 2048  # D
    stored_tokens: int = 16  # K ≤ M: head of the generic memory tokens kept per segment
    family: str = "tempo"  # open weights (issue 23): the model family that wrote the stream ("tempo" | "qwen3-vl")
    extra: dict[str, Any] = field(default_factory=dict)  # informational, not compared on resume

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamSettings:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        # Streams written before max_edge/tolerance were compared kept them in `extra`.
        for key in ("max_edge", "tolerance"):
            if key not in known and key in (data.get("extra") or {}):
                known[key] = data["extra"][key]
        return cls(**known)

    def comparable(self) -> dict[str, Any]:
        data = self.to_dict()
        data.pop("extra")
        return data


@dataclass(frozen=True)
class RetentionPolicy:
    """Keep a stream's segments at most `max_age` seconds old and/or at most `max_bytes` stored;
    past `compact_after` seconds, shrink a segment's stored token head to `compact_tokens`.

    Age is measured from the segment's capture time (wall clock) for live sources, from its commit
    time otherwise. The oldest segments go first. None means no limit. Compaction keeps what old
    segments are used for (anchors: the first few tokens; the proxy or file reference to
    recompress them as candidates) and frees most of their bytes: with the defaults a segment
    goes from 16 to 4 stored tokens, 33.3 KB to 8.3 KB. Past `cold_after` seconds a segment's token
    head and proxy clip leave Redis for the cold tier's shards under `cold_url` (memory/cold.py);
    recall reads them back transparently.
    """

    max_age: float | None = None  # seconds
    max_bytes: int | None = None  # payload bytes in Redis (the cold tier's are not counted)
    compact_after: float | None = None  # seconds
    compact_tokens: int = 4
    cold_after: float | None = None  # seconds: then token heads and proxies move to the cold tier
    cold_url: str | None = None  # where its shards go (directory or fsspec URL); None: the data dir's cold/

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_age": self.max_age,
            "max_bytes": self.max_bytes,
            "compact_after": self.compact_after,
            "compact_tokens": self.compact_tokens,
            "cold_after": self.cold_after,
            "cold_url": self.cold_url,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RetentionPolicy:
        data = data or {}
        return cls(
            max_age=data.get("max_age"),
            max_bytes=data.get("max_bytes"),
            compact_after=data.get("compact_after"),
            compact_tokens=int(data.get("compact_tokens", 4)),
            cold_after=data.get("cold_after"),
            cold_url=data.get("cold_url"),
        )

    @property
    def unlimited(self) -> bool:
        limits = (self.max_age, self.max_bytes, self.compact_after, self.cold_after)
        return all(limit is None for limit in limits)


@dataclass(frozen=True)
class FileReference:
    """Where a file-backed segment's frames can be re-read for recompression."""

    path: str
    start: float  # seconds
    end: float  # seconds

    def to_json(self) -> bytes:
        return json.dumps({"path": self.path, "start": self.start, "end": self.end}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> FileReference:
        obj = json.loads(data)
        return cls(path=obj["path"], start=float(obj["start"]), end=float(obj["end"]))


@dataclass(frozen=True)
class Gap:
    """A stretch of a stream's timeline with no video (seconds): the source went silent, a file's
    timestamps jump, a damaged stretch was skipped or a live segment was dropped for a slow consumer."""

    start: float  # end of the segment before
    end: float  # start of the segment after

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def describe(self) -> str:
        return f"no video from {self.start:.1f} s to {self.end:.1f} s"

    def to_dict(self) -> dict[str, float]:
        return {"start": round(self.start, 6), "end": round(self.end, 6)}


@dataclass(frozen=True)
class StorageBytes:
    """Payload bytes stored in Redis, by part (Redis's own per-key overhead not included), and in
    the cold tier's shards (not part of `total`)."""

    tokens: int = 0
    embedding: int = 0
    proxy: int = 0  # proxy clips (live) or file references (files), and anchor thumbnails (open weights)
    metadata: int = 0
    cold: int = 0  # token heads and proxy clips moved to the cold tier (memory/cold.py)

    @property
    def total(self) -> int:
        return self.tokens + self.embedding + self.proxy + self.metadata

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "total": self.total}


@dataclass(frozen=True)
class SegmentRecord:
    """One segment as the memory keeps it. Parts not requested from a read are None."""

    stream: str
    index: int
    start: float  # seconds from the source's start
    end: float  # seconds
    timestamps: np.ndarray  # (T,) float64 seconds
    frame_size: tuple[int, int]  # (H, W) of the sampled frames
    first_frame_index: int = 0
    wallclock_start: float | None = None  # Unix seconds, live sources
    gap_before: float = 0.0  # seconds
    committed_at: float | None = None  # Unix seconds, set by the store
    tokens: np.ndarray | None = None  # (K, D) float32: head of the generic memory tokens
    embedding: np.ndarray | None = None  # (E,) float32, L2-normalised
    file_ref: FileReference | None = None
    proxy: bytes | None = None  # encoded proxy clip (memory.proxy)
    cues: tuple[Cue, ...] = ()  # text-track cues overlapping the segment (committed with it, in its metadata)
    # Open weights (issue 23): the segment's anchor as the answerer reads it, one small frame
    # (memory/thumbnails.py), committed with it so that an anchor needs no re-read of the file.
    anchor: bytes | None = None

    @property
    def num_frames(self) -> int:
        return len(self.timestamps)

    def meta_json(self, committed_at: float) -> bytes:
        """The metadata part as stored: compact JSON, times rounded to microseconds; the cues (if
        any) under "cu", one [start, end, text, source, language] row each."""
        cues = {"cu": [c.to_row() for c in self.cues]} if self.cues else {}
        return json.dumps(
            {
                "s": round(self.start, 6),
                "e": round(self.end, 6),
                "ts": [round(float(t), 6) for t in self.timestamps],
                "hw": [int(self.frame_size[0]), int(self.frame_size[1])],
                "ff": int(self.first_frame_index),
                "wc": self.wallclock_start,
                "gap": self.gap_before,
                "c": round(committed_at, 3),
                **cues,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()

    @staticmethod
    def parse_meta(data: bytes) -> dict[str, Any]:
        return json.loads(data)

    @classmethod
    def from_segment(
        cls,
        segment: Segment,
        tokens: np.ndarray,
        embedding: np.ndarray,
        *,
        stored_tokens: int = 16,
        proxy: ProxySettings | None = None,
        processor: FrameProcessor | None = None,
        anchor: bytes | None = None,
    ) -> SegmentRecord:
        """The record of a processed segment: the first `stored_tokens` of its (M, D) generic tokens,
        its embedding, and a file reference (file sources) or a proxy clip of the frames `processor`
        (the compressor's) was fed (live sources; encoding costs ~20 ms of CPU per 8-frame segment,
        so call this off the model's thread)."""
        head = np.asarray(tokens, dtype=np.float32)[:stored_tokens]  # (K, D)
        live = is_live(segment.source)
        return cls(
            stream=segment.stream_id,
            index=segment.index,
            start=float(segment.start),
            end=float(segment.end),
            timestamps=np.asarray(segment.timestamps, dtype=np.float64),
            frame_size=(int(segment.frames.shape[1]), int(segment.frames.shape[2])),
            first_frame_index=int(segment.first_frame_index),
            wallclock_start=segment.wallclock_start,
            gap_before=float(segment.gap_before),
            tokens=head,
            embedding=np.asarray(embedding, dtype=np.float32).reshape(-1),
            file_ref=None
            if live
            else FileReference(segment.source.uri, float(segment.start), float(segment.end)),
            proxy=encode_proxy(segment.frames, proxy, processor=processor) if live else None,
            anchor=anchor,
        )

