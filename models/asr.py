"""Speech recognition: Whisper through transformers' ASR pipeline, with segment timestamps and language.

`SpeechRecognizer(model)` loads a Whisper checkpoint (a directory, e.g. the tiny one of
models/whisper_tiny.py, or a hub id such as an MIT-licensed `openai/whisper-*`) and turns audio
(16 kHz mono float32, streaming/audio.py) into `Cue`s with source "asr":

  1. the voiced regions of the audio (energy; `streaming.audio.voiced_regions`) are what is listened
     to: silence yields no cue, and no cue lies outside sound;
  2. each region is cut at the segment grid into pieces of at most `chunk_seconds` (≤ 30 s, Whisper's
     window), so a piece never straddles a memory segment boundary mid-chunk;
  3. each piece goes through the pipeline with `return_timestamps=True` and `return_language=True`;
     a chunk's times (relative to its piece) are clipped to the piece, so a model's timestamps can
     refine a cue but never move it off the sound.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
from tempo.models.errors import ModelNotAvailableError
from tempo.streaming.audio import SPEECH_RATE, voiced_regions
from tempo.streaming.subtitles import Cue

_SPECIAL = re.compile(r"<\|[^|>]*\|>")
_LANGUAGE_TAG = re.compile(r"<\|([a-z]{2,3})\|>")


class SpeechRecognizer:
    """A Whisper ASR pipeline on one device (CPU by default)."""

    def __init__(self, model: str, *, device: str = "cpu", max_new_tokens: int = 128) -> None:
        from transformers import pipeline

        self.model_id = model
        self.max_new_tokens = max_new_tokens
        try:
            self.pipe: Any = pipeline("automatic-speech-recognition", model=model, device=device)
        except (OSError, ValueError, KeyError):  # not there, not a Whisper, a hub id we cannot fetch
            raise ModelNotAvailableError(
                f"the speech recognition checkpoint {model!r} could not be loaded: it is neither a Whisper "
                "directory nor a hub id in the local cache."
            ) from None

    def pieces(self, samples: np.ndarray, *, grid: float, chunk_seconds: float = 28.0,
               rate: int = SPEECH_RATE) -> list[tuple[float, float]]:
        """The (start, end) seconds that are transcribed: voiced regions cut at multiples of `grid`
        (the segment duration) into pieces of at most `chunk_seconds` (rounded down to the grid)."""
        step = max(grid, grid * math.floor(min(chunk_seconds, 30.0) / grid))
        out: list[tuple[float, float]] = []
        for a, b in voiced_regions(samples, rate):
            t = a
            while t < b - 1e-6:
                cut = min(b, (math.floor(t / step) + 1) * step)
                out.append((t, cut))
                t = cut
        return out

    def transcribe(self, samples: np.ndarray, *, offset: float = 0.0, grid: float = 4.0,
                   language: str | None = None, progress: Callable[[float], None] | None = None) -> list[Cue]:
        """Cues of `samples` (16 kHz mono float32) whose first sample is at `offset` seconds of stream
        time; `grid`: the memory's segment duration (pieces are cut on it). `progress(seconds)` is
        called after each piece with the audio seconds done."""
        cues: list[Cue] = []
        generate: dict[str, Any] = {"max_new_tokens": self.max_new_tokens}
        if language:
            generate["language"] = language
        for a, b in self.pieces(samples, grid=grid):
            piece = samples[int(a * SPEECH_RATE): int(b * SPEECH_RATE)]
            out = self.pipe({"raw": piece, "sampling_rate": SPEECH_RATE}, return_timestamps=True,
                            return_language=True, generate_kwargs=generate)
            cues += _piece_cues(out, a, b, offset)
            if progress is not None:
                progress(b - a)
        return cues


def _piece_cues(out: dict[str, Any], a: float, b: float, offset: float) -> list[Cue]:
    """One cue per pipeline chunk, its times clipped to the piece [a, b) (seconds of the audio);
    text of a chunk that clips to nothing joins the cue before it."""
    cues: list[Cue] = []
    for chunk in out.get("chunks") or [{"timestamp": (0.0, b - a), "text": out.get("text", "")}]:
        raw = str(chunk.get("text") or "")
        said = _LANGUAGE_TAG.search(raw)  # a multilingual model writes the language it heard as <|xx|>
        text = _SPECIAL.sub("", raw).strip()
        if not text:
            continue
        t0, t1 = chunk.get("timestamp") or (0.0, None)
        start = min(max(a + float(t0 or 0.0), a), b)
        end = b if t1 is None else min(max(a + float(t1), start), b)
        language = chunk.get("language") or (said.group(1) if said else None)
        if end - start < 1e-3:
            if cues:
                last = cues[-1]
                cues[-1] = Cue(last.start, last.end, f"{last.text} {text}", "asr", last.language)
                continue
            start, end = a, b
        cues.append(Cue(offset + start, offset + end, text, "asr", language))
    return cues
