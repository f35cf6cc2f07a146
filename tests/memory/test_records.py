"""SegmentRecord.from_segment: what a processed segment stores, for file and live sources."""

from __future__ import annotations

import numpy as np
from tempo.memory import FileReference, SegmentRecord
from tempo.memory.proxy import decode_proxy
from tempo.streaming.segment import Segment, SourceInfo


def _segment(source: SourceInfo, wallclock: float | None = None) -> Segment:
    frames = np.random.default_rng(0).integers(0, 256, (8, 64, 96, 3), dtype=np.uint8)
    return Segment(
        stream_id="cam",
        index=3,
        start=12.0,
        end=16.0,
        timestamps=12.0 + np.arange(8) * 0.5,
        frames=frames,
        source=source,
        sample_fps=2.0,
        first_frame_index=24,
        wallclock_start=wallclock,
    )


def test_a_file_segment_keeps_a_reference_into_the_source() -> None:
    source = SourceInfo(uri="/videos/a.mp4", kind="file", live=False)
    tokens = np.random.default_rng(1).normal(size=(128, 32)).astype(np.float32)
    record = SegmentRecord.from_segment(_segment(source), tokens, np.ones(8), stored_tokens=16)
    assert record.file_ref == FileReference("/videos/a.mp4", 12.0, 16.0) and record.proxy is None
    assert record.tokens.shape == (16, 32)
    np.testing.assert_array_equal(record.tokens, tokens[:16])  # the head: the first tokens
    assert (record.index, record.first_frame_index, record.frame_size) == (3, 24, (64, 96))


def test_a_live_segment_keeps_a_proxy_of_its_frames() -> None:
    source = SourceInfo(uri="rtsp://cam/1", kind="network", live=True)
    segment = _segment(source, wallclock=1.8e9)
    record = SegmentRecord.from_segment(segment, np.zeros((128, 32), np.float32), np.ones(8))
    assert record.file_ref is None and record.wallclock_start == 1.8e9
    assert decode_proxy(record.proxy).shape == segment.frames.shape
