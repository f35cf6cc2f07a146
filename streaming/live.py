"""Live sources (network streams, capture devices): a reader thread decodes, maps frames to the wall
clock of capture, samples and segments them into a bounded queue that drops its oldest segment when
the consumer falls behind (the drop recorded as a gap); a dropped connection is reopened with
exponential back-off, the lost signal recorded as a gap. `iter_segments` (readers.py) starts it.
With `audio`, the same pass demuxes the container's audio track and places it, resampled to 16 kHz
mono, on the same timeline as the frames (stream time + this connection's anchor) in a TimedAudio
(`SegmentStream.audio`) for speech recognition.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import av
import av.container
from tempo.streaming.audio import TimedAudio, frame_samples, speech_resampler
from tempo.streaming.convert import FrameConverter
from tempo.streaming.decode import (
    OpenedSource,
    ReadInterrupted,
    configure_decoder,
    decoded_frames,
    source_fps,
)
from tempo.streaming.errors import StreamingError
from tempo.streaming.readers import SegmentStream
from tempo.streaming.sampling import SlotSampler, target_size
from tempo.streaming.segment import Segment
from tempo.streaming.sources import open_source
from tempo.streaming.windows import WindowAssembler

log = logging.getLogger("tempo.streaming")


class DropOldestQueue:
    """A bounded queue between the reader thread and the consumer: when full, the oldest item goes.

    A slow consumer therefore sees the most recent video and memory stays bounded; `dropped` counts
    what it missed.
    """

    _END = object()

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.dropped = 0
        self._items: collections.deque[Any] = collections.deque()
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._closed = False

    def put(self, item: Any) -> None:
        with self._cond:
            if len(self._items) >= self.maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify()

    def close(self, error: BaseException | None = None) -> None:
        with self._cond:
            self._closed = True
            self._error = error
            self._cond.notify_all()

    def get(self) -> Any:
        """The next item; raises StopIteration once closed and empty (or the reader's error)."""
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            if self._items:
                return self._items.popleft()
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            raise StopIteration

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


def start_live(opened: OpenedSource, *, audio: bool = False) -> SegmentStream:
    resolved, info, config, stats = opened.resolved, opened.info, opened.config, opened.stats
    queue = DropOldestQueue(config.live_queue)
    stop = threading.Event()
    reader = _LiveReader(opened, queue, stop)
    if audio and opened.container.streams.audio:
        reader.audio = TimedAudio()
    thread = threading.Thread(target=reader.run, args=(opened.container, opened.stream),
                              name=f"tempo-live-{opened.stream_id}", daemon=True)
    thread.start()

    def segments() -> Iterator[Segment]:
        # A segment dropped for a slow consumer is a gap in time, not a hole in the indices: the
        # consumer numbers what it receives and records the dropped stretch on the next segment.
        index, produced, previous_end = 0, 0, None  # our next index, the reader's, last end (s)
        while True:
            try:
                segment = queue.get()
            except StopIteration:
                return
            stats.dropped_segments = queue.dropped
            lost = 0.0
            if segment.index != produced and previous_end is not None:
                lost = max(0.0, segment.start - previous_end)
                stats.gap_seconds += lost
                log.warning("%s: %d segment(s) dropped for a slow consumer: no video from %.2f s to %.2f s",
                            resolved.original, segment.index - produced, previous_end, segment.start)
            produced = segment.index + 1
            if segment.index != index or lost:
                segment = dataclasses.replace(segment, index=index, gap_before=segment.gap_before + lost)
            index, previous_end = index + 1, segment.end
            yield segment

    def on_close() -> None:
        stop.set()
        thread.join(timeout=config.read_timeout + 1.0)

    stream = SegmentStream(segments(), info, stats, on_close=on_close)
    stream.audio = reader.audio
    stream.anchors = reader.anchors
    return stream


class _LiveReader:
    """The reader thread of a live source: decode, map to wall-clock time, sample, segment, reconnect."""

    def __init__(self, opened: OpenedSource, queue: DropOldestQueue, stop: threading.Event) -> None:
        config = opened.config
        self.resolved, self.info, self.config, self.stats = opened.resolved, opened.info, config, opened.stats
        self.queue, self.stop = queue, stop
        self.assembler = WindowAssembler(opened.stream_id, config.window, config.fps, opened.info)
        self.sampler: SlotSampler[av.VideoFrame] = SlotSampler(config.fps, config.effective_tolerance)
        self.to_rgb: FrameConverter | None = None
        self.wall_origin: float | None = None  # Unix seconds of time 0.0
        self.last_time: float | None = None  # relative seconds of the latest decoded frame
        self.frame_step = 0.0  # seconds between source frames, from the container's rate
        self.audio: TimedAudio | None = None  # the audio track's samples, when asked for
        self.anchor: float | None = None  # relative time − stream time of the current connection
        self.anchors: list[tuple[float, float]] = []  # (relative time of its first frame, anchor) per connection
        self._early_audio: list[tuple[float | None, Any]] = []  # decoded before the connection's first frame

    def run(self, container: av.container.InputContainer, stream: av.VideoStream) -> None:
        error: BaseException | None = None
        try:
            self._loop(container, stream)
        except BaseException as exc:  # handed to the consumer, who raises it
            error = exc
        finally:
            for segment in self.assembler.flush():
                self._put(segment)
            if self.audio is not None:
                self.audio.finish()
            self.queue.close(error)

    def _put(self, segment: Segment) -> None:
        self.stats.segments += 1
        self.queue.put(segment)
        self.stats.dropped_segments = self.queue.dropped

    def _loop(self, container: av.container.InputContainer | None, stream: av.VideoStream | None) -> None:
        failures = 0
        while not self.stop.is_set():
            if container is None or stream is None:
                if failures >= self.config.reconnect_attempts:
                    log.warning("%s: giving up after %d reconnection attempts", self.resolved.original,
                                failures)
                    return
                delay = min(self.config.reconnect_max_delay, self.config.reconnect_delay * 2**failures)
                failures += 1
                if self.stop.wait(delay):
                    return
                try:
                    container, stream = open_source(
                        self.resolved,
                        connect_timeout=self.config.connect_timeout,
                        read_timeout=self.config.read_timeout,
                    )
                except StreamingError as exc:
                    log.info("%s: reconnection attempt %d failed: %s", self.resolved.original, failures, exc)
                    continue
            got_frames = self._read(container, stream)
            container, stream = None, None
            if got_frames:
                failures = 0
            if not self.stop.is_set():
                log.warning("%s: stream ended or dropped; reconnecting", self.resolved.original)

    def _read(self, container: av.container.InputContainer, stream: av.VideoStream) -> bool:
        """Decode one connection until it ends; True if it delivered at least one frame."""
        config = self.config
        anchor: float | None = None  # relative time − stream time, fixed at this connection's first frame
        self.anchor, self._early_audio = None, []
        rate = source_fps(stream)
        self.frame_step = 1.0 / rate if rate else 0.0
        try:
            configure_decoder(stream, config, self.stats, live=True)
            frames = decoded_frames(container, stream, config, self.stats, source=self.resolved.original,
                                    raise_on_read_error=True, audio=self._audio_of(container))
            for t, frame in frames:
                if self.stop.is_set():
                    return anchor is not None
                if anchor is None:
                    anchor = self.anchor = self._anchor(t)
                    self.anchors.append((t + anchor, anchor))
                    for early_t, samples in self._early_audio:
                        self._place_audio(early_t, samples)
                    self._early_audio = []
                if self.to_rgb is None:
                    self.to_rgb = FrameConverter(target_size(frame.width, frame.height, config.max_edge))
                now = t + anchor
                self.last_time = now
                for slot, kept_t, kept in self.sampler.push(now, frame):
                    self._keep(slot, kept_t, kept)
        except ReadInterrupted:
            pass
        finally:
            container.close()
        # The connection is over: its last held frame may still fill a slot.
        for slot, kept_t, kept in self.sampler.finish():
            self._keep(slot, kept_t, kept)
        return anchor is not None

    def _audio_of(self, container: av.container.InputContainer) -> tuple[Any, Any] | None:
        """(the connection's audio stream, the callback its packets go to), when audio is asked for."""
        if self.audio is None or not container.streams.audio:
            return None
        resampler = speech_resampler()

        def on_packet(packet: av.Packet) -> None:
            try:
                decoded = packet.decode()
            except av.error.FFmpegError:
                return  # a damaged audio packet is a moment of silence; the video goes on
            for frame in decoded:
                t = None if frame.pts is None or frame.time_base is None else float(frame.pts * frame.time_base)
                samples = frame_samples(resampler, frame)  # (n,) float32 at 16 kHz
                if self.anchor is None:  # muxed before the first frame: placed once that fixes the clock
                    self._early_audio = [*self._early_audio[-255:], (t, samples)]
                else:
                    self._place_audio(t, samples)

        return container.streams.audio[0], on_packet

    def _place_audio(self, stream_time: float | None, samples: Any) -> None:
        assert self.audio is not None and self.anchor is not None
        self.audio.add_resampled(None if stream_time is None else stream_time + self.anchor, samples)

    def _keep(self, slot: int, t: float, frame: av.VideoFrame) -> None:
        assert self.to_rgb is not None
        t = round(t, 6)
        self.stats.frames_sampled += 1
        self.stats.position = t
        for segment in self.assembler.add(slot, t, self.to_rgb(frame)):
            self._put(segment)

    def _anchor(self, stream_time: float) -> float:
        """Map this connection's stream clock onto relative wall-clock time; record any gap."""
        now = time.time()
        if self.wall_origin is None:
            self.wall_origin = now
            self.assembler.wallclock_origin = now
            return -stream_time
        # The previous connection's frames are all in; the next ones start a new window after a gap.
        assert self.last_time is not None
        expected = self.last_time + self.frame_step
        start = max(now - self.wall_origin, expected)
        gap = start - expected
        self.stats.reconnects += 1
        self.stats.gap_seconds += gap
        for segment in self.assembler.flush():
            self._put(segment)
        self.assembler.mark_gap(gap)
        window = self.config.window
        next_window_slot = -(-self.sampler.slot // window) * window
        self.sampler.rebase(next_window_slot, start)
        log.warning("%s: reconnected after %.2f s without signal", self.resolved.original, gap)
        return start - stream_time
