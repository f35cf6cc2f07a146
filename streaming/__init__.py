"""Streaming ingest: sources (file, network, device, stdin) → decode → sample → segment.

Everything downstream consumes `Segment`s from `iter_segments`; `probe_source` describes a source
without ingesting it. `tempo.streaming.synthetic` writes real test videos whose frames show their
own timestamps.

Owns: sources and their safety rules (sources.py), PyAV decoding (decode.py), the 2 fps stream grid and
the release's sampling (sampling.py, release.py), windows and gaps in time (windows.py), segments
(segment.py, with the one "is live" rule), the file and live readers (readers.py), decoding on the GPU
(gpu.py: FFmpeg's CUDA hwaccel, else PyNvVideoCodec in nvcodec.py, and the torch conversion), text tracks
(subtitles.py; WebVTT renditions of HLS in hls_subtitles.py). May import only the
shared top-level modules (`tempo.errors`, `tempo.inputs`, `tempo.settings`): it is the first stage,
so never models, memory, agent, tools or service (tests/test_import_stages.py).
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
from tempo.streaming.readers import SegmentStream, iter_segments, probe_source
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
