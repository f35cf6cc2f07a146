"""Rules and alerts in Redis: validation, hysteresis, atomic commit with the segment (events through the
stream's outbox, relayed exactly once), verification once. On one server and on a 3-master cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import redis
from redis.crc import key_slot
from tempo.agent.monitoring.episodes import AUTO_MIN_SAMPLES, RuleState, SegmentView, step, thresholds
from tempo.agent.monitoring.monitor import RuleMonitor
from tempo.memory import RedisMemoryStore, connect
from tempo.memory.alerts import AlertStore, Rule
from tempo.memory.errors import (
    InvalidRuleError,
    InvalidStreamNameError,
    UnknownAlertError,
    UnknownRuleError,
)
from tempo.memory.keys import StreamKeys
from tempo.streaming.segment import Segment, SourceInfo

COMMITTER = Path(__file__).with_name("alert_committer.py")
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
    return AlertStore.of(store)


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


def test_the_end_of_the_source_closes_an_open_episode_at_its_last_segment_once(
    store: RedisMemoryStore, alerts: AlertStore, records: ModuleType
) -> None:
    rule = alerts.add_rule(Rule(id="", stream="cam", text="t", enter=0.8, exit=0.5, min_segments=2, cooldown=5))
    monitor = RuleMonitor(alerts, "cam", clock=lambda: 2_000_000.0)
    _ingest_scores(store, records, monitor, [[0.1], [0.9], [0.9], [0.7]])  # open from 1, still open at 3
    (alert,) = alerts.alerts("cam")
    assert alert["closed_at"] is None and alert["end"] == 12.0
    assert monitor.source_ended() == 1
    (alert,) = alerts.alerts("cam")
    assert (alert["closed_at"], alert["closed_reason"], alert["end"], alert["last_segment"]) == (
        2_000_000.0, "source ended", 16.0, 3,
    )  # fmt: skip
    assert [e["event"] for _, e in alerts.events()] == ["opened", "closed"]
    state = RuleState.from_json(alerts.load_state("cam")[1][rule.id])
    assert state.alert is None and state.cooldown_until == 21.0  # the end + the rule's cooldown
    # A second end (a rerun of a finished file) closes nothing more; nor does a monitor loaded afresh.
    assert monitor.source_ended() == 0 and RuleMonitor(alerts, "cam").source_ended() == 0
    assert [e["event"] for _, e in alerts.events()] == ["opened", "closed"]


def test_a_source_end_that_is_not_the_streams_end_closes_nothing(
    store: RedisMemoryStore, alerts: AlertStore, records: ModuleType
) -> None:
    """Another writer committed a segment after the monitor's last one: that episode is not over."""
    alerts.add_rule(Rule(id="", stream="cam", text="t", enter=0.8, exit=0.5, min_segments=1, cooldown=0))
    monitor = RuleMonitor(alerts, "cam")
    _ingest_scores(store, records, monitor, [[0.9], [0.9]])
    store.put_segments([records.make_record("cam", 2)])  # committed without its rule state
    assert monitor.source_ended() == 0
    (alert,) = alerts.alerts("cam")
    assert alert["closed_at"] is None


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


# ---- the outbox and its relay ----------------------------------------------------------------------


def _commit_without_relay(store: RedisMemoryStore, alerts: AlertStore, records: ModuleType, scores: list[float],
                          lo: int = 0) -> RuleMonitor:
    """Commit segments lo.. with these scores for the stream's one rule, the relay step left out."""
    if lo == 0:
        store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
    monitor = RuleMonitor(alerts, "cam")
    monitor.queries()
    idx = list(range(lo, lo + len(scores)))
    then = monitor.observe([_segment(i) for i in idx], np.array(scores, np.float32)[:, None])
    store.put_segments([records.make_record("cam", i) for i in idx], then=then)
    return monitor


def _log_untouched(admin: Any, alerts: AlertStore) -> bool:
    """The alert log as written, read without a sweep: nothing relayed yet."""
    return admin.xlen(alerts.k_events) == 0 and admin.zcard(alerts.keys.alert_times()) == 0


def test_a_commit_whose_relay_never_ran_is_relayed_exactly_once_by_the_next_reader(
    store: RedisMemoryStore, alerts: AlertStore, records: ModuleType, admin: Any
) -> None:
    alerts.add_rule(Rule(id="", stream="cam", text="t", enter=0.8, exit=0.5, min_segments=1, cooldown=0))
    _commit_without_relay(store, alerts, records, [0.9, 0.9, 0.1, 0.9])
    # Committed with the segments: the rule state and the events in the stream's outbox, in order.
    assert alerts.load_state("cam")[0] == 3
    outbox = admin.xrange(alerts.keys.outbox("cam"))
    assert [(i.decode(), e[b"event"].decode()) for i, e in outbox] == [("0-1", "opened"), ("2-1", "closed"),
                                                                        ("3-1", "opened")]
    assert _log_untouched(admin, alerts)
    # Any reader relays first: the alerts, their events once each, in the stream's order.
    assert [(a["id"], a["closed_at"] is not None) for a in alerts.alerts("cam")] == [("cam:r1:0", True),
                                                                                     ("cam:r1:3", False)]
    assert [(e["event"], e["id"]) for _, e in alerts.events()] == [
        ("opened", "cam:r1:0"), ("closed", "cam:r1:0"), ("opened", "cam:r1:3")]
    assert admin.xlen(alerts.keys.outbox("cam")) == 0
    assert alerts.relay("cam") == 0 and alerts.sweep() == 0 and len(alerts.events()) == 3


def test_a_relayer_that_died_after_its_script_before_trimming_is_not_applied_twice(
    store: RedisMemoryStore, alerts: AlertStore, records: ModuleType, admin: Any
) -> None:
    alerts.add_rule(Rule(id="", stream="cam", text="t", enter=0.8, exit=0.5, min_segments=1, cooldown=0))
    _commit_without_relay(store, alerts, records, [0.9, 0.1])
    untrimmed = admin.dump(alerts.keys.outbox("cam"))
    assert alerts.relay("cam") == 2
    # The outbox as that relayer left it: applied to the log, entries still there.
    admin.restore(alerts.keys.outbox("cam"), 0, untrimmed, replace=True)
    assert admin.xlen(alerts.keys.outbox("cam")) == 2
    assert alerts.relay("cam") == 0 and admin.xlen(alerts.keys.outbox("cam")) == 0
    assert [e["event"] for _, e in alerts.events()] == ["opened", "closed"]
    # The stream goes on: the next events are relayed after those.
    _commit_without_relay(store, alerts, records, [0.9], lo=2)
    assert [e["event"] for _, e in alerts.events()] == ["opened", "closed", "opened"]


def test_reading_one_alert_or_the_owed_verifications_relays_that_stream_first(
    store: RedisMemoryStore, alerts: AlertStore, records: ModuleType, admin: Any
) -> None:
    alerts.add_rule(Rule(id="", stream="cam", text="t", enter=0.8, exit=0.5, min_segments=1, cooldown=0, verify=True))
    _commit_without_relay(store, alerts, records, [0.9])
    assert _log_untouched(admin, alerts)
    assert alerts.pending_verifications("cam") == ["cam:r1:0"]
    _commit_without_relay(store, alerts, records, [0.1], lo=1)  # closes it; the close waits in the outbox
    assert admin.xlen(alerts.keys.outbox("cam")) == 1
    assert alerts.alert("cam:r1:0")["closed_at"] is not None
    assert [e["event"] for _, e in alerts.events()] == ["opened", "closed"]


def test_relayers_racing_apply_each_event_once_in_order(
    store: RedisMemoryStore, alerts: AlertStore, records: ModuleType, redis_url: str
) -> None:
    alerts.add_rule(Rule(id="", stream="cam", text="t", enter=0.8, exit=0.5, min_segments=1, cooldown=0))
    # 600 segments alternating high/low: 600 events, more than one relay batch.
    _commit_without_relay(store, alerts, records, [0.9, 0.1] * 300)
    relayers = [AlertStore(connect(redis_url)) for _ in range(4)]
    start = threading.Barrier(len(relayers))
    applied: list[int] = []

    def relay(relayer: AlertStore) -> None:
        start.wait()
        applied.append(relayer.relay("cam"))

    threads = [threading.Thread(target=relay, args=(r,)) for r in relayers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(applied) == 600
    events = [(e["id"], e["event"]) for _, e in alerts.events(count=10_000)]
    assert events == [(f"cam:r1:{2 * k}", kind) for k in range(300) for kind in ("opened", "closed")]
    assert len(alerts.alerts("cam")) == 300


def test_a_committer_killed_between_commit_and_relay_loses_nothing_and_duplicates_nothing(
    alerts: AlertStore, redis_url: str, admin: Any
) -> None:
    alerts.add_rule(Rule(id="", stream="cam", text="t", enter=0.8, exit=0.5, min_segments=1, cooldown=0))
    proc = subprocess.Popen([sys.executable, str(COMMITTER), redis_url, "0.9", "0.9", "0.1"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "committed", proc.stderr
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert admin.xlen(alerts.keys.outbox("cam")) == 2 and _log_untouched(admin, alerts)
    (alert,) = alerts.alerts("cam")
    assert (alert["id"], alert["first_segment"], alert["last_segment"]) == ("cam:r1:0", 0, 1)
    assert [e["event"] for _, e in alerts.events()] == ["opened", "closed"]
    # The next committer of the stream (a monitor starting on it) finds nothing left to relay.
    assert RuleMonitor(alerts, "cam").applied == 2 and alerts.sweep() == 0
    assert [e["event"] for _, e in alerts.events()] == ["opened", "closed"]


def test_the_committer_relays_right_after_its_commit(
    store: RedisMemoryStore, alerts: AlertStore, records: ModuleType, admin: Any
) -> None:
    alerts.add_rule(Rule(id="", stream="cam", text="t", enter=0.8, min_segments=1, cooldown=0))
    monitor = _commit_without_relay(store, alerts, records, [0.9])
    assert _log_untouched(admin, alerts)
    monitor.committed([records.make_record("cam", 0)])  # what the writer calls after its commit
    assert admin.xlen(alerts.keys.outbox("cam")) == 0 and admin.xlen(alerts.k_events) == 1


def test_a_stream_created_anew_under_the_same_name_relays_from_its_first_segment(
    store: RedisMemoryStore, alerts: AlertStore, records: ModuleType
) -> None:
    alerts.add_rule(Rule(id="", stream="cam", text="t", enter=0.8, exit=0.5, min_segments=1, cooldown=0))
    _commit_without_relay(store, alerts, records, [0.1, 0.1, 0.9])
    assert [a["id"] for a in alerts.alerts("cam")] == ["cam:r1:2"]
    store.delete_stream("cam")
    _commit_without_relay(store, alerts, records, [0.9])  # segment 0 of the new stream: below the old mark
    assert [e["first_segment"] for _, e in alerts.events()] == [2, 0]


def test_a_relayer_whose_stream_was_created_anew_meanwhile_leaves_the_new_outbox_alone(
    store: RedisMemoryStore, alerts: AlertStore, records: ModuleType, admin: Any
) -> None:
    alerts.add_rule(Rule(id="", stream="cam", text="t", enter=0.8, exit=0.5, min_segments=1, cooldown=0))
    _commit_without_relay(store, alerts, records, [0.9])  # outbox entry "0-1" of the first stream
    relay_script = alerts._relay

    def recreate_then_relay(**kwargs: Any) -> Any:
        # Between this relayer's read of the outbox and its clean-up, another process deletes the
        # stream and a new one of the same name commits segment 0 with an event: the same id "0-1".
        applied = relay_script(**kwargs)
        alerts._relay = relay_script
        store.delete_stream("cam")
        _commit_without_relay(store, alerts, records, [0.9])
        return applied

    alerts._relay = recreate_then_relay  # type: ignore[method-assign]
    assert alerts.relay("cam") == 1
    # The new stream's event stays in its outbox, and is relayed (once) like any other.
    assert [i.decode() for i, _ in admin.xrange(alerts.keys.outbox("cam"))] == ["0-1"]
    assert alerts.sweep() == 1
    assert [e["event"] for _, e in alerts.events()] == ["opened", "opened"]
    assert admin.xlen(alerts.keys.outbox("cam")) == 0


def test_a_removed_rules_closing_event_is_swept_though_its_stream_has_no_rule_left(
    store: RedisMemoryStore, alerts: AlertStore, records: ModuleType, admin: Any
) -> None:
    rule = alerts.add_rule(Rule(id="", stream="cam", text="t", enter=0.8, min_segments=1, cooldown=0))
    _commit_without_relay(store, alerts, records, [0.9])
    alerts.remove_rule(rule.id)
    monitor = RuleMonitor(alerts, "cam")  # no rule left: the next segment closes the episode
    monitor.queries()
    then = monitor.observe([_segment(1)], np.zeros((1, 0), np.float32))
    store.put_segments([records.make_record("cam", 1)], then=then)
    assert admin.xlen(alerts.keys.outbox("cam")) == 1  # the close, not relayed yet
    assert alerts.rules() == [] and alerts.sweep() == 1
    (alert,) = alerts.alerts("cam")
    assert alert["closed_reason"] == "rule removed"


def test_monitoring_keys_keep_their_names_on_one_server_and_share_one_slot_on_a_cluster(
    alerts: AlertStore, admin: Any
) -> None:
    keys = alerts.keys
    shared = [keys.rules(), keys.rules_seq(), keys.rules_version(), keys.alert("cam:r1:0"), keys.alert_times(),
              keys.events(), keys.verify(), keys.relayed(), keys.outboxes(), keys.webhook("retry")]
    if isinstance(admin, redis.RedisCluster):
        assert len({key_slot(k.encode()) for k in shared}) == 1
        assert key_slot(keys.outbox("cam").encode()) == key_slot(StreamKeys().info("cam").encode())
    else:  # a memory written before the outbox reads unchanged
        assert shared[:7] == ["tempo:rules", "tempo:rules:seq", "tempo:rules:version", "tempo:alert:cam:r1:0",
                              "tempo:alerts:t", "tempo:alerts:events", "tempo:alerts:verify"]
