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
