"""`tempo ingest` and `tempo ask --stream` with the memory on a real local 3-master Redis Cluster."""

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
from tempo.memory.embedded import connect
from tempo.memory.keys import StreamKeys

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
    assert got["candidates"] == want["candidates"] == [0, 1, 2, 3, 4]
    assert [s["tokens"] for s in got["segments"]] == [s["tokens"] for s in want["segments"]]
    # The memory really is spread: each stream's keys on its own master, listed together.
    keys = StreamKeys()
    assert {key_slot(k.encode()) for k in (keys.info(name), keys.segment(name, 4), keys.tokens(name, 0))} == {
        key_slot(keys.info(name).encode())
    }
    assert cluster.get_node_from_key(keys.info(name)).redis_connection.exists(keys.segment(name, 4)) == 1
    assert cluster.get_node_from_key(keys.info(other)).redis_connection.exists(keys.segment(other, 4)) == 1
    assert [s["name"] for s in _cli(on_cluster, "streams", "--json")["streams"]] == sorted([name, other])
