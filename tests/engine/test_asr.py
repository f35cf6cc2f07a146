"""Speech recognition of a file's audio track: Whisper (the project's tiny random checkpoint) over
speech that Debian's espeak-ng says. The tiny model's words are noise, so what is asserted is the
timing path: cues lie on the spoken interval (±0.5 s), silence gives none, and bad inputs are one
sentence. (CI installs espeak-ng: `make speech`; these tests fail, not skip, without it.)"""

from __future__ import annotations

import pytest
from tempo.engine.text_track import transcribe_source
from tempo.models.whisper_tiny import write_tiny_whisper
from tempo.streaming.audio import NoAudioStreamError, decode_audio, voiced_regions
from tempo.streaming.synthetic import write_test_video
from tempo.streaming.synthetic_text import speak, write_spoken_video

AT = 5.0  # seconds into the video where the speech starts


@pytest.fixture(scope="module")
def whisper(tmp_path_factory):
    import torch

    # A tiny model gains nothing from threads, and on a loaded shared machine they spin (30× slower).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield str(write_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny-whisper"))
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> tuple[str, float]:
    root = tmp_path_factory.mktemp("spoken")
    wav = speak("a blue elephant crosses the road", root / "speech.wav")
    samples, _ = decode_audio(str(wav))
    length = len(samples) / 16000
    video = write_spoken_video(root / "talk.mkv", wav, at=AT, duration=12.0, fps=10)
    return str(video), length


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
