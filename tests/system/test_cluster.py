"""`tempo ingest`, `tempo ask --stream`, monitoring rules and a queue worker with the memory on a real
local 3-master Redis Cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.crc import key_slot
from tempo.memory.alerts import AlertStore
from tempo.memory.embedded import connect
from tempo.memory.keys import MonitoringKeys, StreamKeys

pytestmark = pytest.mark.cluster

QUESTION = "What colour is the screen at the start?"


def _cli(env: dict[str, str], *args: str) -> Any:
    proc = subprocess.run([sys.executable, "-m", "tempo.tools.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"tempo {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _names_on_two_shards(cluster: redis.RedisCluster) -> tuple[str, str]:
    """Two stream names whose keys live on different masters (the slot split is fixed, so is the pick)."""
    keys = StreamKeys()
    first = "clip"
    node = cluster.get_node_from_key(keys.info(first)).name
    for i in range(100):
        other = f"clip-{i}"
        if cluster.get_node_from_key(keys.info(other)).name != node:
            return first, other
    raise AssertionError("no second name on another shard among 100")


def test_ingest_and_ask_on_a_cluster_give_what_one_server_gives(
    redis_cluster_url: str, redis_single_url: str, tmp_path: Path, tiny_checkpoint: Path, video_20s: Path
) -> None:
    cluster = connect(redis_cluster_url)
    assert isinstance(cluster, redis.RedisCluster) and len(cluster.get_primaries()) == 3
    name, other = _names_on_two_shards(cluster)
    base = {**os.environ, "TEMPO_MODEL": str(tiny_checkpoint)}
    on_cluster = {**base, "TEMPO_REDIS_URL": redis_cluster_url, "TEMPO_HOME": str(tmp_path / "cluster-home")}
    on_single = {**base, "TEMPO_REDIS_URL": redis_single_url, "TEMPO_HOME": str(tmp_path / "single-home")}

    for stream in (name, other):
        assert _cli(on_cluster, "ingest", str(video_20s), "--stream", stream, "--json")["committed"] == 5
    _cli(on_single, "ingest", str(video_20s), "--stream", name, "--json")
    ask = ("ask", "--stream", name, QUESTION, "--json", "--max-new-tokens", "12")
    got, want = _cli(on_cluster, *ask), _cli(on_single, *ask)

    assert got["answer"] == want["answer"]
    assert got["candidates"] == want["candidates"]
    assert sorted(c["index"] for c in got["candidates"]) == [0, 1, 2, 3, 4]
    assert [s["tokens"] for s in got["segments"]] == [s["tokens"] for s in want["segments"]]
    # The memory really is spread: each stream's keys on its own master, listed together.
    keys = StreamKeys()
    assert {key_slot(k.encode()) for k in (keys.info(name), keys.segment(name, 4), keys.tokens(name, 0))} == {
        key_slot(keys.info(name).encode())
    }
    assert cluster.get_node_from_key(keys.info(name)).redis_connection.exists(keys.segment(name, 4)) == 1
    assert cluster.get_node_from_key(keys.info(other)).redis_connection.exists(keys.segment(other, 4)) == 1
    assert [s["name"] for s in _cli(on_cluster, "streams", "--json")["streams"]] == sorted([name, other])


def _names_away_from_the_alert_log(cluster: redis.RedisCluster, count: int) -> list[str]:
    """Stream names whose keys live on another master than the alert log's (the deployment-wide keys)."""
    alert_node = cluster.get_node_from_key(MonitoringKeys(cluster=True).alert_times()).name
    keys = StreamKeys()
    names = [f"cam-{i}" for i in range(100) if cluster.get_node_from_key(keys.info(f"cam-{i}")).name != alert_node]
    assert len(names) >= count, "too few names on other masters among 100"
    return names[:count]


def test_a_rule_on_a_cluster_stream_alerts_through_the_cli_and_through_a_queue_worker(
    redis_cluster_url: str, tmp_path: Path, tiny_checkpoint: Path, video_20s: Path
) -> None:
    cluster = connect(redis_cluster_url)
    assert isinstance(cluster, redis.RedisCluster)
    direct, queued = _names_away_from_the_alert_log(cluster, 2)
    env = {**os.environ, "TEMPO_MODEL": str(tiny_checkpoint), "TEMPO_REDIS_URL": redis_cluster_url,
           "TEMPO_HOME": str(tmp_path / "home")}
    # Scores are probabilities: every segment reaches 0, so one episode opens at the second segment
    # (first_segment 0) and stays open until the file ends. The first rule is verified by the global LLM, too.
    rule = ("a person climbs the fence", "--enter", "0", "--exit", "0", "--min-segments", "2", "--cooldown", "0")
    assert _cli(env, "rules", "add", direct, *rule, "--verify", "--json")["id"] == "r1"
    assert _cli(env, "rules", "add", queued, *rule, "--json")["id"] == "r2"

    assert _cli(env, "ingest", str(video_20s), "--stream", direct, "--json")["committed"] == 5
    assert _cli(env, "ingest", str(video_20s), "--stream", queued, "--queue", "--json")["queued"] == 5
    assert _cli(env, "worker", "--idle-exit", "3", "--json")["segments"] == 5

    (by_ingest,) = _cli(env, "alerts", direct, "--json")["alerts"]
    (by_worker,) = _cli(env, "alerts", queued, "--json")["alerts"]
    assert (by_ingest["id"], by_worker["id"]) == (f"{direct}:r1:0", f"{queued}:r2:0")
    # The file's end closes the direct ingest's episode at its last segment (issue 22); the queue path
    # has no end-of-source signal yet, so its episode stays open.
    assert (by_ingest["first_segment"], by_ingest["last_segment"], by_ingest["segments"]) == (0, 4, 5)
    assert by_ingest["closed_at"] is not None and by_ingest["closed_reason"] == "source ended"
    assert (by_worker["first_segment"], by_worker["last_segment"], by_worker["segments"]) == (0, 1, 2)
    assert by_worker["closed_at"] is None
    # The same video, the same scores: the open episode's peak (its first two segments) is at most the
    # peak of the closed one, which covers all five.
    assert by_worker["peak"] <= by_ingest["peak"] + 1e-4
    assert by_ingest["verify"] == "done" and by_ingest["explanation"]

    # Each event once, in order; nothing left in the outboxes (in the streams' slots, on other masters).
    alerts = AlertStore(cluster)
    assert [(e["id"], e["event"]) for _, e in alerts.events()] == [
        (by_ingest["id"], "opened"), (by_ingest["id"], "verified"), (by_ingest["id"], "closed"),
        (by_worker["id"], "opened")]
    for stream in (direct, queued):
        assert cluster.xlen(alerts.keys.outbox(stream)) == 0
        assert key_slot(alerts.keys.outbox(stream).encode()) == key_slot(StreamKeys().info(stream).encode())
    assert cluster.get_node_from_key(alerts.keys.alert(by_ingest["id"])).redis_connection.exists(
        alerts.keys.alert(by_ingest["id"])) == 1
