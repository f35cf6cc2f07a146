"""Speech recognition of a live source (issue 24): an MPEG-TS camera with an audio track, sent at real
time over loopback TCP; its audio is demuxed beside the video from the same container, placed on the
segments' timeline (stream timestamps mapped as the frames' are) and transcribed per batch. The tiny
random Whisper's words are noise: the times and the plumbing are what is asserted."""

from __future__ import annotations

import logging
from pathlib import Path

from tempo.streaming import SamplingConfig
from tempo.streaming.synthetic import RealTimePublisher, write_mpegts
from tempo.streaming.synthetic_text import write_spoken_video

AT = 5.0  # seconds into the stream where the sentence starts
LIVE = SamplingConfig(max_edge=128, connect_timeout=5.0, read_timeout=5.0, reconnect_attempts=0)


def test_a_live_camera_s_speech_is_transcribed_per_batch_on_its_timeline(
        whisper, speech_wav, live_service, tmp_path) -> None:
    wav, length = speech_wav
    camera = write_spoken_video(tmp_path / "camera.ts", wav, at=AT, duration=10.0, fps=10)
    publisher = RealTimePublisher(Path(camera).read_bytes(), 10.0)
    name = "live-talk"
    try:
        report = live_service.ingest(publisher.url, name, sampling=LIVE, progress=False, asr=whisper, batch_size=1)
        assert report.committed >= 2 and report.speech is not None
        assert report.speech["first"] == 0.0 and report.speech["audio_seconds"] >= 8.0
        records = list(live_service.store.iter_segments(name, tokens=False))
        speech = [(r.index, c) for r in records for c in r.cues]
        assert speech, "no segment kept a speech cue"
        for index, cue in speech:
            r = records[index]
            assert cue.source == "asr" and cue.end > r.start and cue.start < r.end
            assert AT - 0.5 <= cue.start < cue.end <= AT + length + 0.5, cue
    finally:
        publisher.close()
        if name in live_service.store.stream_names():
            live_service.store.delete_stream(name)


def test_a_live_source_without_audio_is_told_once_and_ingested_as_video(
        whisper, live_service, tmp_path, caplog) -> None:
    camera = write_mpegts(tmp_path / "mute.ts", duration=4.0, fps=10)
    publisher = RealTimePublisher(Path(camera).read_bytes(), 4.0)
    name = "live-mute"
    try:
        with caplog.at_level(logging.WARNING, logger="tempo.engine.speech"):
            report = live_service.ingest(publisher.url, name, sampling=LIVE, progress=False, asr=whisper)
        notices = [r.getMessage() for r in caplog.records if r.name == "tempo.engine.speech"]
        assert notices == [f"{publisher.url} has no audio track: going on with video only, without speech"]
        assert report.committed >= 1 and report.speech == {"audio_seconds": 0.0, "cues": 0, "first": None}
        assert all(r.cues == () for r in live_service.store.iter_segments(name, tokens=False))
    finally:
        publisher.close()
        if name in live_service.store.stream_names():
            live_service.store.delete_stream(name)


def test_a_restarted_live_source_s_speech_lands_on_the_continued_timeline(
        whisper, speech_wav, live_service, tmp_path) -> None:
    wav, length = speech_wav
    camera = write_spoken_video(tmp_path / "camera.ts", wav, at=AT, duration=8.0, fps=10)
    publisher = RealTimePublisher(Path(camera).read_bytes(), 8.0, connections=2)
    name = "live-again"
    try:
        live_service.ingest(publisher.url, name, sampling=LIVE, progress=False, asr=whisper, max_segments=1)
        offset = live_service.stream(name).end  # the camera comes back: its clock starts again at 0
        again = live_service.ingest(publisher.url, name, sampling=LIVE, progress=False, asr=whisper, batch_size=1)
        assert again.resumed_from == 1 and again.speech is not None and again.speech["first"] == offset
        records = list(live_service.store.iter_segments(name, tokens=False))
        speech = [(r, c) for r in records for c in r.cues]
        assert speech, "no segment kept a speech cue"
        for r, cue in speech:
            assert r.index >= 1 and cue.end > r.start and cue.start < r.end
            assert offset + AT - 0.5 <= cue.start < cue.end <= offset + AT + length + 0.5, (offset, cue)
    finally:
        publisher.close()
        if name in live_service.store.stream_names():
            live_service.store.delete_stream(name)
