"""Speech recognition run later over an already ingested recording (`tempo subtitles transcribe`), on
the project's tiny random Whisper, espeak-ng speech (tests/engine/conftest.py), the tiny Tempo model
and real Redis. The tiny Whisper's words are noise, so the timing path is what is asserted: cues lie
on the spoken interval (±0.5 s) and on the segments they overlap; plus idempotent reruns, Ctrl-C
losing at most a batch, the keyword index seeing the words, and each bad input refused in one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from tempo.engine.speech_later import speech_batches, transcribe_stream
from tempo.memory.records import SegmentRecord
from tempo.streaming.subtitles import Cue
from tempo.streaming.synthetic import write_test_video
from tempo.tools.cli import main

AT = 5.0  # conftest.py's `spoken`: the sentence starts 5 s into a 12-s video (segments of 4 s)


@pytest.fixture(scope="module")
def recognizer(whisper):
    from tempo.models.asr import SpeechRecognizer

    return SpeechRecognizer(whisper)


@pytest.fixture()
def ingested(live_service, spoken, tmp_path):
    """A fresh copy of the spoken video ingested without speech (its own stream per test)."""
    video = shutil.copy(spoken[0], tmp_path / "talk.mkv")
    name = f"later-{os.path.basename(tmp_path)}"[:100]
    live_service.ingest(str(video), name, progress=False)
    yield name, str(video)
    live_service.store.delete_stream(name)


def _cues(service, stream):
    return {r.index: r.cues for r in service.store.iter_segments(stream, tokens=False, embedding=False,
                                                                 recompress=False)}


def test_transcribing_later_puts_speech_cues_on_the_spoken_segments_once(live_service, ingested, recognizer,
                                                                         spoken) -> None:
    stream, video = ingested
    length = spoken[1]
    assert all(not cs for cs in _cues(live_service, stream).values())
    assert live_service.recall.keywords.search(stream, "anything", k=3) == []  # its keyword index, built empty
    report = transcribe_stream(live_service.store, stream, recognizer, asr="tiny", batch_size=2, progress=False)
    assert (report.segments, report.skipped, report.transcribed, report.interrupted) == (3, 0, 3, False)
    assert report.audio_seconds == pytest.approx(12.0, abs=0.05) and report.source == video
    kept = _cues(live_service, stream)
    records = {r.index: r for r in live_service.store.iter_segments(stream, tokens=False, embedding=False)}
    assert kept[0] == () and kept[1], kept  # the speech (5 s on) is in segment 1 ([4, 8) s)
    placed = [(i, c) for i, cs in kept.items() for c in cs]
    assert report.cues == len(placed) and report.updated == sum(1 for cs in kept.values() if cs)
    for i, c in placed:
        assert c.source == "asr" and c.text
        assert AT - 0.5 <= c.start < c.end <= AT + length + 0.5, c
        assert c.end > records[i].start and c.start < records[i].end

    # the keyword index sees the new words
    hits = live_service.recall.keywords.search(stream, kept[1][0].text, k=3)
    assert hits and hits[0].index == 1

    again = transcribe_stream(live_service.store, stream, recognizer, batch_size=2, progress=False)
    assert (again.cues, again.updated, again.skipped) == (0, 0, report.updated)
    assert _cues(live_service, stream) == kept


def test_ctrl_c_loses_at_most_the_batch_in_flight_and_a_rerun_finishes(live_service, ingested, recognizer) -> None:
    stream, _ = ingested

    class InterruptedAt:  # the real recognizer; Ctrl-C arrives while the third batch is transcribed
        def __init__(self, at: int) -> None:
            self.calls, self.at = 0, at

        def transcribe(self, *args, **kwargs):
            self.calls += 1
            if self.calls == self.at:
                raise KeyboardInterrupt
            return recognizer.transcribe(*args, **kwargs)

    first = transcribe_stream(live_service.store, stream, InterruptedAt(3), batch_size=1, progress=False)
    assert first.interrupted and first.transcribed == 2 and first.cues >= 1
    kept = _cues(live_service, stream)
    assert kept[1] and kept[2] == ()
    rest = transcribe_stream(live_service.store, stream, recognizer, batch_size=1, progress=False)
    # segment 1 carries speech: skipped; 0 (silent) and 2 are listened to; nothing is added twice
    assert (rest.interrupted, rest.skipped, rest.transcribed) == (False, 1, 2)
    assert _cues(live_service, stream)[1] == kept[1]


def test_batches_are_runs_of_untranscribed_segments_that_follow_each_other() -> None:
    def seg(i, start, cues=()):
        return SegmentRecord(stream="s", index=i, start=start, end=start + 4.0, timestamps=np.zeros(0),
                             frame_size=(96, 160), cues=tuple(cues))

    speech = Cue(4.5, 5.0, "hi", "asr", None)
    subtitle = Cue(8.5, 9.0, "hi", "srt", None)
    records = [seg(0, 0.0), seg(1, 4.0, [speech]), seg(2, 8.0, [subtitle]), seg(3, 12.0), seg(4, 16.0),
               seg(6, 24.0), seg(7, 30.0)]  # 5 is gone (retention); 7 follows a gap in time
    runs = [[r.index for r in run] for run in speech_batches(records, 2)]
    assert runs == [[0], [2, 3], [4], [6], [7]]


def test_the_cli_prints_a_json_summary(live_memory, ingested, whisper) -> None:
    stream, video = ingested
    run = subprocess.run([*live_memory.cli("subtitles", "transcribe", stream, "--asr", whisper, "--json")],
                         env=live_memory.env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["stream"] == stream and out["source"] == video and out["asr"] == whisper
    assert (out["segments"], out["transcribed"], out["interrupted"]) == (3, 3, False)
    assert out["cues"] >= 1 and out["updated"] >= 1


def _refused(live_memory, capsys, *argv: str) -> str:
    code = main(["subtitles", "transcribe", *argv, "--redis-url", live_memory.url])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_bad_inputs_are_refused_in_one_sentence_before_anything_is_written(live_memory, live_service, ingested,
                                                                           tmp_path, capsys) -> None:
    stream, video = ingested
    missing = str(tmp_path / "no-whisper")
    assert _refused(live_memory, capsys, "nosuch", "--asr", missing).startswith("tempo: error: unknown stream 'nosuch'")

    # a checkpoint that is not a Whisper: told after the source checks pass, nothing written
    line = _refused(live_memory, capsys, stream, "--asr", missing)
    assert "could not be loaded" in line and _cues(live_service, stream)[1] == ()

    # the file changed since it was ingested (its fingerprint), then is gone
    with open(video, "ab") as handle:
        handle.write(b"\0" * 16)
    assert "has changed since stream" in _refused(live_memory, capsys, stream, "--asr", missing)
    os.remove(video)
    assert _refused(live_memory, capsys, stream, "--asr", missing) == (
        f"tempo: error: {video!r}, the file stream {stream!r} was ingested from, no longer exists, so its "
        "speech cannot be transcribed")

    # a recording without an audio track
    mute = write_test_video(tmp_path / "mute.mp4", duration=2.0, fps=10)
    live_service.ingest(str(mute), "later-mute", progress=False)
    try:
        assert _refused(live_memory, capsys, "later-mute", "--asr", missing) == (
            f"tempo: error: {str(mute)!r} has no audio stream, so there is no speech to recognise.")
    finally:
        live_service.store.delete_stream("later-mute")


def test_a_live_stream_is_refused_in_one_sentence(live_memory, live_service, capsys) -> None:
    settings = live_service.stream(live_service.store.stream_names()[0]).settings
    source = {"uri": "rtsp://user:secret@camera.example/live", "kind": "network", "live": True}
    live_service.store.create_stream("later-live", source, settings, None)
    try:
        line = _refused(live_memory, capsys, "later-live", "--asr", "whatever")
        assert "was ingested from a live source" in line and "secret" not in line
        assert "tempo ingest --asr" in line
    finally:
        live_service.store.delete_stream("later-live")

