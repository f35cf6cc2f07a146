"""The audio track of a media file, decoded beside its video: 16 kHz mono float32 for speech recognition."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import numpy as np
from tempo.streaming.errors import NoAudioStreamError, StreamingError

SPEECH_RATE = 16_000  # samples per second Whisper's feature extractor expects


def decode_audio(source: str, *, rate: int = SPEECH_RATE, timeout: float = 10.0) -> tuple[np.ndarray, float]:
    """(samples (n,) float32 mono at `rate`, start time in seconds of stream time) of the source's
    first audio stream; the start comes from the first frame's pts in its time base, so cue times
    line up with the video's timestamps. NoAudioStreamError when there is none."""
    import av

    try:
        container = av.open(source, timeout=timeout)
    except (av.FFmpegError, OSError) as exc:
        raise StreamingError(f"the audio of {source!r} could not be read ({exc}).") from None
    try:
        if not container.streams.audio:
            raise NoAudioStreamError(source)
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        pieces: list[np.ndarray] = []
        start: float | None = None
        for frame in container.decode(stream):
            if start is None and frame.pts is not None and frame.time_base is not None:
                start = float(frame.pts * frame.time_base)
            pieces += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        pieces += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    except av.FFmpegError as exc:
        raise StreamingError(f"the audio of {source!r} could not be decoded ({exc}).") from None
    finally:
        container.close()
    samples = np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32)
    return samples, start or 0.0


def voiced_regions(samples: np.ndarray, rate: int = SPEECH_RATE, *, frame: float = 0.03, bridge: float = 0.3,
                   shortest: float = 0.15) -> list[tuple[float, float]]:
    """[(start, end) seconds] where the signal carries sound: 30 ms frames whose RMS is above
    max(0.01, 10 % of the loud frames' level), pauses shorter than `bridge` joined, blips shorter than
    `shortest` dropped. What speech recognition listens to, and what bounds its cues in time."""
    hop = max(1, int(frame * rate))
    n = len(samples) // hop
    if n == 0:
        return []
    rms = np.sqrt(np.mean(samples[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))  # (n,)
    loud = np.percentile(rms, 95)
    on = rms > max(0.01, 0.1 * loud)
    regions: list[list[float]] = []
    for i in np.flatnonzero(on):
        t0, t1 = i * hop / rate, (i + 1) * hop / rate
        if regions and t0 - regions[-1][1] <= bridge:
            regions[-1][1] = t1
        else:
            regions.append([t0, t1])
    return [(float(a), float(b)) for a, b in regions if b - a >= shortest]


class TimedAudio:
    """16 kHz mono audio placed on a timeline of stream seconds, filled by a reader and taken per
    batch of segments. Thread-safe; holds at most `max_seconds` (the oldest goes first), so a live
    reader that runs ahead of its consumer keeps bounded memory."""

    def __init__(self, *, rate: int = SPEECH_RATE, max_seconds: float = 300.0) -> None:
        self.rate, self.max_seconds = rate, max_seconds
        self._chunks: list[tuple[float, np.ndarray]] = []  # (start seconds, samples (n,) float32)
        self._cond = threading.Condition()
        self._until = float("-inf")  # seconds up to which audio has arrived
        self._done = False
        self._next: float | None = None  # where the next resampled sample goes (seconds)

    @property
    def until(self) -> float:
        with self._cond:
            return self._until

    def add(self, start: float, samples: np.ndarray) -> None:
        """Samples whose first one is at `start` seconds."""
        if not len(samples):
            return
        with self._cond:
            self._chunks.append((start, samples))
            self._until = max(self._until, start + len(samples) / self.rate)
            while self._chunks and self._until - self._chunks[0][0] > self.max_seconds:
                self._chunks.pop(0)
            self._cond.notify_all()

    def add_resampled(self, start: float | None, samples: np.ndarray) -> None:
        """Resampler output for an input frame that starts at `start` seconds (None: unknown, e.g. the
        resampler's flush): placed right after the previous output (a resampler delays by a few
        samples), unless time jumped by more than 0.1 s (a gap, a reconnect)."""
        if self._next is None or (start is not None and abs(start - self._next) > 0.1):
            self._next = start if start is not None else 0.0
        self.add(self._next, samples)
        self._next += len(samples) / self.rate

    def finish(self) -> None:
        """No more audio will come (the source ended, or it has no audio track)."""
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def take(self, start: float, end: float, *, wait: float = 0.0) -> np.ndarray:
        """The samples of [start, end) seconds, (round((end − start)·rate),) float32, silence where
        none arrived; waits up to `wait` seconds for audio up to `end`. Audio before `start` is let go."""
        with self._cond:
            deadline = time.monotonic() + wait
            while not self._done and self._until < end and time.monotonic() < deadline:
                self._cond.wait(max(0.0, deadline - time.monotonic()))
            out = np.zeros(max(0, round((end - start) * self.rate)), np.float32)
            keep: list[tuple[float, np.ndarray]] = []
            for t, samples in self._chunks:
                t_end = t + len(samples) / self.rate
                if t_end > end:
                    keep.append((t, samples))
                lo = max(0, round((t - start) * self.rate))  # where the chunk lands in `out`
                skip = max(0, round((start - t) * self.rate))  # its samples before `start`
                part = samples[skip: skip + max(0, len(out) - lo)]
                out[lo: lo + len(part)] = part
            self._chunks = keep
        return out


def frame_samples(resampler: Any, frame: Any) -> np.ndarray:
    """One decoded audio frame (None: flush) → 16 kHz mono float32 samples through `resampler`."""
    pieces = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    return np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32)


def speech_resampler(rate: int = SPEECH_RATE) -> Any:
    import av

    return av.AudioResampler(format="flt", layout="mono", rate=rate)


class FileAudio:
    """A file's first audio track, read on demand in its own container (a file can be re-read and
    seeked, so decoding it does not hold up the video's decoder): `take(start, end)` decodes up to
    `end` and returns [start, end). Times are seconds from the video's first frame (`origin`, the
    stream time of that frame), as the segments' are. NoAudioStreamError when there is none."""

    def __init__(self, source: str, *, origin: float = 0.0, timeout: float = 10.0) -> None:
        import av

        self.source, self.origin = source, origin
        try:
            self.container = av.open(source, timeout=timeout)
        except (av.FFmpegError, OSError) as exc:
            raise StreamingError(f"the audio of {source!r} could not be read ({exc}).") from None
        if not self.container.streams.audio:
            self.container.close()
            raise NoAudioStreamError(source)
        self.stream = self.container.streams.audio[0]
        self.buffer = TimedAudio()
        self._frames: Any = None
        self._resampler = speech_resampler()

    def _open_at(self, start: float) -> None:
        """Decode from the packet before `start` seconds on (a resumed ingest skips what was done)."""
        import av

        if start > 1.0:
            with contextlib.suppress(av.FFmpegError):
                self.container.seek(int(max(0.0, start + self.origin - 1.0) * av.time_base), backward=True)
        self._frames = self.container.decode(self.stream)

    def take(self, start: float, end: float) -> np.ndarray:
        import av

        if self._frames is None:
            self._open_at(start)
        try:
            while self.buffer.until < end:
                frame = next(self._frames, None)
                if frame is None:
                    self.buffer.add_resampled(None, frame_samples(self._resampler, None))
                    self.buffer.finish()
                    break
                t = None if frame.pts is None or frame.time_base is None else \
                    float(frame.pts * frame.time_base) - self.origin
                self.buffer.add_resampled(t, frame_samples(self._resampler, frame))
        except av.FFmpegError as exc:
            raise StreamingError(f"the audio of {self.source!r} could not be decoded ({exc}).") from None
        return self.buffer.take(start, end)

    def close(self) -> None:
        self.container.close()
