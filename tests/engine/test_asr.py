"""Speech recognition of a file's audio track: Whisper (the project's tiny random checkpoint) over
speech that Debian's espeak-ng says. The tiny model's words are noise, so what is asserted is the
timing path: cues lie on the spoken interval (±0.5 s), silence gives none, and bad inputs are one
sentence. (CI installs espeak-ng: `make speech`; these tests fail, not skip, without it.)"""

from __future__ import annotations

import pytest
from tempo.engine.text_track import transcribe_source
from tempo.streaming.audio import NoAudioStreamError, decode_audio, voiced_regions
from tempo.streaming.synthetic import write_test_video
from tempo.streaming.synthetic_text import write_spoken_video

AT = 5.0  # seconds into the video where the speech starts (conftest.py's `spoken`)


def test_speech_cues_fall_inside_the_spoken_interval(whisper, spoken) -> None:
    video, length = spoken
    regions = voiced_regions(decode_audio(video)[0])
    assert regions and regions[0][0] == pytest.approx(AT, abs=0.2)
    track = transcribe_source(video, whisper, grid=4.0, progress=False)
    assert track.cues and track.problems == []
    for cue in track.cues:
        assert AT - 0.5 <= cue.start < cue.end <= AT + length + 0.5, cue
        assert cue.source == "asr" and cue.text
    # pieces never straddle the 4-s segment grid
    assert all(int(c.start // 4.0) == int((c.end - 1e-6) // 4.0) for c in track.cues)


def test_silence_gives_no_cue_and_says_so(whisper, tmp_path) -> None:
    video = write_spoken_video(tmp_path / "quiet.mkv", None, at=0.0, duration=4.0, fps=10)
    track = transcribe_source(str(video), whisper, grid=4.0, progress=False)
    assert track.cues == []
    assert track.problems == [f"no speech was recognised in the audio of {str(video)!r}"]


def test_a_video_without_audio_is_refused_in_one_sentence(whisper, tmp_path) -> None:
    video = write_test_video(tmp_path / "mute.mp4", duration=2.0, fps=10)
    with pytest.raises(NoAudioStreamError) as err:
        transcribe_source(str(video), whisper, grid=4.0, progress=False)
    assert str(err.value) == f"{str(video)!r} has no audio stream, so there is no speech to recognise."


def test_ingest_with_asr_commits_speech_cues_with_their_segments(whisper, spoken, live_service) -> None:
    video, length = spoken
    try:
        live_service.ingest(video, "spoken", progress=False, asr=whisper)
        records = list(live_service.store.iter_segments("spoken"))
        cued = [r for r in records if r.cues]
        assert cued, "no segment kept a speech cue"
        for r in cued:
            for c in r.cues:
                assert c.source == "asr" and c.end > r.start and c.start < r.end
                assert c.start >= AT - 0.5 and c.end <= AT + length + 0.5
    finally:
        live_service.store.delete_stream("spoken")


def test_speech_is_transcribed_per_batch_and_a_resumed_ingest_listens_only_to_what_is_new(
        whisper, spoken, live_service) -> None:
    video, length = spoken
    try:
        first = live_service.ingest(video, "spoken-resume", progress=False, asr=whisper, batch_size=1,
                                    max_segments=2)
        # one batch at a time: segments 0-1 ([0, 8) s) were listened to, and the speech (5 s on) landed in 1
        assert first.committed == 2 and first.speech == {"audio_seconds": 8.0, "cues": first.speech["cues"],
                                                         "first": 0.0}
        assert first.speech["cues"] >= 1 and first.to_json()["speech"] == first.speech
        kept = {r.index: r.cues for r in live_service.store.iter_segments("spoken-resume", tokens=False)}
        assert kept[0] == () and kept[1] and all(c.source == "asr" for c in kept[1])
        assert all(AT - 0.5 <= c.start < c.end <= AT + length + 0.5 for c in kept[1])

        again = live_service.ingest(video, "spoken-resume", progress=False, asr=whisper, batch_size=1)
        # the resumed run starts at segment 2: no committed segment's audio is listened to again
        assert (again.resumed_from, again.committed) == (2, 1)
        assert again.speech == {"audio_seconds": 4.0, "cues": 0, "first": 8.0}
        after = {r.index: r.cues for r in live_service.store.iter_segments("spoken-resume", tokens=False)}
        assert after == {**kept, 2: ()}
    finally:
        live_service.store.delete_stream("spoken-resume")


def test_no_speech_report_without_asr(live_service, tmp_path) -> None:
    video = write_test_video(tmp_path / "plain.mp4", duration=2.0, fps=10)
    try:
        report = live_service.ingest(str(video), "no-asr", progress=False)
        assert report.speech is None and "speech" not in report.to_json()
    finally:
        live_service.store.delete_stream("no-asr")


def test_a_checkpoint_that_is_not_a_whisper_is_refused_in_one_sentence(tmp_path) -> None:
    from tempo.models.asr import SpeechRecognizer
    from tempo.models.errors import ModelNotAvailableError

    for bad in (str(tmp_path / "missing"), str(tmp_path)):
        with pytest.raises(ModelNotAvailableError) as err:
            SpeechRecognizer(bad)
        assert str(err.value) == (f"the speech recognition checkpoint {bad!r} could not be loaded: it is neither "
                                  "a Whisper directory nor a hub id in the local cache.")
