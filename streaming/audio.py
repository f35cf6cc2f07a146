"""The audio track of a media file, decoded beside its video: 16 kHz mono float32 for speech recognition."""

from __future__ import annotations

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
