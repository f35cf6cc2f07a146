"""Frame replay: the frames a stored segment was compressed from, read again for recompression.

A question recompresses its candidate segments from their frames: for a file source they are read
again from the file (one seek per run of consecutive segments, checked against what was stored,
so a replaced file cannot answer for the ingested one); for a live source they are decoded from the
proxy clip stored with the segment (memory/proxy.py). `load_segments` is the one reader.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np
from tempo.errors import TempoError
from tempo.memory.errors import RecompressError
from tempo.memory.proxy import decode_proxy
from tempo.memory.records import SegmentRecord, StreamSettings
from tempo.memory.store import RedisMemoryStore
from tempo.memory.store_types import StreamInfo
from tempo.streaming import SamplingConfig, Segment, SourceInfo, iter_segments

__all__ = ["load_segments", "sampling_of"]


def sampling_of(settings: StreamSettings) -> SamplingConfig:
    """The sampling a stream was ingested with (so re-read frames equal the ingested ones)."""
    return SamplingConfig(
        fps=settings.sample_fps,
        window=settings.window,
        max_edge=settings.max_edge,
        tolerance=settings.tolerance,
        sampling=settings.sampling,  # type: ignore[arg-type]
    )


def _runs(indices: Sequence[int]) -> list[list[int]]:
    """[3, 4, 5, 9, 10] → [[3, 4, 5], [9, 10]]: consecutive runs, one seek each."""
    runs: list[list[int]] = []
    for _, group in itertools.groupby(enumerate(sorted(indices)), key=lambda p: p[1] - p[0]):
        runs.append([i for _, i in group])
    return runs


def _file_runs(indices: Sequence[int], windows: dict[int, int]) -> list[list[int]]:
    """Runs of `indices` that are consecutive both as indices and as the file's windows."""
    runs: list[list[int]] = []
    for run in _runs(indices):
        current = [run[0]]
        for prev, i in itertools.pairwise(run):
            if windows[i] == windows[prev] + 1:
                current.append(i)
            else:
                runs.append(current)
                current = [i]
        runs.append(current)
    return runs


def load_segments(store: RedisMemoryStore, info: StreamInfo, indices: Sequence[int]) -> list[Segment]:
    """Frames of stored segments, for recompression: re-read from the source file (seeking to each
    run of consecutive segments) or decoded from the stored proxy clip (live sources)."""
    records = store.get_segments(info.name, list(indices), tokens=False, embedding=False, recompress=True)
    source = SourceInfo(**{k: v for k, v in info.source.items() if k in SourceInfo.__dataclass_fields__})
    by_index: dict[int, Segment] = {}
    file_indices: list[int] = []
    for i, record in zip(indices, records, strict=True):
        if record is None:
            raise RecompressError(f"segment {i} of stream {info.name!r} is no longer in memory")
        if record.proxy is not None:
            by_index[i] = _segment_from_record(record, decode_proxy(record.proxy), source, info.settings)
        elif record.file_ref is not None:
            file_indices.append(i)
        else:
            raise RecompressError(f"segment {i} of stream {info.name!r} has neither a source reference nor a proxy")
    if file_indices:
        path = records[list(indices).index(file_indices[0])].file_ref.path  # type: ignore[union-attr]
        info.check_source_unchanged(path)  # a replaced file must not answer for the ingested one
        sampling = sampling_of(info.settings)
        expected = {r.index: r for r in records if r is not None}
        # A run is consecutive in the file's windows, not only in indices: a work-queue job that was
        # dead-lettered (or a stretch without frames) takes no index, so the segment after it is
        # further on in the file, and reading on from the run's start would give the skipped one.
        window = sampling.window
        for run in _file_runs(file_indices, {i: r.first_frame_index // window for i, r in expected.items()}):
            try:
                # Seek to the run's first grid window (its first slot, as the memory stores it); the
                # segments read are numbered from run[0] and relabelled with the stored indices.
                slot = expected[run[0]].first_frame_index // window * window
                with iter_segments(path, stream_id=info.name, config=sampling, start_segment=run[0],
                                   start_slot=slot) as it:
                    for i, segment in zip(run, itertools.islice(it, len(run)), strict=False):
                        by_index[i] = dataclasses.replace(segment, index=i)
            except TempoError as exc:
                raise RecompressError(f"cannot re-read {path} for stream {info.name!r}: {exc}") from exc
            for i in run:
                got = by_index.get(i)
                want = expected[i]
                if got is None or abs(got.start - want.start) > 1e-3 or got.num_frames != want.num_frames:
                    raise RecompressError(
                        f"{path} no longer matches stream {info.name!r} (segment {i} differs); "
                        "re-ingest it under a new stream name"
                    )
    return [by_index[i] for i in indices]


def _segment_from_record(
    record: SegmentRecord, frames: np.ndarray, source: SourceInfo, settings: StreamSettings
) -> Segment:
    return Segment(
        stream_id=record.stream,
        index=record.index,
        start=record.start,
        end=record.end,
        timestamps=record.timestamps,
        frames=frames,
        source=source,
        sample_fps=settings.sample_fps,
        first_frame_index=record.first_frame_index,
        wallclock_start=record.wallclock_start,
        gap_before=record.gap_before,
    )
