"""The release's sampling of a whole file ("release" mode of `SamplingConfig.sampling`).

The authors' code (infer.py `load_video`) asks decord for the number of frames `total` and the
average frame rate, takes duration = total / fps, and decodes the frames at indices
round(linspace(0, total − 1, N)) with N = clamp(round(duration·2), 4, 1024); every later time is
computed with real_fps = N / duration. We read neither a frame count nor a frame rate from the
container (both are often wrong); the same two numbers come from the stream's own timestamps:

- total: the video packets that carry a timestamp, counted by a demux pass before decoding (no
  decoding; one frame per packet, as in decord's frame index);
- duration: the span the frames cover, from the earliest presentation time to the latest
  presentation time plus that packet's duration (pts × time base). For a constant-rate file this is
  exactly total / fps; for B-frames the decode order does not matter (min and max of pts); for a
  variable-rate file it is the real length, where decord's total / average fps is the same number
  whenever the container's average rate is frames over duration.

Index k is then the k-th frame the decoder outputs in presentation order; every frame is decoded
(no skipping of non-reference frames, which would shift the indices).
"""

from __future__ import annotations

import bisect
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import av
import av.container
import numpy as np
from tempo.streaming.convert import ConvertPipeline, file_pipeline
from tempo.streaming.decode import OpenedSource, decoded_frames
from tempo.streaming.sampling import release_sample_indices
from tempo.streaming.segment import Segment
from tempo.streaming.windows import WindowAssembler

log = logging.getLogger("tempo.streaming")


@dataclass(frozen=True)
class FrameCount:
    """What the release reads from decord, taken from the stream's timestamps instead."""

    total: int  # video frames (packets with a timestamp)
    duration: float  # seconds from the first frame's start to the last frame's end


def count_frames(container: av.container.InputContainer, stream: av.VideoStream) -> FrameCount:
    """Demux `stream` once (no decoding) and rewind: frames and the time span they cover."""
    total = 0
    first: int | None = None
    end: int | None = None
    without_duration = False
    for packet in container.demux(stream):
        if packet.pts is None or packet.size == 0:
            continue
        total += 1
        first = packet.pts if first is None else min(first, packet.pts)
        without_duration |= not packet.duration
        stop = packet.pts + (packet.duration or 0)
        end = stop if end is None else max(end, stop)
    container.seek(0, backward=True, stream=stream)
    if total == 0 or first is None or end is None:
        return FrameCount(0, 0.0)
    duration = float((end - first) * stream.time_base)
    if without_duration and total > 1:
        # Packets without durations (some muxers): the last frame lasts one average frame step.
        duration *= total / (total - 1)
    return FrameCount(total, max(0.0, duration))


def release_segments(opened: OpenedSource, *, origin: float) -> tuple[Iterator[Segment], float]:
    """(segments, real_fps) of a file sampled as the release samples it; `origin` is the first frame's time.

    Segments carry real presentation times (seconds after the first frame) in `timestamps`, `start`
    and `end`; `sample_fps` is real_fps and `first_frame_index` the sample index of their first frame,
    which is what the SVLM's frame times and the LLM's time tags are computed from (as the release).
    """
    container, stream, config, stats, source = (
        opened.container, opened.stream, opened.config, opened.stats, opened.name
    )
    count = count_frames(container, stream)
    indices, real_fps = release_sample_indices(
        count.total, count.duration, fps=config.fps, min_frames=config.min_frames, max_frames=config.max_frames
    )
    log.info("%s: %d frames over %.3f s, %d sampled (real fps %.4f)", source, count.total, count.duration,
             len(indices), real_fps)

    def segments() -> Iterator[Segment]:
        assembler = WindowAssembler(opened.stream_id, config.window, real_fps, opened.info)
        assembler.extra = {"sampling": "release", "real_fps": real_fps}

        def emit(ready: list[tuple[tuple[int, float], np.ndarray]]) -> Iterator[Segment]:
            for (k, t), rgb in ready:
                stats.position = round(t - origin, 6)
                # indices are sorted and may repeat: frame k fills every sample that names it
                for sample in range(bisect.bisect_left(indices, k), bisect.bisect_right(indices, k)):
                    stats.frames_sampled += 1
                    for segment in assembler.add(sample, round(t - origin, 6), rgb):
                        stats.segments += 1
                        yield segment

        with contextlib.ExitStack() as stack:
            try:
                converting: ConvertPipeline[tuple[int, float]] | None = None
                wanted = iter(sorted(set(indices)))
                last_window = 0
                next_k = next(wanted, None)
                for k, (t, frame) in enumerate(decoded_frames(container, stream, config, stats, source=source)):
                    if next_k is None:
                        break
                    if k != next_k:
                        continue
                    next_k = next(wanted, None)
                    if converting is None:
                        converting = stack.enter_context(file_pipeline(config, frame.width, frame.height))
                    first_sample = bisect.bisect_left(indices, k)
                    window = first_sample // config.window
                    # a frame that starts a new window closes a segment: hand it out at once
                    yield from emit(converting.put((k, t), frame, wait=window != last_window))
                    last_window = window
                if converting is not None:
                    yield from emit(converting.drain())
                for segment in assembler.flush():
                    stats.segments += 1
                    yield segment
            finally:
                stack.close()
                container.close()

    return segments(), real_fps
