"""Live monitoring end to end: rules on a live MPEG-TS stream and on a file, alerts versus the reference.

The tiny model's scores carry no meaning, so thresholds are picked from the scores the reference pass
gives on the same video (midpoints between sorted scores, so no score sits on a threshold), and the
alerts are checked against an independent hysteresis over the reference scores of the very frames
the ingest saw.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tempo.agent.monitoring.monitor import RuleMonitor
from tempo.memory.alerts import AlertStore, Rule
from tempo.models import TempoModel
from tempo.service import TempoService
from tempo.streaming import SamplingConfig, Segment, iter_segments
from tempo.streaming.synthetic import RealTimePublisher, write_mpegts, write_test_video

LIVE_SECONDS = 14.0
LIVE = SamplingConfig(fps=4.0, window=4, max_edge=128, connect_timeout=5.0, read_timeout=5.0, reconnect_attempts=0)
TEXTS = ("a person climbs the fence", "a red truck stops at the gate", "smoke rises from the roof")


def reference_episodes(
    scores: Sequence[float], starts: Sequence[float], *, enter: float, exit: float, min_segments: int, cooldown: float
) -> list[tuple[int, int, bool]]:
    """(first, last, closed) positions of the episodes the issue's hysteresis gives, written as a scan."""
    episodes: list[tuple[int, int, bool]] = []
    blocked_until = -np.inf
    i, n = 0, len(scores)
    while i + min_segments <= n:
        window = range(i, i + min_segments)
        if all(scores[j] >= enter and starts[j] >= blocked_until for j in window):
            j = i + min_segments
            while j < n and scores[j] >= exit:
                j += 1
            episodes.append((i, j - 1, j < n))
            if j < n:
                blocked_until = starts[j] + cooldown
            i = j + 1
        else:
            i += 1
    return episodes


def midpoint_thresholds(scores: np.ndarray, q: float) -> float:
    """A threshold between two neighbouring sorted scores near quantile q (never equal to a score)."""
    s = np.sort(np.unique(scores))
    k = min(max(int(q * (len(s) - 1)), 0), len(s) - 2)
    return float((s[k] + s[k + 1]) / 2)


class RecordingMonitor(RuleMonitor):
    """The real monitor, also keeping the segments it saw and the rules it applied to each."""

    seen: list[tuple[Segment, list[str]]]

    def observe(self, batch: Sequence[Segment], scores: np.ndarray) -> list[Callable[[Any], None] | None]:
        self.seen.extend((s, [r.id for r in self.batch_rules]) for s in batch)
        return super().observe(batch, scores)


class RecordingService(TempoService):
    """A service whose ingests apply the stream's rules through a `RecordingMonitor`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seen: list[tuple[Segment, list[str]]] = []

    def rule_monitor(self, stream: str) -> RuleMonitor:
        monitor = RecordingMonitor(self.alerts, stream)
        monitor.seen = self.seen
        return monitor

    def ingest(self, source: str, stream: str, **options: Any) -> Any:
        return super().ingest(source, stream, monitors=self.rule_monitor, **options)


def _by_rule(alerts: AlertStore, stream: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for a in alerts.alerts(stream):
        out.setdefault(a["rule"], []).append(a)
    return {k: sorted(v, key=lambda a: a["first_segment"]) for k, v in out.items()}


def _assert_alerts_match(
    alerts: list[dict[str, Any]],
    rule: Rule,
    indices: list[int],
    starts: list[float],
    scores: np.ndarray,
    *,
    source_ended: bool = False,
) -> int:
    """`source_ended`: the ingest read its source to the end, which closes the episodes still open
    there, at the last segment's end."""
    assert rule.enter is not None and rule.exit is not None
    expected = reference_episodes(
        scores, starts, enter=rule.enter, exit=rule.exit, min_segments=rule.min_segments, cooldown=rule.cooldown
    )
    if source_ended:
        expected = [(f, last, True) for f, last, _ in expected]
    got = [(a["first_segment"], a["closed_at"] is not None) for a in alerts]
    assert got == [(indices[f], closed) for f, _, closed in expected]
    for a, (f, last, closed) in zip(alerts, expected, strict=True):
        if source_ended and last == len(indices) - 1:
            assert a["closed_reason"] == "source ended"
        if closed:  # updated at close: the whole episode
            assert (a["last_segment"], a["segments"]) == (indices[last], last - f + 1)
            assert a["peak"] == pytest.approx(float(scores[f : last + 1].max()), abs=2e-6)
        else:  # still open: the alert as it opened
            assert a["segments"] == rule.min_segments
    return len(expected)


def _events_per_alert(alerts: AlertStore) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for _, e in alerts.events():
        out.setdefault(e["id"], []).append(e["event"])
    return out


@pytest.fixture(scope="module")
def camera_ts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mpegts(
        tmp_path_factory.mktemp("monitor") / "camera.ts", duration=LIVE_SECONDS, fps=30.0, keyint=15, texture=True
    )


def test_live_alerts_are_the_hysteresis_of_reference_scores_and_a_new_rule_applies_within_a_segment(
    camera_ts: Path, redis_url: str, tmp_path: Path, tiny_checkpoint: Path
) -> None:
    service = RecordingService(model=str(tiny_checkpoint), redis_url=redis_url, home=tmp_path)
    model: TempoModel = service.model
    # Thresholds from the reference scores of the same video decoded as a file.
    preview = list(iter_segments(str(camera_ts), stream_id="preview", config=LIVE))
    pre = {t: model.compress(preview, t)[0] for t in TEXTS}
    rules = [
        Rule(
            id="",
            stream="gate",
            text=TEXTS[0],
            enter=midpoint_thresholds(pre[TEXTS[0]], 0.45),
            exit=midpoint_thresholds(pre[TEXTS[0]], 0.25),
            min_segments=2,
            cooldown=0.0,
        ),
        Rule(
            id="",
            stream="gate",
            text=TEXTS[1],
            enter=midpoint_thresholds(pre[TEXTS[1]], 0.5),
            exit=midpoint_thresholds(pre[TEXTS[1]], 0.5),
            min_segments=1,
            cooldown=1.0,
        ),
    ]
    rules = [service.alerts.add_rule(r) for r in rules]

    publisher = RealTimePublisher(camera_ts.read_bytes(), LIVE_SECONDS)
    added: dict[str, Any] = {}

    def add_rule_while_running() -> None:
        while service.store.client.hget("tempo:s:{gate}:info", "committed") in (None, b"-1", b"0", b"1"):
            time.sleep(0.02)
        added["committed"] = int(service.store.client.hget("tempo:s:{gate}:info", "committed"))
        added["rule"] = service.alerts.add_rule(
            Rule(
                id="",
                stream="gate",
                text=TEXTS[2],
                enter=midpoint_thresholds(pre[TEXTS[2]], 0.5),
                exit=midpoint_thresholds(pre[TEXTS[2]], 0.3),
                min_segments=1,
                cooldown=0.0,
            )
        )

    adder = threading.Thread(target=add_rule_while_running, daemon=True)
    adder.start()
    try:
        report = service.ingest(publisher.url, "gate", sampling=LIVE, progress=False)
    finally:
        publisher.close()
    adder.join(timeout=10)
    assert report.committed >= 10 and "rule" in added
    rules.append(added["rule"])

    # A rule added while the ingest runs is applied from the segment after the one in flight.
    first_with_new = min(s.index for s, ids in service.seen if added["rule"].id in ids)
    assert first_with_new <= added["committed"] + 2

    by_rule = _by_rule(service.alerts, "gate")
    episodes = 0
    for rule in rules:
        seen = [s for s, ids in service.seen if rule.id in ids]
        reference, _ = model.compress(seen, rule.text)
        episodes += _assert_alerts_match(
            by_rule.get(rule.id, []), rule, [s.index for s in seen], [s.start for s in seen], reference
        )
    assert episodes >= 2  # the thresholds do produce episodes; the comparison is not vacuous

    events = _events_per_alert(service.alerts)
    for a in service.alerts.alerts("gate"):
        assert events[a["id"]] == (["opened", "closed"] if a["closed_at"] is not None else ["opened"])
        # A live source: capture-clock times (a sender ahead of real time may put them after opened_at).
        assert a["start_wallclock"] is not None and abs(a["opened_at"] - a["start_wallclock"]) < LIVE_SECONDS + 5


def test_ingest_killed_mid_episode_then_rerun_neither_duplicates_nor_loses_an_alert(
    tempo_cli: Callable[..., subprocess.CompletedProcess[str]],
    tempo_env: dict[str, str],
    redis_url: str,
    tmp_path: Path,
    tiny_checkpoint: Path,
) -> None:
    video = write_test_video(tmp_path / "yard.mp4", duration=50.0, size=(160, 96), texture=True)
    sampling = SamplingConfig(fps=4.0, window=4)
    model = TempoModel.load(tiny_checkpoint)
    segments = list(iter_segments(str(video), stream_id="yard", config=sampling))
    scores = {t: model.compress(segments, t)[0] for t in TEXTS[:2]}
    low = float(scores[TEXTS[0]].min())
    # Rule one opens early and never closes (exit below every score): any kill after it opened is mid-episode.
    tempo_cli(
        "rules", "add", "yard", TEXTS[0],
        "--enter", repr(midpoint_thresholds(scores[TEXTS[0]], 0.2)),
        "--exit", repr(max(0.0, low - 0.01)),
        "--min-segments", "2", "--cooldown", "0",
    )  # fmt: skip
    tempo_cli(
        "rules", "add", "yard", TEXTS[1],
        "--enter", repr(midpoint_thresholds(scores[TEXTS[1]], 0.55)),
        "--exit", repr(midpoint_thresholds(scores[TEXTS[1]], 0.35)),
        "--min-segments", "2", "--cooldown", "3",
    )  # fmt: skip
    alerts = AlertStore(__import__("redis").Redis.from_url(redis_url))
    rules = alerts.rules("yard")
    ingest_args = [str(video), "--stream", "yard", "--fps", "4", "--window", "4", "--batch-size", "1"]

    proc = subprocess.Popen(
        [sys.executable, "-m", "tempo.tools.cli", "ingest", *ingest_args],
        env={**tempo_env, "TEMPO_WRITER_LEASE": "2"},  # the killed writer's lease outlives it 2 s at most
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            _, states = alerts.load_state("yard")
            if rules[0].id in states and '"alert":{' in states[rules[0].id]:
                break
            assert proc.poll() is None, "the ingest finished before an episode opened"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    at, states = alerts.load_state("yard")
    committed = int(alerts.client.hget("tempo:s:{yard}:info", "committed"))
    assert at == committed < len(segments) - 1  # killed mid-ingest, rule state exactly at the last segment
    assert '"alert":{' in states[rules[0].id]  # and mid-episode
    lease_gone = time.monotonic() + 5  # one writer per stream: the rerun waits out the dead writer's lease
    while alerts.client.exists("tempo:s:{yard}:writer"):
        assert time.monotonic() < lease_gone, "the dead writer's lease did not expire"
        time.sleep(0.05)

    tempo_cli("ingest", *ingest_args)
    assert int(alerts.client.hget("tempo:s:{yard}:info", "committed")) == len(segments) - 1

    by_rule = _by_rule(alerts, "yard")
    indices = [s.index for s in segments]
    starts = [s.start for s in segments]
    episodes = sum(
        _assert_alerts_match(by_rule.get(rule.id, []), rule, indices, starts, scores[rule.text], source_ended=True)
        for rule in rules
    )
    assert episodes >= 2
    # Rule one's episode never met a score below its exit: the end of the file closed it at its last segment.
    (endless,) = [a for a in by_rule[rules[0].id] if a["last_segment"] == indices[-1]]
    assert endless["closed_reason"] == "source ended" and endless["end"] == pytest.approx(segments[-1].end)
    events = _events_per_alert(alerts)
    for a in alerts.alerts("yard"):
        assert events[a["id"]] == (["opened", "closed"] if a["closed_at"] is not None else ["opened"])
        assert a["start_wallclock"] is None  # a file has no wall clock
