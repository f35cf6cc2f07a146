"""Text on the queue path (issue 24): a producer's jobs carry each segment's subtitle cues and audio,
and a worker transcribes the audio (the tiny random Whisper: times and plumbing, not words) and
commits both with the segment, where the keyword index finds them. Real Redis, real decoding, the
real queue (memory/jobqueue.py), producer and worker in process."""

from __future__ import annotations

import json
import threading

import pytest
from tempo.engine.producer import produce
from tempo.engine.worker import Worker
from tempo.memory.frames import decode_audio_bytes
from tempo.memory.jobqueue import JobQueue, JobSpec, QueueSettings
from tempo.memory.text_index import KeywordIndex
from tempo.streaming import SamplingConfig
from tempo.streaming.audio import NoAudioStreamError
from tempo.streaming.subtitles import load_text_track
from tempo.streaming.synthetic import write_test_video
from tempo.streaming.synthetic_text import write_spoken_video, write_srt

AT = 5.0  # conftest.py's `spoken`: the sentence starts here


def _drain(service, queue: JobQueue, asr: str | None = None) -> Worker:
    worker = Worker(queue, service.store, model=service.model, embedder=service.embedder,
                    model_id=service.model_name, batch_size=4, asr=asr)
    worker.run(stop=threading.Event(), idle_exit=1.0)
    return worker


def test_queued_jobs_carry_cues_and_audio_and_the_worker_commits_subtitles_and_speech(
        whisper, speech_wav, live_service, tmp_path) -> None:
    wav, length = speech_wav
    video = write_spoken_video(tmp_path / "talk.mkv", wav, at=AT, duration=12.0, fps=10)
    write_srt(tmp_path / "talk.srt", [(9.0, 10.5, "a blue elephant on screen")])  # the sidecar file
    store = live_service.store
    queue = JobQueue.for_store(store, QueueSettings(max_jobs=16))
    name = "queued-talk"
    try:
        report = produce(str(video), name, queue=queue, store=store, progress=False,
                         spec=JobSpec(sampling=SamplingConfig(), asr=whisper), text_track=load_text_track(str(video)))
        assert report.queued == 3
        jobs = store.client.xrange(queue.k_jobs(name))
        metas = [json.loads(fields[b"job"]) for _, fields in jobs]
        assert [m.get("cu", []) for m in metas] == [[], [], [[9.0, 10.5, "a blue elephant on screen", "srt", None]]]
        assert all(m["spec"]["asr"] == whisper for m in metas)
        audio = [decode_audio_bytes(fields[b"audio"]) for _, fields in jobs]
        assert [len(a) for a in audio] == [64000, 64000, 64000]  # each segment's 4 s at 16 kHz
        assert float(abs(audio[0]).max()) < 1e-3 < float(abs(audio[1]).max())  # the speech is in segment 1

        worker = _drain(live_service, queue)
        assert worker.stats.segments == 3 and worker.stats.dead == 0
        records = {r.index: r for r in store.iter_segments(name, tokens=False)}
        assert sorted(records) == [0, 1, 2] and records[0].cues == ()
        speech = [c for r in records.values() for c in r.cues if c.source == "asr"]
        assert speech and all(c in records[1].cues for c in speech)
        assert all(AT - 0.5 <= c.start < c.end <= AT + length + 0.5 for c in speech)
        assert [c.text for c in records[2].cues if c.source == "srt"] == ["a blue elephant on screen"]
        # the keyword index sees the committed words
        hits = KeywordIndex(store).search(name, "elephant screen", k=3)
        assert hits and hits[0].index == 2
    finally:
        queue.delete(name)
        if name in store.stream_names():
            store.delete_stream(name)


def test_a_worker_asr_flag_overrides_and_jobs_without_audio_get_no_speech(whisper, live_service, tmp_path) -> None:
    video = write_test_video(tmp_path / "mute.mp4", duration=4.0, fps=10)
    store = live_service.store
    queue = JobQueue.for_store(store, QueueSettings(max_jobs=16))
    name = "queued-mute"
    try:
        with pytest.raises(NoAudioStreamError):  # asked for speech, the file has no audio: one sentence
            produce(str(video), name, queue=queue, store=store, progress=False,
                    spec=JobSpec(sampling=SamplingConfig(), asr=whisper))
        assert store.client.xlen(queue.k_jobs(name)) == 0  # nothing was queued
        produce(str(video), name, queue=queue, store=store, progress=False, spec=JobSpec(sampling=SamplingConfig()))
        worker = _drain(live_service, queue, asr=whisper)
        assert worker.stats.segments == 1
        assert [r.cues for r in store.iter_segments(name, tokens=False)] == [()]
    finally:
        queue.delete(name)
        if name in store.stream_names():
            store.delete_stream(name)


def _job_of(fields: dict[str, bytes]):
    from tempo.memory.jobqueue import _parse_entry

    return _parse_entry("k", "cam", b"1-0", {k.encode(): v for k, v in fields.items()})


def _text_segment():
    import dataclasses

    import numpy as np
    from tempo.streaming import Segment
    from tempo.streaming.segment import SourceInfo
    from tempo.streaming.subtitles import Cue

    segment = Segment(stream_id="cam", index=1, start=4.0, end=8.0, timestamps=4.0 + np.arange(8) / 2,
                      frames=np.zeros((8, 32, 48, 3), np.uint8), sample_fps=2.0, first_frame_index=8,
                      source=SourceInfo(uri="/v.mp4", kind="file", live=False))
    audio = np.sin(np.arange(64000) / 20).astype(np.float32) * 0.5  # (64000,) 4 s at 16 kHz
    return dataclasses.replace(segment, extra={"cues": [Cue(4.5, 6.0, "hello", "srt", "en")], "audio": audio})


def test_a_job_round_trips_its_cues_and_audio() -> None:
    import numpy as np
    from tempo.memory.jobqueue import job_fields
    from tempo.streaming.subtitles import Cue

    segment = _text_segment()
    job = _job_of(job_fields(segment, JobSpec(sampling=SamplingConfig(), asr="openai/whisper-small")))
    assert job.problem() is None and job.spec.asr == "openai/whisper-small"
    back = job.segment()
    assert back.extra["cues"] == [Cue(4.5, 6.0, "hello", "srt", "en")]
    assert np.abs(back.extra["audio"] - segment.extra["audio"]).max() < 1 / 16000  # 16-bit PCM


@pytest.mark.parametrize(("cues", "says"), [
    ("hello", "cues must be a list"),
    ([[5.0, 4.0, "x", "srt", None]], "cue end"),
    ([[4.0, 5.0, 7, "srt", None]], "no text, source or language"),
    ([[4.0, 5.0, "x", "srt"]], "not a [start, end, text, source, language] row"),
    ([[4.0, 5.0, "x", "srt", None]] * 2000, "at most 1024 rows"),
])
def test_a_job_s_cues_are_checked_like_its_other_fields(cues, says: str) -> None:
    from tempo.memory.jobqueue import job_fields

    fields = job_fields(_text_segment(), JobSpec(sampling=SamplingConfig()))
    meta = json.loads(fields["job"])
    meta["cu"] = cues
    fields["job"] = json.dumps(meta).encode()
    problem = _job_of(fields).problem()
    assert problem is not None and says in problem and "\n" not in problem


def test_damaged_or_oversized_audio_is_a_job_error_before_anything_is_allocated() -> None:
    import numpy as np
    from tempo.memory.errors import JobError
    from tempo.memory.jobqueue import job_fields

    fields = job_fields(_text_segment(), JobSpec(sampling=SamplingConfig()))
    for audio, says in ((b"TQA1" + np.array([2**31], "<u4").tobytes() + b"\0" * 16, "over the limit"),
                        (fields["audio"][:-20], "audio"), (b"nope", "not a Tempo audio clip")):
        with pytest.raises(JobError, match=says):
            _job_of({**fields, "audio": audio}).segment()
    meta = json.loads(fields["job"])
    meta["spec"]["asr"] = 5
    assert _job_of({**fields, "job": json.dumps(meta).encode()}).problem() is not None
