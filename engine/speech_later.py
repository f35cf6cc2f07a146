"""Speech recognition over an already ingested recording: `tempo subtitles transcribe STREAM --asr DIR`.

A stream ingested from a file without `--asr` can get its speech later: the file it recorded (checked
against the fingerprint stored at ingest) is read again, its audio taken batch by batch on the
segments' own timeline (streaming.audio.FileAudio, seeked past what is skipped), transcribed by Whisper
(engine/speech.py `transcribe_audio`, pieces cut on the segment grid), and each batch's cues are
committed onto its segments at once, with the same atomic rewrite as `tempo subtitles add`
(memory/text_index.py `replace_cues`; the keyword index sees the new words). So Ctrl-C loses at most
the batch in flight, and a rerun skips the segments that already carry speech cues (a cue already
on a segment is never added twice).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tempo.engine.errors import NoFileSourceError, SourceGoneError
from tempo.engine.speech import transcribe_audio
from tempo.engine.text_track import place_cues
from tempo.errors import redact_url
from tempo.memory.records import SegmentRecord
from tempo.memory.store_types import StreamInfo
from tempo.streaming.audio import SPEECH_RATE, FileAudio
from tempo.streaming.segment import is_live
from tempo.streaming.subtitles import CueTrack

BATCH_SEGMENTS = 8  # segments per Whisper batch (32 s at the default 4-s segments: about Whisper's window)
SEEK_AHEAD = 30.0  # seconds of skipped audio past which the file is seeked rather than decoded through


@dataclass
class LaterSpeechReport:
    """What one `transcribe_stream` run did. Counts; seconds of audio."""

    stream: str
    source: str  # the file listened to
    asr: str  # the Whisper checkpoint
    segments: int = 0  # committed segments of the stream
    skipped: int = 0  # of them, those that already carried speech cues (not listened to again)
    transcribed: int = 0  # segments whose audio was listened to
    updated: int = 0  # segments given new speech cues
    cues: int = 0  # cue placements committed
    audio_seconds: float = 0.0
    interrupted: bool = False  # Ctrl-C: every batch before the one in flight is committed

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "audio_seconds": round(self.audio_seconds, 3)}


def stream_file_source(info: StreamInfo) -> str:
    """The path of the file `info`'s stream was ingested from, refused in one sentence when the stream
    is live (nothing to read again), the file is gone, or it changed since (fingerprint)."""
    uri = str(info.source.get("uri") or "")
    if not uri or is_live(info.source):
        raise NoFileSourceError(info.name, redact_url(uri) if uri else "an unknown source")
    if not os.path.lexists(uri):
        raise SourceGoneError(info.name, uri)
    info.check_source_unchanged(uri)  # SourceChangedError: size, modification time or first MiB differ
    return uri


def open_stream_audio(info: StreamInfo) -> FileAudio:
    """The audio track of the stream's file, on the segments' timeline (NoAudioStreamError when none)."""
    return FileAudio(stream_file_source(info), origin=float(info.source.get("start_time") or 0.0))


def _has_speech(record: SegmentRecord) -> bool:
    return any(c.source == "asr" for c in record.cues)


def speech_batches(records: list[SegmentRecord], size: int) -> Iterator[list[SegmentRecord]]:
    """Runs of at most `size` segments without speech cues that follow each other in time (a segment
    already transcribed, or a gap in the recording, ends a run)."""
    run: list[SegmentRecord] = []
    for record in records:
        if _has_speech(record):
            if run:
                yield run
            run = []
            continue
        if run and (len(run) >= size or record.index != run[-1].index + 1 or abs(record.start - run[-1].end) > 1e-3):
            yield run
            run = []
        run.append(record)
    if run:
        yield run


def transcribe_stream(store: Any, stream: str, recognizer: Any, *, asr: str = "", batch_size: int = BATCH_SEGMENTS,
                      progress: bool = True, language: str | None = None) -> LaterSpeechReport:
    """Transcribe the speech of `stream`'s stored file source onto its committed segments (module doc).
    `recognizer`: a models.asr.SpeechRecognizer. Refused in one sentence, before anything is written,
    for an unknown stream, a live source, a file gone or changed, a file without audio."""
    from tqdm import tqdm

    info = store.stream_info(stream)  # UnknownStreamError names the known streams
    audio = open_stream_audio(info)
    report = LaterSpeechReport(stream=stream, source=audio.source, asr=asr)
    grid = info.settings.window / info.settings.sample_fps
    try:
        records = list(store.iter_segments(stream, tokens=False, embedding=False, recompress=False))
        report.segments = len(records)
        report.skipped = sum(_has_speech(r) for r in records)
        batches = list(speech_batches(records, max(1, int(batch_size))))
        total = round(sum(b[-1].end - b[0].start for b in batches), 1)
        with tqdm(total=total, unit="s", desc="speech", disable=not progress) as bar:
            for batch in batches:
                start, end = float(batch[0].start), float(batch[-1].end)
                if start - audio.buffer.until > SEEK_AHEAD and audio.buffer.until > float("-inf"):
                    audio.close()  # far ahead: a fresh reader seeks there instead of decoding the skipped audio
                    audio = open_stream_audio(info)
                samples = audio.take(start, end)
                cues = transcribe_audio(recognizer, samples, start, grid, language)
                updated, placed = place_cues(store, stream, batch, CueTrack(list(cues)))
                report.transcribed += len(batch)
                report.updated += updated
                report.cues += placed
                report.audio_seconds += len(samples) / SPEECH_RATE
                bar.update(round(end - start, 1))
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        audio.close()
    return report
