"""Streaming ingest: sources (file, network, device, stdin) → decode → sample → segment.

Everything downstream consumes `Segment`s from `iter_segments`; `probe_source` describes a source
without ingesting it. `tempo.streaming.synthetic` writes real test videos whose frames show their
own timestamps.
"""

from tempo.streaming.decode import IngestStats
from tempo.streaming.errors import (
    NoDecodableFramesError,
    NotMediaError,
    NoVideoStreamError,
    SourceNotFoundError,
    StreamingError,
    UnreachableSourceError,
    UnsupportedSchemeError,
)
from tempo.streaming.ingest import SegmentStream, iter_segments, probe_source
from tempo.streaming.sampling import SamplingConfig, target_size
from tempo.streaming.segment import Segment, SourceInfo

__all__ = [
    "IngestStats",
    "NoDecodableFramesError",
    "NoVideoStreamError",
    "NotMediaError",
    "SamplingConfig",
    "Segment",
    "SegmentStream",
    "SourceInfo",
    "SourceNotFoundError",
    "StreamingError",
    "UnreachableSourceError",
    "UnsupportedSchemeError",
    "iter_segments",
    "probe_source",
    "target_size",
]
