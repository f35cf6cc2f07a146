"""GOP-parallel decoding of files: several decoders on whole GOPs, side by side.

One decoder's frame threads keep it busy on several frames at once, but they cost CPU of their own
(each thread waits for the rows of the frames it references) and leave the cores partly idle
while Python demuxes and samples. A file whose keyframes start clean GOPs can instead be cut into
jobs that decode independently: the reading thread demuxes the file once and cuts its packets at
*clean split points*, keyframes K such that every packet before K in decode order is shown before
K and none of the LOOKAHEAD_PACKETS after it is shown before K (an open GOP's leading frames, which
reference the previous GOP, forbid a split there). Consecutive GOPs are joined into jobs of at
least MIN_JOB_PACKETS packets, and `file_decoders` threads each decode whole jobs on a codec
context of their own, opened on the same file, with FRAME_THREADS_PER_DECODER frame threads
(FFmpeg releases the GIL while decoding). A job stops after the last packet whose frame a slot
may take (the rest of its GOP is shown before the next job starts, in no slot's cell). Each worker
also converts, in its own thread, the frames a slot can take (streaming/convert.py: swscale and the
resize kernel release the GIL too) and drops the rest as decoded YUV. Results come back in job
order, at most JOBS_PER_DECODER jobs per decoder in flight.

Exactness: a job decoded from its keyframe on a flushed decoder gives the very frames the
continuous decode gives (a clean GOP references nothing before it), the codec is told per packet
what it may skip exactly as the frame-threaded path tells it (decode.SlotCells, from the same
look-ahead), and frame times are computed by the same rule. The frames a job leaves out at its end
are nearest to no slot, so the sampler takes the same frames, and every frame it can take carries
its pixels: a worker converts a frame when a slot lies within the tolerance of it and either in
its cell (halfway to its decoded neighbours) or after a gap of a whole sampling interval (where
SlotSampler may take a frame that is not the nearest), and always at a job's edges, whose
neighbours it does not see.

A file with no clean split point within MAX_JOB_PACKETS (one long GOP, open GOPs, packets without
timestamps) goes on from that point on the frame-threaded decoder (`decode.decoded_frames`).
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import av
import av.container
import numpy as np
from tempo.streaming.convert import FrameConverter
from tempo.streaming.decode import (
    IngestStats,
    OpenedSource,
    SlotCells,
    _Packets,
    _warn,
    cell_holds_slot,
    damaged_warning,
    decoded_frames,
    frame_seconds,
    source_fps,
    undecodable_warning,
)
from tempo.streaming.sampling import TIME_EPSILON, target_size
from tempo.streaming.sources import open_source

log = logging.getLogger("tempo.streaming")

# Fewest packets in a job: short GOPs (or an intra-only file) are joined until a job holds this many,
# so that the cost of a job (a flush, a hand-over between threads) stays small beside its decoding.
MIN_JOB_PACKETS = 48
# Most packets read without a clean split point before the rest of the file goes to one frame-threaded
# decoder (a single long GOP, open GOPs): a job's packets are held in memory until it is decoded.
MAX_JOB_PACKETS = 2048
# Jobs in flight per decoder: a job waits for its turn while the oldest (whose frames go out first)
# is decoded, so that no decoder idles behind a slow job. A job in flight holds its packets and, once
# decoded, its sampled frames at the output size (never full-size frames).
JOBS_PER_DECODER = 2
# Frame threads of each decoder. One (a single-threaded decoder) costs the least CPU and fills the
# cores of an idle machine; but on a machine other work also loads, the scheduler gives threads that
# never sleep less of it than FFmpeg's frame threads, which wait on each other and wake up often
# (measured on the 2-core machine at load 5-6, 120 s 720p H.264: two single-threaded decoders
# 9.5-10.2 s, two decoders of 3 frame threads 5.1-7.0 s, one of 6 frame threads 6.1-8.9 s, for
# 6.9-7.3, 7.4-7.5 and 7.5-7.8 s of CPU). On the idle machine (5-min 720p30 H.264, 3 runs each,
# alternating, ffmpeg 16.2 s): 1, 2 and 3 frame threads took 10.1, 10.4 and 10.7 s (1.61×, 1.56× and
# 1.51× ffmpeg). Two keep most of the idle machine's gain and hold up when other work competes.
FRAME_THREADS_PER_DECODER = 2
# Containers whose packets carry presentation times and whose files are read from a path.
SPLIT_FORMATS = ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm")
# Decoders whose keyframe packets start independently decodable GOPs when the split rule holds.
SPLIT_CODECS = ("h264", "hevc", "mpeg4", "mpeg2video", "vp8", "vp9", "av1", "libdav1d", "mjpeg")

Payload = np.ndarray | None  # a sampled frame's RGB at the output size, or None (no slot can take it)


def default_file_decoders() -> int:
    """Decoders for reading a file: one per core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def splits_file(opened: OpenedSource) -> int:
    """How many GOP-parallel decoders read this file; 0 when it keeps the frame-threaded decoder.

    Only local files (each decoder opens the file on its own) in MP4 or Matroska, decoded on the
    CPU by a codec listed in SPLIT_CODECS. An MP4's index (read when it opens) must show at least
    three keyframes; Matroska loads its index lazily, so there only the cutting tells (a file
    without a split point within MAX_JOB_PACKETS goes to the frame-threaded decoder).
    """
    workers = opened.config.file_decoders or default_file_decoders()
    container, stream = opened.container, opened.stream
    fmt = container.format.name if container.format is not None else ""
    if (workers < 2 or opened.resolved.kind != "file" or opened.stats.decoder != "cpu" or fmt not in SPLIT_FORMATS
            or stream.codec_context.name not in SPLIT_CODECS):
        return 0
    if fmt != SPLIT_FORMATS[0]:
        return workers
    try:
        keyframes = sum(1 for entry in stream.index_entries if entry.is_keyframe)
    except (AttributeError, av.error.FFmpegError):
        return 0
    return workers if keyframes >= 3 else 0


def file_frames(opened: OpenedSource, grid: tuple[float, float], workers: int) -> Iterator[tuple[float, Any]]:
    """The file's decoded frames as (time in s, payload), from where its container stands: payloads are
    RGB arrays at the output size (converted by a worker), None (no slot can take the frame) or, after
    a fall-back to the frame-threaded decoder, `av.VideoFrame`s. With `workers` 0: `decoded_frames`."""
    if workers < 2:
        return decoded_frames(opened.container, opened.stream, opened.config, opened.stats,
                              source=opened.name, grid=grid)
    return _parallel_frames(opened, grid, workers)


@dataclass
class _JobResult:
    """What a worker made of one job, applied to the ingest's stats by the reading thread, in order."""

    frames: list[tuple[float, Payload]] = field(default_factory=list)  # (time in s, payload), in order
    decoded: int = 0  # frames out of the decoder
    corrupt: int = 0  # frames flagged as damaged (dropped)
    errors: list[str] = field(default_factory=list)  # one warning per decode error or damaged frame


class _Decoders:
    """Per-thread decoders of one file, and what they do with a job."""

    def __init__(self, opened: OpenedSource, grid: tuple[float, float]) -> None:
        stream = opened.stream
        self.resolved, self.config = opened.resolved, opened.config
        self.source = opened.name
        self.stream_index = stream.index
        self.time_base = stream.time_base
        fps = source_fps(stream)
        self.step_guess = 1.0 / fps if fps else 1.0 / 30.0
        self.origin, self.fps = grid
        self.tolerance = opened.config.effective_tolerance
        self.nonkey = opened.stats.skip_mode == "NONKEY" and opened.stats.skipping_nonref
        ctx = stream.codec_context
        self.convert = FrameConverter(target_size(ctx.width, ctx.height, opened.config.max_edge))
        self.stop = threading.Event()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._containers: list[av.container.InputContainer] = []

    def _context(self) -> av.VideoCodecContext:
        ctx = getattr(self._local, "ctx", None)
        if ctx is None:
            # opened as the reading container was (the same protocol whitelist and timeouts)
            container, _stream = open_source(self.resolved, connect_timeout=self.config.connect_timeout,
                                             read_timeout=self.config.read_timeout)
            with self._lock:
                self._containers.append(container)
            ctx = container.streams[self.stream_index].codec_context
            ctx.thread_type = "AUTO"
            ctx.thread_count = FRAME_THREADS_PER_DECODER
            self._local.ctx = ctx
        return ctx

    def close(self) -> None:
        with self._lock:
            for container in self._containers:
                container.close()
            self._containers.clear()

    def _near_slot(self, t: float) -> bool:
        n = round((t - self.origin) * self.fps)
        return abs(self.origin + n / self.fps - t) <= self.tolerance + 2 * TIME_EPSILON

    def takeable(self, t: float, previous: float | None, following: float | None) -> bool:
        """Whether the sampler may take the frame at `t` between its decoded neighbours (None: in
        another job): a slot within the tolerance, and in its cell or after a gap of an interval."""
        if not self._near_slot(t):
            return False
        if previous is None or t - previous >= 1.0 / self.fps - 2 * TIME_EPSILON:
            return True
        return cell_holds_slot(self.origin, self.fps, previous, t, following)

    def decode(self, job: list[tuple[av.Packet, str]]) -> _JobResult:
        """Decode one job (packets from a clean split point on, each with its skip mode) to the end."""
        ctx = self._context()
        result = _JobResult()
        held: tuple[float, av.VideoFrame] | None = None  # the latest frame, until its successor is out
        before: float | None = None  # the time of the frame before `held`
        state = _FrameTimes(self.time_base, self.step_guess, 2 * self.tolerance if self.nonkey else None)
        mode = ""
        try:
            for packet in [*job, (None, "")]:
                if self.stop.is_set():
                    return result
                if packet[0] is not None and packet[1] != mode and not state.paused:
                    ctx.skip_frame = mode = packet[1]
                for t, frame in self._frames(ctx, packet[0], state, result):
                    if state.paused:
                        ctx.skip_frame = mode = "DEFAULT"
                    if held is not None:
                        result.frames.append((held[0], self._payload(held, before, t)))
                        before = held[0]
                    held = (t, frame)
            if held is not None:
                result.frames.append((held[0], self._payload(held, before, None)))
        finally:
            ctx.flush_buffers()  # the next job starts at a keyframe, on a clean decoder
        return result

    def _payload(self, held: tuple[float, av.VideoFrame], before: float | None, after: float | None) -> Payload:
        return self.convert(held[1]) if self.takeable(held[0], before, after) else None

    def _frames(self, ctx: av.VideoCodecContext, packet: av.Packet | None, state: _FrameTimes,
                result: _JobResult) -> Iterator[tuple[float, av.VideoFrame]]:
        """The frames one packet gives (decode.decoded_frames' rules for errors and times)."""
        try:
            frames = ctx.decode(packet)
        except av.error.FFmpegError as exc:
            if not isinstance(exc, av.error.EOFError):
                result.errors.append(undecodable_warning(self.source, exc))
            return
        for frame in frames:
            if frame.is_corrupt:
                result.corrupt += 1
                result.errors.append(damaged_warning(self.source))
                continue
            result.decoded += 1
            yield state.time_of(frame), frame


class _FrameTimes:
    """A frame's time in seconds as `decode.decoded_frames` computes it, within one job; in NONKEY mode,
    the gap rule that decodes every frame up to the next keyframe after a gap wider than `gap`."""

    def __init__(self, time_base: Any, step_guess: float, gap: float | None) -> None:
        self.time_base, self.step_guess, self.gap = time_base, step_guess, gap
        self.previous: float | None = None
        self.paused = False  # decoding every frame until the next keyframe (NONKEY gap rule)

    def time_of(self, frame: av.VideoFrame) -> float:
        previous = self.previous
        t = frame_seconds(frame, self.time_base, previous, self.step_guess)
        if (previous is not None and self.gap is not None and not self.paused
                and t - previous > max(self.gap, 1.5 * self.step_guess) + 1e-9):
            self.paused = True  # longer runs of skipped frames than keyframes promise: decode them
        if self.paused and frame.key_frame and frame.pts is not None:
            self.paused = False
        self.previous = t
        return t


@dataclass
class _Fallback:
    """No clean split point within MAX_JOB_PACKETS (or a packet without pts): `packets[0]` is where the
    frame-threaded decoder takes over."""

    packets: list[tuple[av.Packet, str]]


def _jobs(packets: _Packets, default_mode: str) -> Iterator[list[tuple[av.Packet, str]] | _Fallback]:
    """The packets in decode order cut into jobs at clean split points, each packet with its skip mode."""
    job: list[tuple[av.Packet, str]] = []
    shown_last: int | None = None  # the largest pts of every packet read so far
    while (packet := packets.next()) is not None:
        pts = packet.pts
        if pts is None:
            yield _Fallback([*job, (packet, default_mode)])
            return
        if (packet.is_keyframe and len(job) >= MIN_JOB_PACKETS and shown_last is not None and pts > shown_last
                and all(p.pts is not None and p.pts >= pts for p, _t in packets.ahead)):
            yield job
            job = []
        job.append((packet, packets.skip_mode() or default_mode))
        shown_last = pts if shown_last is None else max(shown_last, pts)
        if len(job) > MAX_JOB_PACKETS:
            yield _Fallback(job)
            return
    if job:
        yield job


def _parallel_frames(opened: OpenedSource, grid: tuple[float, float], workers: int) -> Iterator[tuple[float, Any]]:
    """Read the file once, decode its jobs on `workers` threads, and hand the frames out in order,
    with at most JOBS_PER_DECODER × `workers` + 1 jobs in flight; closing the iterator stops the workers."""
    stats = opened.stats
    stats.parallel_decoders = workers
    nonref = stats.skip_mode == "NONREF" and stats.skipping_nonref
    cells = SlotCells(*grid) if nonref else None
    packets = _Packets(opened.container, opened.stream, stats, opened.name, cells, read_ahead=True)
    default_mode = stats.skip_mode if stats.skipping_nonref and not nonref else "DEFAULT"
    # Jobs stop early when non-reference frames may be skipped (skipping off: every frame is decoded).
    # Only keyframes decoded (NONKEY): which one is nearest to a slot is not known from all the
    # packets' times, so such jobs are decoded to their end.
    stop_early = nonref
    decoders = _Decoders(opened, grid)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="tempo-gop")
    pending: collections.deque[tuple[Future[_JobResult], float]] = collections.deque()
    last: list[float] = []  # every frame up to this time (s) is handed out or known to be of no use
    held: list[tuple[av.Packet, str]] | None = None  # a job waiting for the time of the next one's start

    def submit(job: list[tuple[av.Packet, str]], following: float | None) -> None:
        times = [p.pts * packets.seconds for p, _mode in job]
        if stop_early and following is not None:
            job = job[: _needed_length(times, following, decoders)]
        pending.append((pool.submit(decoders.decode, job), max(times)))

    try:
        for job in _jobs(packets, default_mode):
            following = job.packets[0][0] if isinstance(job, _Fallback) else job[0][0]
            if held is not None:
                submit(held, following.pts * packets.seconds if following.pts is not None else None)
            if isinstance(job, _Fallback):
                while pending:
                    yield from _deliver(*pending.popleft(), stats, last)
                yield from _frame_threaded_rest(opened, grid, job.packets[0][0], last)
                return
            held = job
            while pending and (len(pending) > JOBS_PER_DECODER * workers or pending[0][0].done()):
                yield from _deliver(*pending.popleft(), stats, last)
        if held is not None:
            submit(held, None)
        while pending:
            yield from _deliver(*pending.popleft(), stats, last)
    finally:
        decoders.stop.set()
        for future, _end in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        decoders.close()


def _needed_length(times: list[float], following: float, decoders: _Decoders) -> int:
    """How many of a job's packets (presentation times `times`, s, in decode order) to decode: up to
    the last one whose frame a slot may take, judged between all the packets' times (`following`:
    the next job's first). Its frames, and every frame it references, come before in decode order;
    the rest of the GOP is shown after it and before the next job, in no slot's cell."""
    shown = sorted(set(times))
    needed_until = shown[0]
    for i, t in enumerate(shown):
        previous = shown[i - 1] if i else None
        if decoders.takeable(t, previous, shown[i + 1] if i + 1 < len(shown) else following):
            needed_until = t
    return max(i for i, t in enumerate(times) if t <= needed_until + TIME_EPSILON) + 1


def _deliver(future: Future[_JobResult], shown_until: float, stats: IngestStats,
             last: list[float]) -> Iterator[tuple[float, Payload]]:
    """A job's counters and warnings into the ingest's stats, then its frames (`shown_until`: the
    presentation time, s, of its last packet, decoded or not)."""
    result = future.result()
    stats.frames_decoded += result.decoded
    stats.corrupt_frames += result.corrupt
    for message in result.errors:
        stats.decode_errors += 1
        _warn(stats, message)
    for t, payload in result.frames:
        last[:] = [t]
        yield t, payload
    last[:] = [max(shown_until, *last)]


def _frame_threaded_rest(opened: OpenedSource, grid: tuple[float, float], first: av.Packet,
                         last: list[float]) -> Iterator[tuple[float, av.VideoFrame]]:
    """The rest of the file from packet `first` (where jobs stopped) on the frame-threaded decoder:
    seek back to the keyframe it starts from and drop the frames already handed out."""
    container, stream, stats = opened.container, opened.stream, opened.stats
    stats.parallel_decoders = 0
    log.debug("%s: no clean split point within %d packets; decoding the rest with frame threads",
              opened.name, MAX_JOB_PACKETS)
    target = first.dts if first.dts is not None else first.pts
    if target is not None:
        container.seek(target, stream=stream, backward=True)
    else:
        container.seek(0, backward=True)
    for t, frame in decoded_frames(container, stream, opened.config, stats, source=opened.name, grid=grid):
        if last and t <= last[0] + TIME_EPSILON:
            continue
        yield t, frame
