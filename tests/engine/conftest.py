"""Fixtures of the speech tests: the project's tiny random Whisper checkpoint, and a video whose audio
track says a sentence (Debian's espeak-ng) at AT seconds; both made once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tempo.models.whisper_tiny import write_tiny_whisper
from tempo.streaming.audio import decode_audio
from tempo.streaming.synthetic_text import speak, write_spoken_video

AT = 5.0  # seconds into the video where the speech starts


@pytest.fixture(scope="session")
def whisper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import torch

    # A tiny model gains nothing from threads, and on a loaded shared machine they spin (30× slower).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield str(write_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny-whisper"))
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, float]:
    """(the WAV of the sentence, its length in seconds)."""
    wav = speak("a blue elephant crosses the road", tmp_path_factory.mktemp("speech") / "speech.wav")
    samples, _ = decode_audio(str(wav))
    return str(wav), len(samples) / 16000


@pytest.fixture(scope="session")
def spoken(tmp_path_factory: pytest.TempPathFactory, speech_wav: tuple[str, float]) -> tuple[str, float]:
    """(a 12-s Matroska video saying the sentence at AT seconds, the speech's length in seconds)."""
    wav, length = speech_wav
    video = write_spoken_video(tmp_path_factory.mktemp("spoken") / "talk.mkv", wav, at=AT, duration=12.0, fps=10)
    return str(video), length
