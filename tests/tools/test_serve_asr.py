"""`tempo serve --asr` (issue 24): ingest jobs asked with `"asr": true` transcribe the source's audio
with the server's Whisper checkpoint, as `tempo ingest --asr` does; a client only switches it on and
never names a checkpoint. The real server process on its own memory, the project's tiny random Whisper
(its words are noise: what is asserted is the timing path) and a video whose audio track says a
sentence made by Debian's espeak-ng at AT seconds."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx2
import pytest
from tempo.models.whisper_tiny import write_tiny_whisper
from tempo.streaming.audio import decode_audio
from tempo.streaming.synthetic_text import speak, write_spoken_video

tools_conftest = sys.modules[
    next(n for n, m in sys.modules.items() if n.endswith("conftest") and hasattr(m, "ServeProcess"))
]
ServeProcess = tools_conftest.ServeProcess
AT = 5.0  # seconds into the video where the speech starts


def problem_of(response) -> dict:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body = response.json()
    assert body["status"] == response.status_code
    assert "\n" not in body["detail"] and "Traceback" not in body["detail"]
    return body


@pytest.fixture(scope="module")
def media(serve_memory, tmp_path_factory) -> tuple[str, float]:
    """The media root holding talk.mkv (12 s, the sentence said at AT) beside the silent walk.mp4;
    returns (the media root, the speech's length in seconds)."""
    wav = speak("a blue elephant crosses the road", tmp_path_factory.mktemp("speech") / "speech.wav")
    samples, _ = decode_audio(str(wav))
    root = serve_memory.root / "media"
    write_spoken_video(root / "talk.mkv", wav, at=AT, duration=12.0, fps=10)
    return str(root), len(samples) / 16000


@pytest.fixture(scope="module")
def asr_server(serve_memory, media, tmp_path_factory):
    """`tempo serve --media-root MEDIA --asr TINY_WHISPER` on loopback without a token."""
    whisper = write_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny-whisper")
    # A tiny model gains nothing from threads, and on a loaded shared machine they spin.
    server = ServeProcess(serve_memory, "--media-root", media[0], "--asr", str(whisper), env={"OMP_NUM_THREADS": "1"})
    yield server
    server.stop()


def wait_job(base: str, job_id: str, timeout: float = 240) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while True:
        job = httpx2.get(f"{base}/v1/jobs/{job_id}").json()
        if job["state"] in ("done", "failed"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.3)


def test_an_ingest_job_with_asr_commits_speech_cues_on_the_spoken_interval(asr_server, media) -> None:
    started = httpx2.post(f"{asr_server.base}/v1/streams/spoken/ingest", json={"source": "talk.mkv", "asr": True})
    assert started.status_code == 202, started.text
    assert started.json()["asr"] is True
    job = wait_job(asr_server.base, started.json()["id"])
    assert job["state"] == "done" and job["asr"] is True, job
    got = httpx2.get(f"{asr_server.base}/v1/streams/spoken/transcript")
    assert got.status_code == 200, got.text
    cues = got.json()["cues"]
    assert cues, "no speech cue was committed"
    length = media[1]
    for c in cues:
        assert c["source"] == "asr"
        assert c["start"] >= AT - 0.5 and c["end"] <= AT + length + 0.5, c


def test_a_job_without_asr_keeps_no_speech(asr_server) -> None:
    started = httpx2.post(f"{asr_server.base}/v1/streams/quiet/ingest", json={"source": "talk.mkv"})
    assert started.status_code == 202 and started.json()["asr"] is False
    assert wait_job(asr_server.base, started.json()["id"])["state"] == "done"
    got = httpx2.get(f"{asr_server.base}/v1/streams/quiet/transcript").json()
    assert got["cues"] == []


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"source": "walk.mp4", "asr": True}, "has no audio stream"),  # a file without audio
        ({"source": "talk.mkv", "asr": "/etc/whisper"}, "asr"),  # a client never names a checkpoint
        ({"source": "talk.mkv", "asr": 1}, "asr"),
    ],
)
def test_bad_asr_requests_are_one_sentence_422_and_start_no_job(asr_server, body, detail) -> None:
    before = httpx2.get(f"{asr_server.base}/v1/jobs").json()
    got = httpx2.post(f"{asr_server.base}/v1/streams/bad-asr/ingest", json=body)
    assert got.status_code == 422, got.text
    assert detail in problem_of(got)["detail"]
    assert httpx2.get(f"{asr_server.base}/v1/jobs").json() == before


def test_a_server_without_asr_refuses_asr_jobs_in_one_sentence(serve_memory, media) -> None:
    import anyio
    import httpx
    from tempo.tools.server import ServeSettings, create_app

    app = create_app(serve_memory.service(),
                     ServeSettings(warm=False, resume_jobs=False, media_root=Path(media[0])))  # fmt: skip

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as c:
            return await c.post("/v1/streams/no-asr/ingest", json={"source": "talk.mkv", "asr": True})

    got = anyio.run(go)
    assert got.status_code == 422
    assert problem_of(got)["detail"] == (
        'this server transcribes no speech: start `tempo serve` with --asr DIR|HUB_ID to ingest with "asr"'
    )
