"""PyAV decoding with the work the sample does not need left out.

Only the frames the sampler keeps are converted to RGB and resized (streaming/convert.py); the
others are dropped as decoded YUV. When the sampling tolerance allows it, the codec is told to skip
non-reference frames (`skip_frame = NONREF`): no other frame depends on them, and a quarter to a
half of the decoding work of a typical H.264 file with B-frames disappears. For a file, whose slot
grid is known before decoding, this is exact (`SlotCells`): a non-reference frame is decoded when
a slot could take it, decided packet by packet from its neighbours' presentation times, so every
slot gets the very frame a full decode gives it. Live sources skip every non-reference frame (each
slot then takes the nearest decoded frame within the tolerance). When the file's index shows a
keyframe within the tolerance of every slot (short GOPs), only keyframes are decoded (`NONKEY`):
each slot takes the nearest keyframe, which is within the tolerance but need not be the nearest frame.
"""

from __future__ import annotations

import collections
import itertools
import logging
import math
import os
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import av
import av.container
from tempo.streaming.sampling import TIME_EPSILON, SamplingConfig
from tempo.streaming.segment import SourceInfo
from tempo.streaming.sources import ResolvedSource

log = logging.getLogger("tempo.streaming")

# Longest run of consecutive non-reference frames assumed when deciding whether skipping them keeps
# every slot within the tolerance (x264 uses at most 3 B-frames by default, 16 at the extreme; a
# runtime check below switches skipping off when a source turns out to have longer runs).
ASSUMED_NONREF_RUN = 3
# Packets read ahead of the decoder (files) so that each frame's neighbours in presentation order are known.
LOOKAHEAD_PACKETS = 16
# Containers that carry streams (broadcast, network), where lost packets show as timestamp jumps.
LOSSY_FORMATS = ("mpegts", "mpegtsraw", "rtp", "rtsp", "sdp")
# Warn about the first few decode errors of a source; after that only count them.
MAX_ERROR_WARNINGS = 3


@dataclass
class IngestStats:
    """Counters of one ingest; live values while iterating. Times in seconds."""

    frames_decoded: int = 0  # frames out of the decoder (skipped non-reference frames not included)
    frames_sampled: int = 0  # frames kept by the sampler (converted to RGB)
    decode_errors: int = 0  # packets the decoder or demuxer rejected (skipped, ingest went on)
    corrupt_frames: int = 0  # frames the decoder flagged as damaged (never sampled)
    segments: int = 0  # segments handed to the consumer
    dropped_segments: int = 0  # live: segments dropped because the consumer was too slow
    reconnects: int = 0  # live: successful reconnections after a disconnect
    gap_seconds: float = 0.0  # live: total signal lost across reconnections
    skipping_nonref: bool = False  # whether the codec is skipping frames the sample does not need
    skip_mode: str = "NONE"  # what it skips: "NONREF" (non-reference frames) or "NONKEY" (all but keyframes)
    position: float = 0.0  # seconds of source covered so far (relative to the first frame)
    decoder: str = "cpu"  # what decodes: "cpu" (FFmpeg's software decoder), "gpu" (NVDEC through FFmpeg's
    # CUDA hwaccel) or "gpu-nvcodec" (NVDEC through PyNvVideoCodec); streaming/gpu.py
    warnings: list[str] = field(default_factory=list)
    parallel_decoders: int = 0  # files: decoders on whole GOPs side by side
    # (streaming/parallel_decode.py); 0: one frame-threaded decoder


class _DtsContinuity:
    """Spots data lost mid-stream from a jump in decode timestamps (stream formats only).

    A damaged stretch of an MPEG-TS often makes whole frames vanish without the
    decoder noticing; the frames after it then reference frames that never arrived and decode as
    concealed garbage. A decode-order step of more than max(0.5 s, 8 × the usual step) is taken as
    such a loss. (A transport stream that truly pauses that long is flagged too; all it costs is
    the frames up to its next keyframe.)
    """

    def __init__(self) -> None:
        self.previous: float | None = None
        self.steps: collections.deque[float] = collections.deque(maxlen=31)
        self.last_loss = 0.0
        self.losses: list[tuple[float, float]] = []  # (last dts before, first dts after), seconds

    def explains(self, before: float, after: float) -> bool:
        """Whether a known loss lies between two frame times (so their distance is no surprise)."""
        return any(before <= end and after >= start for start, end in self.losses[-4:])

    def lost_before(self, dts: float) -> bool:
        previous, self.previous = self.previous, dts
        if previous is None:
            return False
        step = dts - previous
        if len(self.steps) >= 8 and step > max(0.5, 8.0 * statistics.median(self.steps)):
            self.last_loss = step
            self.losses.append((previous, dts))
            return True
        if step > 0:
            self.steps.append(step)
        return False


class SlotCells:
    """Which frames a slot grid (slot n at origin + n / fps seconds) can take: exact skipping.

    A slot takes the frame nearest to its time (SlotSampler; ties go to the earlier frame), so a
    frame can be taken only if a slot lies in its cell, from halfway to its predecessor to halfway
    to its successor in presentation order. The neighbours come from the packets around it: the
    LOOKAHEAD_PACKETS before and after in decode order hold them whenever frames are reordered by
    fewer than that many places (B-frame runs are ≤ 16), and when one is missing the cell only grows
    (an edge of the file, a seek: the frame is decoded), so no frame a slot needs is ever skipped.
    """

    def __init__(self, origin: float, fps: float) -> None:
        self.origin = origin  # seconds, the time of slot 0
        self.fps = fps
        self.recent: collections.deque[float] = collections.deque(maxlen=LOOKAHEAD_PACKETS)

    def needed(self, t: float, ahead: Iterator[float]) -> bool:
        """Whether a slot lies in the cell of the frame at `t` (seconds); `ahead`: the presentation
        times of the packets after it. Remembers `t` as a neighbour of the packets to come."""
        previous = following = None
        for q in itertools.chain(self.recent, ahead):
            if q < t - TIME_EPSILON and (previous is None or q > previous):
                previous = q
            elif q > t + TIME_EPSILON and (following is None or q < following):
                following = q
        self.recent.append(t)
        return cell_holds_slot(self.origin, self.fps, previous, t, following)


def cell_holds_slot(origin: float, fps: float, previous: float | None, t: float, following: float | None) -> bool:
    """Whether a slot of the grid (slot n at origin + n / fps, seconds) lies in the cell of the frame at
    `t`, from halfway to `previous` to halfway to `following` (None: unknown, the cell is unbounded)."""
    if previous is None or following is None:
        return True
    low, high = (previous + t) / 2.0 - TIME_EPSILON, (t + following) / 2.0 + TIME_EPSILON
    first = math.ceil((low - origin) * fps - 1e-9)  # the first slot at or after `low`
    return origin + first / fps <= high


class _Packets:
    """The demuxer's packets for `decoded_frames`: a read failure ends them (counted, warned about,
    kept in `error`). With slot cells, packets are read LOOKAHEAD_PACKETS ahead, so that
    `tell_decoder` can decide whether the decoder may skip each one (exact skipping)."""

    def __init__(self, container: av.container.InputContainer, stream: av.VideoStream, stats: IngestStats,
                 source: str, cells: SlotCells | None,
                 audio: tuple[av.AudioStream, Callable[[av.Packet], None]] | None = None,
                 *, read_ahead: bool = False) -> None:
        self.read_ahead = read_ahead or cells is not None  # keep LOOKAHEAD_PACKETS in `ahead`
        self.demuxed = container.demux(stream, audio[0]) if audio is not None else container.demux(stream)
        self.audio = audio  # its packets go to its callback as they are read, never to the video decoder
        self.stats, self.source, self.cells = stats, source, cells
        self.error: BaseException | None = None
        self.ctx = stream.codec_context
        # Seconds per pts unit, in floating point: the cells' margins absorb the rounding.
        self.seconds = float(stream.time_base) if stream.time_base is not None else 0.0
        self.ahead: collections.deque[tuple[av.Packet, float | None]] = collections.deque()  # (packet, pts in s)
        self.time: float | None = None  # presentation time (s) of the packet `next` returned last
        self.told = "NONREF"  # the skip mode the codec was last given
        if cells is not None:
            self.ctx.skip_frame = self.told

    def _read(self) -> av.Packet | None:
        while self.error is None:
            try:
                packet = next(self.demuxed)
            except (StopIteration, av.error.EOFError):
                return None
            except (av.error.FFmpegError, OSError) as exc:
                self.error = exc
                self.stats.decode_errors += 1
                _warn(self.stats, f"{self.source}: reading stopped ({getattr(exc, 'strerror', None) or exc})")
                return None
            if not packet.size:  # the demuxer's end-of-stream marker; the decoder is flushed after
                continue
            if self.audio is not None and packet.stream.index == self.audio[0].index:
                self.audio[1](packet)
                continue
            return packet
        return None

    def next(self) -> av.Packet | None:
        """The next packet in decode order; None at the end or when reading failed."""
        if not self.read_ahead:
            return self._read()
        while len(self.ahead) <= LOOKAHEAD_PACKETS and (packet := self._read()) is not None:
            self.ahead.append((packet, None if packet.pts is None else packet.pts * self.seconds))
        if not self.ahead:
            return None
        packet, self.time = self.ahead.popleft()
        return packet

    def tell_decoder(self, packet: av.Packet) -> None:
        """Let the codec skip `packet` (a non-reference frame) when no slot can take its frame; the
        codec reads the mode when the packet goes in (frame threads copy it per packet)."""
        mode = self.skip_mode()
        if mode is not None and mode != self.told:
            self.ctx.skip_frame = self.told = mode

    def skip_mode(self) -> str | None:
        """What the codec may skip of the packet `next` returned last: "NONREF" (it, when it is a
        non-reference frame no slot can take) or "DEFAULT" (nothing); None without exact skipping."""
        if self.cells is None or not self.stats.skipping_nonref or self.time is None:
            return None
        needed = self.cells.needed(self.time, (t for _, t in self.ahead if t is not None))
        return "DEFAULT" if needed else "NONREF"


class ReadInterrupted(Exception):
    """The demuxer failed mid-stream (network drop, read timeout, cut-off file)."""


def source_fps(stream: av.VideoStream) -> float | None:
    """The container's idea of the frame rate: only used for decisions, never to compute times."""
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate else None


def max_keyframe_spacing(stream: av.VideoStream, duration: float | None) -> float | None:
    """Longest time (s) between keyframes over the whole file, from the container's index.

    MP4 and Matroska carry an index of keyframes; reading it costs no decoding. None when there is
    no usable index (MPEG-TS, live streams) or it does not cover the file.
    """
    if duration is None or stream.time_base is None:
        return None
    try:
        entries = stream.index_entries
        keys = [entry.timestamp for entry in entries if entry.is_keyframe]
    except (AttributeError, av.error.FFmpegError):
        return None
    if len(keys) < 2:
        return None
    times = sorted(float(k * stream.time_base) for k in keys)
    # MP4 index times are decode times, a constant reorder delay before presentation: shift them
    # so the first keyframe sits at the first frame. The stretch after the last keyframe counts
    # too: it must be as short as the others.
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else times[0]
    edges = [t - times[0] + start for t in times] + [start + duration]
    return max(b - a for a, b in itertools.pairwise(edges))


def file_decoder_threads() -> int:
    """Frame threads for reading a file: twice the cores plus two, at most 16 (FFmpeg's own cap).

    FFmpeg's automatic choice (cores + 1) assumes the machine is idle. Files are read as fast as
    possible and latency does not matter, so a deeper pipeline keeps every core busy while the
    Python thread demuxes and converts, and holds its share of a machine other work also uses
    (the ffmpeg command line gets the same from its separate demux, filter and mux threads).
    """
    return min(16, 2 * (os.cpu_count() or 1) + 2)


def configure_decoder(stream: av.VideoStream, config: SamplingConfig, stats: IngestStats,
                      *, keyframe_spacing: float | None = None, live: bool = False) -> None:
    """Threads for the decoder, and frame skipping as far as the tolerance allows.

    Keyframes every ≤ 2 × tolerance (short GOPs, per the file's index): decode keyframes only,
    each slot then has one within the tolerance. Otherwise skip non-reference frames: runs of up
    to ASSUMED_NONREF_RUN of them leave decoded frames at most (run + 1) / fps apart, so each slot
    has one within half of that.
    """
    ctx = stream.codec_context
    ctx.thread_type = "AUTO"  # frame + slice threads
    # Live: FFmpeg's choice (each frame thread adds a frame of latency). Files: a deeper pipeline.
    ctx.thread_count = config.decoder_threads or (0 if live else file_decoder_threads())
    if not config.skip_nonref:
        return
    tolerance = config.effective_tolerance
    fps = source_fps(stream)
    if keyframe_spacing is not None and keyframe_spacing / 2.0 <= tolerance + 1e-9:
        stats.skip_mode = "NONKEY"
    elif fps is not None and (ASSUMED_NONREF_RUN + 1) / (2.0 * fps) <= tolerance:
        stats.skip_mode = "NONREF"
    else:
        return
    ctx.skip_frame = stats.skip_mode
    stats.skipping_nonref = True


def frame_seconds(frame: av.VideoFrame, time_base: Any, previous: float | None, step_guess: float) -> float:
    """A decoded frame's time in seconds: pts × time base; without a pts, one frame duration (else
    `step_guess`) after `previous` (0.0 for the first frame). A time not after `previous` (out-of-order
    or repeated timestamps: broken muxing) becomes `previous + step_guess`, so time keeps moving forward."""
    tb = frame.time_base or time_base
    if frame.pts is not None and tb is not None:
        t = frame.time if frame.time_base is not None else float(frame.pts * tb)
    elif previous is not None:
        t = previous + (float(frame.duration * tb) if frame.duration and tb else step_guess)
    else:
        t = 0.0
    if previous is not None and t <= previous - 1e-9:
        t = previous + step_guess
    return t


def undecodable_warning(source: str, exc: av.error.FFmpegError) -> str:
    """The warning for data the decoder rejected (skipped; decoding goes on)."""
    return f"{source}: skipped undecodable data ({exc.strerror or exc}); going on"


def damaged_warning(source: str) -> str:
    """The warning for a frame the decoder flagged as damaged (never sampled)."""
    return f"{source}: skipped a damaged frame; going on"


def _warn(stats: IngestStats, message: str) -> None:
    if stats.decode_errors <= MAX_ERROR_WARNINGS:
        log.warning(message)
    stats.warnings.append(message)
    del stats.warnings[:-MAX_ERROR_WARNINGS]


def decoded_frames(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    config: SamplingConfig,
    stats: IngestStats,
    *,
    source: str,
    raise_on_read_error: bool = False,
    grid: tuple[float, float] | None = None,
    audio: tuple[av.AudioStream, Callable[[av.Packet], None]] | None = None,
) -> Iterator[tuple[float, av.VideoFrame]]:
    """Decoded frames in presentation order with their time in seconds (pts × time base).

    Packets the decoder rejects are counted and skipped with a warning; decoding goes on from the
    next decodable frame. A frame without pts is placed one frame duration after the previous one.
    A demuxer failure ends the stream (after flushing the decoder), or raises ReadInterrupted when
    `raise_on_read_error` (live sources reconnect). With `grid` (origin, fps: the slot grid of a
    file), skipping non-reference frames is exact: packets are read LOOKAHEAD_PACKETS ahead and a
    non-reference frame a slot could take is decoded (`SlotCells`). `audio`: (an audio stream, a
    callback its packets go to), demuxed in the same pass.
    """
    time_base = stream.time_base
    fps = source_fps(stream)
    step_guess = 1.0 / fps if fps else 1.0 / 30.0
    tolerance = config.effective_tolerance
    previous: float | None = None
    ctx = stream.codec_context
    continuity = _DtsContinuity()
    # Only stream formats lose data in transit; a file with an index (MP4, MKV) that pauses is a
    # variable-frame-rate recording whose frames after the pause decode fine.
    watch_losses = container.format is not None and container.format.name in LOSSY_FORMATS
    waiting_for_keyframe = False
    paused_skipping = False  # the gap check below paused non-reference skipping for this GOP
    cells = SlotCells(*grid) if grid is not None and stats.skip_mode == "NONREF" else None
    packets = _Packets(container, stream, stats, source, cells, audio)

    def frames_of(packet: av.Packet | None) -> Iterator[tuple[float, av.VideoFrame]]:
        nonlocal previous, paused_skipping
        try:
            frames = ctx.decode(packet)
        except av.error.FFmpegError as exc:
            if isinstance(exc, av.error.EOFError):
                return
            stats.decode_errors += 1
            _warn(stats, undecodable_warning(source, exc))
            return
        for frame in frames:
            if frame.is_corrupt:
                stats.corrupt_frames += 1
                stats.decode_errors += 1
                _warn(stats, damaged_warning(source))
                continue
            if frame.pts is None and stats.skipping_nonref:
                # Without timestamps, time is counted in frames: every frame must then be decoded.
                ctx.skip_frame = "DEFAULT"
                stats.skipping_nonref = False
                stats.skip_mode = "NONE"
            t = frame_seconds(frame, time_base, previous, step_guess)
            if (previous is not None and cells is None and stats.skipping_nonref
                    and t - previous > max(2 * tolerance, 1.5 * step_guess) + 1e-9
                    and not continuity.explains(previous, t)):
                # Longer non-reference runs than assumed (or a real gap): stop skipping so no
                # slot is left further than the tolerance from its frame, until the next
                # keyframe. Keeping the decision within one GOP keeps a resumed run (which
                # starts at a keyframe) decoding exactly the frames a full run decodes.
                ctx.skip_frame = "DEFAULT"
                stats.skipping_nonref = False
                paused_skipping = True
                log.debug("%s: decoded frames %.3f s apart; decoding every frame until the next keyframe",
                          source, t - previous)
            if paused_skipping and frame.key_frame and frame.pts is not None:
                ctx.skip_frame = stats.skip_mode
                stats.skipping_nonref = True
                paused_skipping = False
            previous = t
            stats.frames_decoded += 1
            yield t, frame

    while (packet := packets.next()) is not None:
        dts = float(packet.dts * time_base) if packet.dts is not None and time_base is not None else None
        if dts is not None and watch_losses and continuity.lost_before(dts):
            stats.decode_errors += 1
            _warn(stats, f"{source}: {continuity.last_loss:.2f} s of damaged or missing data skipped; "
                  "going on from the next keyframe")
            waiting_for_keyframe = True
        if packet.pts is None and packet.dts is None and stats.skipping_nonref:
            # No timestamps (raw elementary streams): time is counted in frames, so every frame
            # must be decoded; decided before this packet reaches the decoder.
            ctx.skip_frame = "DEFAULT"
            stats.skipping_nonref = False
            stats.skip_mode = "NONE"
        if waiting_for_keyframe:
            if not packet.is_keyframe:
                continue  # it may reference lost frames: the decoder would conceal with garbage
            waiting_for_keyframe = False
        packets.tell_decoder(packet)
        yield from frames_of(packet)
    yield from frames_of(None)
    if packets.error is not None and raise_on_read_error:
        raise ReadInterrupted(str(packets.error))


@dataclass
class OpenedSource:
    """A source opened for segmenting: what the file, live and release readers each start from.

    `container` and `stream` are the first connection's (the live reader opens new ones when it
    reconnects); `stats` is the ingest's one set of counters, shared with the `SegmentStream`.
    """

    resolved: ResolvedSource
    container: av.container.InputContainer
    stream: av.VideoStream
    info: SourceInfo
    config: SamplingConfig
    stream_id: str
    stats: IngestStats

    @property
    def name(self) -> str:
        """The source as the user gave it (path, URL, "-"), for messages."""
        return self.resolved.original
