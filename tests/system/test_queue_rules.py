"""Monitoring and file fingerprints on queue-ingested streams, with a real in-process `Worker`.

A rule on a stream ingested through the work queue raises the alerts a single-process ingest of the
same video raises, however its jobs are split into batches and whatever order they land in; the
stream the worker creates keeps the file's fingerprint, so a replaced file is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from tempo.agent.monitoring.ingest import monitored_ingest, rule_monitor
from tempo.agent.monitoring.monitor import RuleMonitor
from tempo.engine.producer import produce
from tempo.engine.worker import Worker
from tempo.memory.alerts import Rule
from tempo.memory.errors import SourceChangedError
from tempo.memory.jobqueue import JobQueue, JobSpec
from tempo.service import TempoService
from tempo.streaming import SamplingConfig, iter_segments
from tempo.streaming.sources import fingerprint_file
from tempo.streaming.synthetic import write_test_video

TEXT = "a person climbs the fence"
EPISODE_FIELDS = ("first_segment", "last_segment", "start", "end", "segments", "closed_at")


def _midpoint(scores: np.ndarray, q: float) -> float:
    """A threshold between two neighbouring sorted scores near quantile q (never equal to a score)."""
    s = np.sort(np.unique(scores))
    k = min(max(int(q * (len(s) - 1)), 0), len(s) - 2)
    return float((s[k] + s[k + 1]) / 2)


def _count_episodes(scores: np.ndarray, enter: float, exit_: float) -> int:
    """Episodes of ≥ 2 consecutive segments ≥ enter, each closing below exit (no cooldown)."""
    count, run, open_ = 0, 0, False
    for score in scores:
        if open_:
            open_ = score >= exit_
            continue
        run = run + 1 if score >= enter else 0
        if run >= 2:
            count, run, open_ = count + 1, 0, True
    return count


def _thresholds(scores: np.ndarray) -> tuple[float, float]:
    """(enter, exit) giving the most episodes (at least two wanted: the order of landing matters)."""
    options = [(_midpoint(scores, q), _midpoint(scores, q - d)) for q in (0.3, 0.4, 0.5, 0.6) for d in (0.1, 0.2)]
    return max(options, key=lambda t: _count_episodes(scores, *t))


def _episodes(service: TempoService, stream: str) -> list[tuple]:
    return [tuple(a[f] is not None if f == "closed_at" else a[f] for f in EPISODE_FIELDS)
            for a in service.alerts.alerts(stream)]


def test_a_rule_on_a_queue_ingested_stream_alerts_as_a_single_process_ingest(
    redis_url: str, tmp_path: Path, tiny_checkpoint: Path
) -> None:
    video = write_test_video(tmp_path / "yard.mp4", duration=48.0, size=(160, 96), texture=True)
    sampling = SamplingConfig()
    service = TempoService(model=str(tiny_checkpoint), redis_url=redis_url, home=tmp_path / "home")
    segments = list(iter_segments(str(video), stream_id="x", config=sampling))
    scores = service.model.compress(segments, TEXT)[0]
    enter, exit_ = _thresholds(scores)
    for stream in ("single", "queued"):
        service.alerts.add_rule(Rule(id="", stream=stream, text=TEXT, enter=enter, exit=exit_,
                                     min_segments=2, cooldown=0.0))
    monitored_ingest(service, str(video), "single", progress=False, sampling=sampling)
    expected = _episodes(service, "single")
    assert len(expected) >= 2, f"the thresholds open {len(expected)} episodes"

    store = service.store
    queue = JobQueue.for_store(store)
    assert produce(str(video), "queued", queue=queue, store=store, spec=JobSpec(sampling=sampling)).queued == 12
    jobs = {j.index: j for j in queue.read("w", 20, ["queued"], block=0.1)}
    worker = Worker(queue, store, model=service.model, embedder=service.embedder, model_id=service.model_name,
                    batch_size=4, monitors=lambda stream: RuleMonitor(service.alerts, stream))
    # Out of order: later jobs land first and wait (staged, with their scores) for the ones before.
    for batch in ([6, 7, 9], [3, 4], [10, 11, 8], [0, 1], [5, 2]):
        worker.process("w", [jobs[i] for i in batch])
    info = store.stream_info("queued")
    assert info.committed == 11
    assert _episodes(service, "queued") == expected
    got = {a["first_segment"]: a["peak"] for a in service.alerts.alerts("queued")}
    want = {a["first_segment"]: a["peak"] for a in service.alerts.alerts("single")}
    assert got == pytest.approx(want, abs=1e-4)
    # Scoring the rules in the worker's pass leaves its memory tokens what a single-process ingest stores.
    single = store.get_segments("single", list(range(12)))
    queued = store.get_segments("queued", list(range(12)))
    assert all(np.array_equal(a.tokens, b.tokens) for a, b in zip(single, queued, strict=True))
    at, _ = service.alerts.load_state("queued")
    assert at == 11  # every segment stepped once, in order
    assert not store.client.exists(service.alerts.k_staged_scores("queued"))  # nothing left staged
    # A job delivered again (its worker died before the ack) changes nothing.
    worker.process("w", [jobs[7]])
    assert _episodes(service, "queued") == expected and service.alerts.load_state("queued")[0] == 11

    # The stream the worker created keeps the file's fingerprint: a replaced file is refused.
    assert info.source["fingerprint"] == fingerprint_file(video)
    info.check_source_unchanged()
    os.utime(video, (1_000_000_000, 1_000_000_000))
    with pytest.raises(SourceChangedError, match="has changed since stream 'queued' was ingested"):
        store.stream_info("queued").check_source_unchanged()


def test_workers_ask_the_verify_question_of_alerts_they_open(
    redis_url: str, tmp_path: Path, tiny_checkpoint: Path
) -> None:
    # A --verify rule on a queue-ingested stream: the worker that commits the opening segment asks the
    # global LLM (Conversations.ask_once through the stream's rule monitor) and records the verdict once.
    video = write_test_video(tmp_path / "gate.mp4", duration=24.0, size=(160, 96), texture=True)
    sampling = SamplingConfig()
    service = TempoService(model=str(tiny_checkpoint), redis_url=redis_url, home=tmp_path / "home")
    # Scores are probabilities: every segment reaches 0, so one episode opens at the second and stays open.
    service.alerts.add_rule(Rule(id="", stream="gate", text=TEXT, enter=0.0, exit=0.0, min_segments=2,
                                 cooldown=0.0, verify=True))
    store = service.store
    queue = JobQueue.for_store(store)
    produce(str(video), "gate", queue=queue, store=store, spec=JobSpec(sampling=sampling))
    worker = Worker(queue, store, model=service.model, embedder=service.embedder, model_id=service.model_name,
                    batch_size=4, monitors=lambda stream: rule_monitor(service, stream))
    worker.process("w", queue.read("w", 20, ["gate"], block=0.1))
    [alert] = service.alerts.alerts("gate")
    assert alert["verify"] == "done" and alert["verified"] in (True, False, None) and alert["explanation"]
    assert service.alerts.pending_verifications("gate") == []
    assert [e["event"] for _, e in service.alerts.events() if e["stream"] == "gate"] == ["opened", "verified"]
