"""Speech recognition during ingest: each batch of segments is transcribed as it is compressed.

A `BatchTranscriber` sits on the model thread between video batches (DESIGN §3, issue 24): for a
batch of segments it takes the audio of [first start, last end) from an `AudioSource` (a file's audio
track read on demand, `streaming.audio.FileAudio`; a live source's audio decoded beside its video from
the same container into a `TimedAudio`), runs Whisper on it (models/asr.py, pieces cut on the segment
grid) and hands back the cues, which the writer commits with the batch's segments in their own atomic
commit. So a long file's speech lands as it goes, a crash loses at most the batch in flight, and a
resumed ingest listens only to the segments it has not committed.

`transcribe_audio` is the same step for the queue's workers (engine/worker.py), whose jobs carry each
segment's audio.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from tempo.streaming.audio import SPEECH_RATE
from tempo.streaming.segment import Segment
from tempo.streaming.subtitles import Cue

log = logging.getLogger(__name__)

LIVE_AUDIO_WAIT = 3.0  # seconds a live batch waits for its audio to arrive (it is muxed beside the video)


class AudioSource(Protocol):
    def take(self, start: float, end: float) -> np.ndarray:
        """16 kHz mono float32 samples of [start, end) seconds of stream time."""
        ...


class LiveAudio:
    """A live source's audio (`SegmentStream.audio`, filled by its reader thread) as an AudioSource:
    a batch waits up to LIVE_AUDIO_WAIT seconds for the audio muxed after its video."""

    def __init__(self, buffer: Any) -> None:
        self.buffer = buffer

    def take(self, start: float, end: float) -> np.ndarray:
        return self.buffer.take(start, end, wait=LIVE_AUDIO_WAIT)  # type: ignore[no-any-return]


@dataclass
class SpeechCounters:
    """What speech recognition did in one run. Seconds of audio; counts."""

    audio_seconds: float = 0.0  # audio listened to
    cues: int = 0  # cues made
    first: float | None = None  # the first second of audio listened to (a resumed run starts after the committed)

    def to_json(self) -> dict[str, Any]:
        return {"audio_seconds": round(self.audio_seconds, 3), "cues": self.cues,
                "first": None if self.first is None else round(self.first, 3)}


def transcribe_audio(recognizer: Any, samples: np.ndarray, start: float, grid: float,
                     language: str | None = None) -> list[Cue]:
    """Cues of `samples` (16 kHz mono float32) that start at `start` seconds of stream time, pieces cut
    on the segment grid (`grid` seconds) counted from time 0, as the segments are."""
    # Pieces are cut at multiples of `grid` of the audio's own time: shift so that they fall on the stream's grid.
    lead = start % grid
    padded = np.concatenate([np.zeros(round(lead * SPEECH_RATE), np.float32), samples]) if lead > 1e-6 else samples
    cues = recognizer.transcribe(padded, offset=start - lead if lead > 1e-6 else start, grid=grid, language=language)
    return [c for c in cues if c.end > start]


class BatchTranscriber:
    """Whisper over the audio of each batch of segments (see the module doc)."""

    def __init__(self, recognizer: Any, audio: AudioSource | None, *, grid: float, language: str | None = None) -> None:
        self.recognizer, self.audio, self.grid, self.language = recognizer, audio, grid, language
        self.counters = SpeechCounters()

    def cues(self, batch: Sequence[Segment], *, shift: float = 0.0,
             model_lock: AbstractContextManager[Any] | None = None) -> list[Cue]:
        """The speech cues of the batch's stretch of time (none when the source has no audio), the
        segments as the source gave them; `shift` (seconds) moves the cues onto the stream's timeline
        (a live source restarted continues its stream after `shift` seconds). The audio is waited for
        outside `model_lock`; Whisper runs inside it."""
        if self.audio is None or not batch:
            return []
        start, end = float(batch[0].start), float(batch[-1].end)
        samples = self.audio.take(start, end)  # (n,) float32 at 16 kHz
        with model_lock or contextlib.nullcontext():
            cues = transcribe_audio(self.recognizer, samples, start + shift, self.grid, self.language)
        self.counters.audio_seconds += len(samples) / SPEECH_RATE
        self.counters.cues += len(cues)
        if self.counters.first is None:
            self.counters.first = start + shift
        return cues

    def close(self) -> None:
        close = getattr(self.audio, "close", None)
        if close is not None:
            close()


def open_audio(segments: Any, source: str) -> AudioSource | None:
    """The audio of the source `segments` (a SegmentStream) reads: a live source's comes from its reader
    (`segments.audio`, decoded from the same container; a source without an audio track gets a
    one-line notice and None: the run goes on with video only); a file's is read beside it
    (streaming.audio.FileAudio; NoAudioStreamError, one sentence, when it has none)."""
    from tempo.streaming.audio import FileAudio

    if segments.info.live:
        buffer = getattr(segments, "audio", None)
        if buffer is None:
            log.warning("%s has no audio track: going on with video only, without speech", source)
            return None
        return LiveAudio(buffer)
    return FileAudio(source, origin=float(segments.info.start_time))


def open_transcriber(recognizer: Any, segments: Any, source: str, *, grid: float) -> BatchTranscriber:
    """The transcriber of one ingest run over the source `segments` reads (`open_audio`)."""
    return BatchTranscriber(recognizer, open_audio(segments, source), grid=grid)
