"""Sources → decode → sample → segment: the public entry points `iter_segments` and `probe_source`.

Files (and standard input) are read in the caller's thread, as fast as the decoder goes; times come
from pts × time base, relative to the first decodable frame. Live sources (network streams, capture
devices) are read by a background thread into a bounded queue that drops its oldest segment when
the consumer falls behind; times follow the wall clock of capture, and a dropped connection is
reopened with exponential back-off, the lost signal recorded as a gap (the live reader: live.py).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import av
import av.container
import numpy as np
from tempo.streaming.convert import ConvertPipeline, file_pipeline
from tempo.streaming.decode import (
    IngestStats,
    OpenedSource,
    configure_decoder,
    decoded_frames,
    max_keyframe_spacing,
    source_fps,
)
from tempo.streaming.errors import NoDecodableFramesError, ReleaseSamplingError
from tempo.streaming.parallel_decode import file_frames, splits_file
from tempo.streaming.release import release_segments
from tempo.streaming.sampling import SamplingConfig, SlotSampler
from tempo.streaming.segment import Segment, SourceInfo
from tempo.streaming.sources import LIVE_SCHEMES, ResolvedSource, open_source, resolve_source
from tempo.streaming.windows import WindowAssembler
from tqdm import tqdm

log = logging.getLogger("tempo.streaming")

# ---------------------------------------------------------------------------------------------
# Probing


def _first_frame_time(resolved: ResolvedSource, config: SamplingConfig) -> float | None:
    """Time (s) of the first frame the decoder outputs, decoding nothing it does not have to.

    Opened separately so that a full run and a resumed run (which seeks) agree on time 0.
    """
    container, stream = open_source(resolved, connect_timeout=config.connect_timeout,
                                    read_timeout=config.read_timeout)
    try:
        stream.codec_context.thread_type = "SLICE"  # frame threads would delay the first frame
        stats = IngestStats()
        for t, _frame in decoded_frames(container, stream, config, stats, source=resolved.original):
            return t
        return None
    finally:
        container.close()


def _is_live(resolved: ResolvedSource, container: av.container.InputContainer) -> bool:
    if resolved.kind == "device":
        return True
    if resolved.kind != "network":
        return False
    scheme = resolved.uri.split("://", 1)[0].lower()
    # http(s) serves both files and live HLS; only a known duration says it is a file.
    return scheme in LIVE_SCHEMES or not (container.duration and container.duration > 0)


def _describe(resolved: ResolvedSource, container: av.container.InputContainer, stream: av.VideoStream,
              *, live: bool, start_time: float) -> SourceInfo:
    duration = None
    if not live:
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
    ctx = stream.codec_context
    return SourceInfo(
        uri=resolved.original,
        kind=resolved.kind,
        live=live,
        container=container.format.name if container.format else None,
        codec=ctx.name,
        width=ctx.width or None,
        height=ctx.height or None,
        average_fps=source_fps(stream),
        duration=duration,
        start_time=start_time,
    )


def probe_source(source: str, config: SamplingConfig | None = None) -> SourceInfo:
    """What a source is (container, codec, size, fps, duration) without ingesting it.

    For files, `start_time` is the time of the first decodable frame (the 0.0 of segment times).
    Raises the typed errors of `tempo.streaming.errors`. Standard input is not probed (reading it
    would consume it): its fields stay unknown.
    """
    config = config or SamplingConfig()
    resolved = resolve_source(source)
    if resolved.kind == "stdin":
        return SourceInfo(uri=source, kind="stdin", live=False)
    container, stream = open_source(resolved, connect_timeout=config.connect_timeout,
                                    read_timeout=config.read_timeout)
    try:
        live = _is_live(resolved, container)
        start = 0.0
        if not live:
            first = _first_frame_time(resolved, config)
            start = first if first is not None else 0.0
        elif stream.start_time is not None and stream.time_base is not None:
            start = float(stream.start_time * stream.time_base)
        return _describe(resolved, container, stream, live=live, start_time=start)
    finally:
        container.close()


# ---------------------------------------------------------------------------------------------
# The stream of segments


class SegmentStream(Iterator[Segment]):
    """An iterator of Segments that also exposes `info` (SourceInfo) and live `stats` (IngestStats).

    Close it (or use it as a context manager) to stop a live reader thread early.
    """

    def __init__(self, segments: Iterator[Segment], info: SourceInfo, stats: IngestStats,
                 on_close: Any = None) -> None:
        self._segments = segments
        self.info = info
        self.stats = stats
        self._on_close = on_close
        self.audio: Any = None  # a live source's audio track (streaming.audio.TimedAudio), when asked for
        # A live source's clock: (relative time of a connection's first frame, relative − stream time) each.
        self.anchors: list[tuple[float, float]] = []

    def __iter__(self) -> SegmentStream:
        return self

    def __next__(self) -> Segment:
        return next(self._segments)

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
        close = getattr(self._segments, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> SegmentStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_segments(
    source: str,
    *,
    stream_id: str = "default",
    config: SamplingConfig | None = None,
    start_segment: int = 0,
    progress: bool = False,
    start_time: float | None = None,
    start_slot: int | None = None,
    audio: bool = False,
) -> SegmentStream:
    """Decode, sample and segment `source` (path, URL, /dev/videoN or "-"), lazily.

    Grid window g of a file covers [g·window/fps, (g+1)·window/fps) seconds after the first frame;
    each grid window with frames is one segment, numbered 0, 1, 2, ... without holes (a stretch with
    no frames is a gap in time, see WindowAssembler). Only segments from `start_segment` on (and,
    with `start_time`, ending after that many seconds) are yielded, the same segments a full run
    gives. With `start_slot` (the first slot of segment `start_segment`'s grid window: its
    `first_frame_index` rounded down to a multiple of `window`, as the memory stores it) the file
    is resumed there by seeking; without it, earlier segments are decoded and skipped, because
    where segment k starts depends on the gaps before it. `progress` shows a tqdm bar on stderr
    (files). Opening errors are raised here, before the first segment. With `audio`, a live source
    also decodes its audio track beside the video, from the same container, into `.audio` (None when
    it has none); a file's audio is read on its own (streaming.audio.FileAudio).
    """
    config = config or SamplingConfig()
    if start_segment < 0:
        raise ValueError("start_segment must be ≥ 0")
    if start_slot is not None and (start_slot < 0 or start_slot % config.window):
        raise ValueError("start_slot must be a non-negative multiple of the window")
    resolved = resolve_source(source)
    container, stream = open_source(resolved, connect_timeout=config.connect_timeout,
                                    read_timeout=config.read_timeout)
    stats = IngestStats()
    try:
        live = _is_live(resolved, container)
        if config.sampling == "release" and (live or resolved.kind == "stdin"):
            raise ReleaseSamplingError(source, "a live stream or standard input has no length")
        if config.sampling == "release" and start_segment:
            raise ValueError("release sampling reads a whole file: it cannot start at a segment index")
        if config.decode != "cpu":
            from tempo.streaming.gpu import uncovered_notice

            notice = uncovered_notice(config.decode, kind=resolved.kind, live=live, sampling=config.sampling)
            if notice:
                log.warning("%s: %s", source, notice)
        if live:
            if start_segment or start_slot or start_time:
                raise ValueError("a live source cannot start at a segment index: it has no past to seek in")
            info = _describe(resolved, container, stream, live=True, start_time=0.0)
            from tempo.streaming.live import start_live  # live.py imports SegmentStream from here

            return start_live(OpenedSource(resolved, container, stream, info, config, stream_id, stats), audio=audio)
        origin = None if resolved.kind == "stdin" else _first_frame_time(resolved, config)
        if origin is None and resolved.kind != "stdin":
            raise NoDecodableFramesError(source, 0)
        nvdec = None
        if config.sampling == "stream" and resolved.kind == "file" and config.decode != "cpu":
            from tempo.streaming.gpu import open_on_gpu

            gpu = open_on_gpu(resolved, config, stream)
            if gpu is not None:
                stats.decoder = gpu.decoder
                if gpu.container is not None:  # FFmpeg's hwaccel: read through its own container
                    container.close()
                    container, stream = gpu.container, gpu.stream
                nvdec = gpu.nvdec  # PyNvVideoCodec: PyAV's container stays, for the file's facts
        info = _describe(resolved, container, stream, live=False, start_time=origin or 0.0)
        opened = OpenedSource(resolved, container, stream, info, config, stream_id, stats)
        if config.sampling == "release":
            assert origin is not None
            segments, _real_fps = release_segments(opened, origin=origin)
            return SegmentStream(segments, info, stats)
    except BaseException:
        container.close()
        raise
    segments = _file_segments(opened, origin=origin, first_slot=start_slot or 0,
                              first_index=start_segment if start_slot is not None else 0, progress=progress,
                              nvdec=nvdec)
    if (start_segment and start_slot is None) or start_time is not None:
        segments = _skip_before(segments, start_segment, start_time)
    return SegmentStream(segments, info, stats)


def _skip_before(segments: Iterator[Segment], index: int, time_s: float | None) -> Iterator[Segment]:
    """The segments from `index` on that end after `time_s` seconds (decoding the ones before)."""
    try:
        for segment in segments:
            if segment.index >= index and (time_s is None or segment.end > time_s + 1e-9):
                yield segment
    finally:
        close = getattr(segments, "close", None)
        if close is not None:
            close()


def _file_segments(
    opened: OpenedSource, *, origin: float | None, first_slot: int, first_index: int, progress: bool,
    nvdec: Any = None,
) -> Iterator[Segment]:
    """The file's segments; `nvdec` (nvcodec.NvdecFile, opened): its frames come from PyNvVideoCodec,
    from the file's start (a resumed run's earlier frames only pass through the sampler), and the
    CPU decodes the rest if it fails mid-file."""
    resolved, container, stream, info, config, stats = (
        opened.resolved, opened.container, opened.stream, opened.info, opened.config, opened.stats
    )
    tolerance = config.effective_tolerance
    stack = contextlib.ExitStack()  # the conversion threads, stopped however the reading ends
    frames: Iterator[tuple[float, Any]] | None = None
    try:
        slots = (origin, config.fps) if origin is not None else None  # exact frame skipping (decode.SlotCells)
        if nvdec is not None:
            from tempo.streaming.nvcodec import with_cpu_rescue

            frames = with_cpu_rescue(nvdec.frames(stats), nvdec.errors, lambda after: _cpu_frames(opened, slots, after),
                                     source=resolved.original, stats=stats)
        else:
            start = origin + first_slot / config.fps - tolerance if first_slot and origin is not None else None
            frames = _cpu_frames(opened, slots, start)
        assembler = WindowAssembler(opened.stream_id, config.window, config.fps, info, first_index=first_index)
        sampler: SlotSampler[Any] | None = None
        converting: ConvertPipeline[tuple[int, float]] | None = None
        grid = -1  # the grid window of the latest sampled frame
        bar = tqdm(total=info.duration, unit="s", disable=not progress, file=sys.stderr, leave=False,
                   desc=f"segments {resolved.original}"[:60],
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} s{postfix}")
        started = time.perf_counter()
        last_decoded: float | None = None
        for t, frame in frames:
            last_decoded = t
            if origin is None:
                origin = t  # standard input: the first frame we see is time 0
            if sampler is None:
                sampler = SlotSampler(config.fps, tolerance, first_slot=first_slot, origin=origin)
            if converting is None:
                # a decoded frame knows its size; a GOP-parallel worker's RGB (or None) does not
                width = getattr(frame, "width", None) or stream.codec_context.width
                height = getattr(frame, "height", None) or stream.codec_context.height
                converting = stack.enter_context(file_pipeline(config, width, height, decoder=stats.decoder))
            for slot, kept_t, kept in sampler.push(t, frame):
                if kept is None:  # never: a GOP-parallel decoder converts every frame a slot can take
                    log.warning("%s: no pixels for the frame at %.3f s; slot %d left empty", resolved.original,
                                kept_t - origin, slot)
                    continue
                # the first frame of a new grid window closes a segment: hand that one out at once
                opens_window, grid = slot // config.window != grid, slot // config.window
                for (done_slot, done_t), rgb in converting.put((slot, kept_t - origin), kept, wait=opens_window):
                    yield from _emit(assembler, stats, done_slot, done_t, rgb)
                    _advance(bar, done_t, started)
        if sampler is not None:
            end = None
            if origin is not None and info.duration:
                end = origin + info.duration  # the container's own end of the video
            elif last_decoded is not None and info.average_fps:
                end = last_decoded + 1.0 / info.average_fps
            assert converting is not None and origin is not None
            ready = [done for slot, kept_t, kept in sampler.finish(end) if kept is not None
                     for done in converting.put((slot, kept_t - origin), kept)]
            for (done_slot, done_t), rgb in [*ready, *converting.drain()]:
                yield from _emit(assembler, stats, done_slot, done_t, rgb)
        for segment in assembler.flush():
            stats.segments += 1
            yield segment
        if bar.total and last_decoded is not None and origin is not None:
            _advance(bar, min(bar.total, last_decoded - origin + 1.0 / (info.average_fps or config.fps)), started)
        bar.close()
        if stats.frames_decoded == 0 and stats.decode_errors:
            raise NoDecodableFramesError(resolved.original, stats.decode_errors)
        _check_complete(resolved, info, config, stats, last_decoded, origin)
    finally:
        if frames is not None and hasattr(frames, "close"):
            frames.close()  # GOP-parallel decoders: their threads stop here
        stack.close()
        container.close()



def _cpu_frames(opened: OpenedSource, grid: tuple[float, float] | None,
                target: float | None) -> Iterator[tuple[float, Any]]:
    """PyAV's decoded frames of the file (FFmpeg's software decoder, or its hwaccel; GOP-parallel where
    the file allows: streaming/parallel_decode.py), from a keyframe at or before `target` (seconds,
    stream clock) when given, else from the start."""
    container, stream, config, stats = opened.container, opened.stream, opened.config, opened.stats
    configure_decoder(stream, config, stats, keyframe_spacing=max_keyframe_spacing(stream, opened.info.duration))
    # GOP-parallel decoders (streaming/parallel_decode.py) where the file allows: their frames come
    # converted already (or None where no slot can take them)
    workers = splits_file(opened) if grid is not None else 0
    parallel = (lambda: file_frames(opened, grid, workers)) if workers and grid is not None else None
    if target is None:
        return parallel() if parallel else decoded_frames(container, stream, config, stats, source=opened.name,
                                                          grid=grid)
    return _frames_from(container, stream, config, stats, opened.name, target=target, grid=grid, decode=parallel)


def _frames_from(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    config: SamplingConfig,
    stats: IngestStats,
    source: str,
    *,
    target: float,
    grid: tuple[float, float] | None = None,
    decode: Callable[[], Iterator[tuple[float, Any]]] | None = None,
) -> Iterator[tuple[float, Any]]:
    """Decoded frames from the last keyframe at or before `target` (seconds, stream clock) on
    (`decode`: how, from where the container stands; by default `decoded_frames`).

    A container seek lands on a keyframe before the target in MP4 or Matroska, but in an MPEG-TS
    it may land on any packet, and the decoder then waits for the next keyframe, possibly past
    the target. So the first decoded frame is checked, and the seek repeated further back until it
    comes before the target: a resumed run then sees every frame a full run sees from there on.
    """
    if decode is None:
        def decode() -> Iterator[tuple[float, Any]]:
            return decoded_frames(container, stream, config, stats, source=source, grid=grid)
    back = 0.0
    for _attempt in range(8):
        container.seek(max(0, math.floor((target - back) / stream.time_base)), stream=stream, backward=True)
        frames = decode()
        first = next(frames, None)
        if first is not None and first[0] <= target + 1e-6:
            return itertools.chain([first], frames)
        frames.close()
        back = max(1.0, 2.0 * back)
    # Seeking never landed early enough (an index-less file): read it from the start.
    container.seek(0, backward=True)
    return decode()


def _check_complete(resolved: ResolvedSource, info: SourceInfo, config: SamplingConfig, stats: IngestStats,
                    last_decoded: float | None, origin: float | None) -> None:
    """Warn (and count) when a file stops well before the duration its container states: cut off."""
    if info.duration is None or last_decoded is None or origin is None:
        return
    covered = last_decoded - origin
    if covered < info.duration - max(1.0, 2.0 * config.interval):
        stats.decode_errors += 1
        message = (f"{resolved.original}: video stops at {covered:.2f} s of the {info.duration:.2f} s its "
                   "container states (truncated file?)")
        stats.warnings.append(message)
        log.warning(message)


def _emit(assembler: WindowAssembler, stats: IngestStats, slot: int, t: float,
          rgb: np.ndarray) -> Iterator[Segment]:
    t = round(t, 6)  # microseconds: pts × time base − origin leaves float noise (3.9999999999999996)
    stats.frames_sampled += 1
    stats.position = t
    for segment in assembler.add(slot, t, rgb):
        stats.segments += 1
        yield segment


def _advance(bar: tqdm, position: float, started: float) -> None:
    """Move the bar to `position` (s of source) and show the speed as × realtime."""
    if bar.disable:
        return
    elapsed = max(time.perf_counter() - started, 1e-6)
    bar.n = round(min(position, bar.total) if bar.total else position, 3)
    bar.set_postfix_str(f"{position / elapsed:.1f}× realtime", refresh=False)
    bar.refresh()
