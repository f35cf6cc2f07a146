"""`tempo ingest --queue --asr --subtitles` and `tempo worker` as separate processes (issue 24): the
producer's jobs carry each segment's subtitle cues and audio, the worker transcribes the audio (the
tiny random Whisper: times and plumbing) and commits both with the segment; `tempo search` finds the
subtitle's words. Real Redis, real decoding of generated media, espeak-ng speech."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import redis
from tempo.memory import RedisMemoryStore
from tempo.models.whisper_tiny import write_tiny_whisper
from tempo.streaming.synthetic_text import speak, write_spoken_video, write_srt

AT = 5.0  # seconds into the video where the sentence starts


def test_the_queue_path_commits_subtitles_and_speech_with_their_segments(
    tempo_cli: Callable[..., subprocess.CompletedProcess[str]], redis_url: str, tmp_path: Path,
) -> None:
    whisper = write_tiny_whisper(tmp_path / "whisper")
    video = write_spoken_video(tmp_path / "talk.mkv", speak("a blue elephant crosses the road", tmp_path / "s.wav"),
                               at=AT, duration=12.0, fps=10)
    subs = write_srt(tmp_path / "words.srt", [(9.0, 10.5, "the budget meeting starts")])
    produced = tempo_cli("ingest", str(video), "--stream", "talk", "--queue", "--asr", str(whisper),
                         "--subtitles", str(subs), "--json")
    assert json.loads(produced.stdout.strip().splitlines()[-1])["queued"] == 3
    worked = tempo_cli("worker", "--idle-exit", "3", "--json", "--asr", str(whisper))
    assert json.loads(worked.stdout.strip().splitlines()[-1])["segments"] == 3

    store = RedisMemoryStore(redis.Redis.from_url(redis_url))
    cues = {r.index: r.cues for r in store.iter_segments("talk", tokens=False, embedding=False)}
    assert cues[0] == ()
    speech = [c for c in cues[1] if c.source == "asr"]
    assert speech and all(AT - 0.5 <= c.start < c.end <= AT + 2.5 for c in speech)
    assert [c.text for c in cues[2]] == ["the budget meeting starts"]
    # the keyword index saw the worker's commit: the words' segment leads the fused ranking
    moments = json.loads(tempo_cli("search", "budget meeting", "--streams", "talk", "--json").stdout)["moments"]
    assert moments[0]["index"] == 2 and moments[0]["score"] > max(m["score"] for m in moments[1:])
