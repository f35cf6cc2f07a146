"""Rules and alerts in Redis: validation, hysteresis, atomic commit with the segment, verification once."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from tempo.agent.monitoring.episodes import AUTO_MIN_SAMPLES, RuleState, SegmentView, step, thresholds
from tempo.agent.monitoring.monitor import RuleMonitor
from tempo.memory import RedisMemoryStore
from tempo.memory.alerts import AlertStore, Rule
from tempo.memory.cluster import is_cluster
from tempo.memory.errors import (
    ClusterUnsupportedError,
    InvalidRuleError,
    InvalidStreamNameError,
    UnknownAlertError,
    UnknownRuleError,
)
from tempo.streaming.segment import Segment, SourceInfo

LIVE = SourceInfo(uri="tcp://127.0.0.1:9", kind="network", live=True)


def _segment(index: int, wallclock: float | None = 1_000_000.0) -> Segment:
    return Segment(
        stream_id="cam",
        index=index,
        start=4.0 * index,
        end=4.0 * index + 4.0,
        timestamps=4.0 * index + np.arange(8) / 2.0,
        frames=np.zeros((8, 16, 16, 3), np.uint8),
        source=LIVE,
        sample_fps=2.0,
        first_frame_index=8 * index,
        wallclock_start=None if wallclock is None else wallclock + 4.0 * index,
    )


def _ingest_scores(
    store: RedisMemoryStore, records: ModuleType, monitor: RuleMonitor, scores: list[list[float]], lo: int = 0
) -> None:
    """Commit segments lo.. with these per-rule scores through the real monitor and store, 3 per batch."""
    store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
    for b in range(lo, lo + len(scores), 3):
        idx = list(range(b, min(b + 3, lo + len(scores))))
        monitor.queries()
        then = monitor.observe([_segment(i) for i in idx], np.array([scores[i - lo] for i in idx], np.float32))
        store.put_segments([records.make_record("cam", i) for i in idx], then=then)
        monitor.committed([records.make_record("cam", i) for i in idx])


@pytest.fixture()
def alerts(store: RedisMemoryStore) -> AlertStore:
    if is_cluster(store.client):
        pytest.skip("monitoring needs a single Redis server: on a cluster adding a rule is refused (tested below)")
    return AlertStore.of(store)


def test_on_a_cluster_adding_a_rule_is_refused_in_one_sentence(store: RedisMemoryStore, records: ModuleType) -> None:
    if not is_cluster(store.client):
        pytest.skip("a single server runs monitoring")
    alerts = AlertStore.of(store)
    with pytest.raises(ClusterUnsupportedError, match=r"^monitoring rules need a single Redis server .*shards[^.]*$"):
        alerts.add_rule(Rule(id="", stream="cam", text="smoke"))
    assert alerts.rules() == [] and alerts.rules_version() == 0
    # A stream without rules ingests on the cluster as anywhere: the monitor queues nothing.
    monitor = RuleMonitor(alerts, "cam")
    store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
    monitor.queries()
    then = monitor.observe([_segment(0)], np.zeros((1, 0), np.float32))
    assert then == [None]
    store.put_segments([records.make_record("cam", 0)], then=then)
    assert store.stream_info("cam").committed == 0


def test_rules_are_stored_listed_and_removed_with_ids_never_reused(alerts: AlertStore) -> None:
    a = alerts.add_rule(Rule(id="", stream="cam", text="  a person   climbs the fence ", enter=0.7, exit=0.4))
    b = alerts.add_rule(Rule(id="", stream="yard", text="smoke", enter=None, verify=True))
    assert (a.id, a.text, b.id, b.enter) == ("r1", "a person climbs the fence", "r2", None)
    assert [r.id for r in alerts.rules()] == ["r1", "r2"] and [r.id for r in alerts.rules("yard")] == ["r2"]
    version = alerts.rules_version()
    alerts.remove_rule("r1")
    assert alerts.rules_version() == version + 1
    assert alerts.add_rule(Rule(id="", stream="cam", text="x")).id == "r3"
    with pytest.raises(UnknownRuleError, match="no rule 'r1'; rules: r2, r3"):
        alerts.remove_rule("r1")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"text": "   "}, "the rule text is empty"),
        ({"enter": 1.5}, "--enter must be between 0 and 1, not 1.5"),
        ({"enter": float("nan")}, "--enter must be a finite number"),
        ({"enter": 0.5, "exit": 0.6}, "--exit 0.6 is above --enter 0.5"),
        ({"min_segments": 0}, "--min-segments must be a whole number from 1 to 10000"),
        ({"cooldown": -1.0}, "--cooldown must be between 0 and 604800"),
        ({"webhook": "file:///etc/passwd"}, "--webhook must be an http:// or https:// URL"),
        ({"stream": "bad name"}, "invalid stream name"),
    ],
)
def test_a_bad_rule_is_refused_in_one_sentence_and_nothing_is_stored(
    alerts: AlertStore, changes: dict[str, object], message: str
) -> None:
    rule = Rule(**{**dict(id="", stream="cam", text="a dog", enter=0.8), **changes})  # type: ignore[arg-type]
    with pytest.raises((InvalidRuleError, InvalidStreamNameError), match=message):
        alerts.add_rule(rule)
    assert alerts.rules() == [] and alerts.rules_version() == 0


def test_hysteresis_opens_after_min_segments_closes_below_exit_and_respects_the_cooldown() -> None:
    rule = Rule(id="r1", stream="cam", text="t", enter=0.8, exit=0.5, min_segments=2, cooldown=8.0)
    scores = [0.9, 0.7, 0.85, 0.9, 0.6, 0.4, 0.9, 0.9, 0.9, 0.9, 0.2]
    state, events = RuleState(), []
    for i, s in enumerate(scores):
        view = SegmentView("cam", i, 4.0 * i, 4.0 * i + 4.0, None)
        events += [(k, a["first_segment"], i) for k, a in step(rule, state, view, s, (0.8, 0.5), now=float(i))]
    # 0.9 then 0.7 is no run; opens at 3 (run 2..3); 0.6 ≥ exit holds; closes at 5 (0.4 < 0.5);
    # cooldown until 20 + 8 = 28 s: segments 6 (24 s) does not count, 7..8 open again (at 8); closes at 10.
    assert events == [("opened", 2, 3), ("closed", 2, 5), ("opened", 7, 8), ("closed", 7, 10)]


def test_auto_thresholds_follow_the_rules_own_baseline_after_warm_up() -> None:
    rule = Rule(id="r1", stream="cam", text="t", enter=None)
    rng = np.random.default_rng(0)
    history = [(4.0 * i, float(0.3 + 0.01 * rng.standard_normal())) for i in range(AUTO_MIN_SAMPLES - 1)]
    assert thresholds(rule, history, 4.0 * len(history)) is None  # warming up
    history.append((4.0 * len(history), 0.3))
    enter, exit_ = thresholds(rule, history, 4.0 * len(history))  # type: ignore[misc]
    values = np.array([s for _, s in history])
    sigma = 1.4826 * np.median(np.abs(values - np.median(values)))
    assert enter == pytest.approx(np.median(values) + 3 * sigma) and exit_ == pytest.approx(np.median(values) + sigma)
    # Only the last hour of stream time counts.
    assert thresholds(rule, history, 4.0 * len(history) + 3600.0 + 100.0) is None


def test_alerts_commit_with_their_segment_and_a_re_put_changes_nothing(
    store: RedisMemoryStore, alerts: AlertStore, records: ModuleType
) -> None:
    rule = alerts.add_rule(Rule(id="", stream="cam", text="t", enter=0.8, exit=0.5, min_segments=2, cooldown=0))
    monitor = RuleMonitor(alerts, "cam")
    _ingest_scores(store, records, monitor, [[0.1], [0.9], [0.9], [0.9], [0.1], [0.1]])
    (alert,) = alerts.alerts("cam")
    assert (alert["id"], alert["first_segment"], alert["last_segment"], alert["segments"]) == (
        f"cam:{rule.id}:1",
        1,
        3,
        3,
    )
    assert (alert["start"], alert["end"], alert["start_wallclock"]) == (4.0, 16.0, 1_000_004.0)
    assert [e["event"] for _, e in alerts.events()] == ["opened", "closed"]
    at, states = alerts.load_state("cam")
    assert at == 5 and rule.id in states

    # The same segments again (a writer resumed after a crash): duplicates, and not one more event.
    again = RuleMonitor(alerts, "cam")
    again.queries()
    then = again.observe([_segment(4), _segment(5)], np.array([[0.9], [0.9]], np.float32))
    assert then == [None, None]  # the monitor knows they are applied
    fresh = RuleMonitor(alerts, "cam")  # and even a monitor that would step them is refused by the script
    fresh.applied = 3
    fresh.queries()
    then = fresh.observe([_segment(4), _segment(5)], np.array([[0.9], [0.9]], np.float32))
    store.put_segments([records.make_record("cam", 4), records.make_record("cam", 5)], then=then)
    assert [e["event"] for _, e in alerts.events()] == ["opened", "closed"]
    assert alerts.load_state("cam") == (at, states)


def test_a_refused_segment_commits_no_rule_state(
    store: RedisMemoryStore, alerts: AlertStore, records: ModuleType
) -> None:
    alerts.add_rule(Rule(id="", stream="cam", text="t", enter=0.8, min_segments=1, cooldown=0))
    store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
    monitor = RuleMonitor(alerts, "cam")
    monitor.queries()
    then = monitor.observe([_segment(5)], np.array([[0.9]], np.float32))  # index 5 before 0..4: out of order
    (result,) = store.put_segments([records.make_record("cam", 5)], then=then)
    assert result.status.value == "out_of_order"
    assert alerts.alerts() == [] and alerts.events() == [] and alerts.load_state("cam") == (-1, {})


def test_a_rule_added_between_batches_applies_from_the_next_batch_and_a_removed_one_closes_its_episode(
    store: RedisMemoryStore, alerts: AlertStore, records: ModuleType
) -> None:
    monitor = RuleMonitor(alerts, "cam")
    _ingest_scores(store, records, monitor, [[], [], []])
    rule = alerts.add_rule(Rule(id="", stream="cam", text="t", enter=0.8, min_segments=1, cooldown=0))
    assert monitor.queries() == ["t"]
    then = monitor.observe([_segment(3)], np.array([[0.9]], np.float32))
    store.put_segments([records.make_record("cam", 3)], then=then)
    assert [a["first_segment"] for a in alerts.alerts("cam")] == [3]
    alerts.remove_rule(rule.id)
    assert monitor.queries() == []
    then = monitor.observe([_segment(4)], np.zeros((1, 0), np.float32))
    store.put_segments([records.make_record("cam", 4)], then=then)
    (alert,) = alerts.alerts("cam")
    assert alert["closed_reason"] == "rule removed" and alert["closed_at"] is not None
    assert alerts.load_state("cam") == (4, {})


def test_verification_is_recorded_once_and_survives_the_close(
    store: RedisMemoryStore, alerts: AlertStore, records: ModuleType
) -> None:
    alerts.add_rule(Rule(id="", stream="cam", text="a dog", enter=0.8, min_segments=1, cooldown=0, verify=True))
    asked: list[str] = []

    def verifier(alert: dict, rule: Rule) -> tuple[bool | None, str]:
        asked.append(alert["id"])
        return True, "Yes, a dog runs across."

    # A first run opens the episode and dies before verifying: the question is owed.
    _ingest_scores(store, records, RuleMonitor(alerts, "cam", verifier=verifier), [[0.9], [0.9]])
    assert alerts.pending_verifications("cam") == ["cam:r1:0"] and asked == []
    resumed = RuleMonitor(alerts, "cam", verifier=verifier)
    resumed.idle()
    resumed.idle()
    assert asked == ["cam:r1:0"] and alerts.pending_verifications("cam") == []
    _ingest_scores(store, records, resumed, [[0.1]], lo=2)  # closes; must keep the verdict
    alert = alerts.alert("cam:r1:0")
    assert (alert["verify"], alert["verified"], alert["explanation"]) == ("done", True, "Yes, a dog runs across.")
    assert alert["closed_at"] is not None
    assert [e["event"] for _, e in alerts.events()] == ["opened", "verified", "closed"]
    with pytest.raises(UnknownAlertError):
        alerts.ack("cam:r9:0")
    assert alerts.ack("cam:r1:0")["acked"] is not None


def test_a_deleted_stream_takes_its_rule_state_along(
    store: RedisMemoryStore, alerts: AlertStore, records: ModuleType
) -> None:
    alerts.add_rule(Rule(id="", stream="cam", text="t", enter=None))
    _ingest_scores(store, records, RuleMonitor(alerts, "cam"), [[0.1], [0.2]])
    assert alerts.load_state("cam")[0] == 1 and alerts.history("cam", "r1")
    store.delete_stream("cam")
    assert alerts.load_state("cam") == (-1, {}) and alerts.history("cam", "r1") == []
    _ingest_scores(store, records, RuleMonitor(alerts, "cam"), [[0.3]])  # a new stream of that name is monitored
    assert alerts.load_state("cam")[0] == 0
