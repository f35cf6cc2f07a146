"""Shared fixtures: a real Redis server started for the test session (no mocks), and the real
memory + tiny model the agent and tool tests converse with (tests/agent/live_memory.py)."""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis
from tempo.memory.embedded import connect, spawn_redis_cluster, spawn_redis_server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server on a unix socket, AOF on; yields its URL (unix://...)."""
    proc, url = spawn_redis_server(tmp_path_factory.mktemp("redis"))
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture()
def finishes_within() -> Callable[[float, Callable[[], Any]], BaseException | None]:
    """`finishes_within(seconds, call)`: run `call` in a daemon thread, assert it returned or raised
    within `seconds` (a hang fails the test instead of blocking the suite), return what it raised."""

    def run_within(seconds: float, call: Callable[[], Any]) -> BaseException | None:
        outcome: list[BaseException | None] = []

        def run() -> None:
            try:
                call()
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(seconds)
        assert outcome, f"still blocked after {seconds} s"
        return outcome[0]

    return run_within


@pytest.fixture()
def redis_single_url(redis_server: str) -> Iterator[str]:
    """The session server, flushed before each test so tests do not see each other's keys."""
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    yield redis_server


@pytest.fixture()
def redis_url(redis_single_url: str) -> str:
    """The Redis a test's memory lives in: the single session server (tests/memory/conftest.py also
    runs the memory tests against a Redis Cluster)."""
    return redis_single_url


@pytest.fixture(params=["single", pytest.param("cluster", marks=pytest.mark.cluster)])
def any_redis_url(request: pytest.FixtureRequest) -> str:
    """One redis-server, then a local 3-master Redis Cluster: a test using this runs on both (`-m cluster`
    selects the cluster runs, `-m "not cluster"` skips them). tests/memory's `redis_url` is this."""
    return request.getfixturevalue("redis_cluster_url" if request.param == "cluster" else "redis_single_url")


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real local Redis Cluster of 3 masters on 127.0.0.1 (ephemeral ports), started once per
    session when a test first needs it; yields the URL of one node (`connect` finds the rest)."""
    procs, url = spawn_redis_cluster(tmp_path_factory.mktemp("cluster"), masters=3)
    yield url
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=10)


@pytest.fixture()
def redis_cluster_url(redis_cluster: str) -> Iterator[str]:
    """The session cluster, every master flushed before each test."""
    client = connect(redis_cluster)
    assert isinstance(client, redis.RedisCluster), "the test cluster was not recognised as a cluster"
    client.flushall(target_nodes=redis.RedisCluster.PRIMARIES)
    client.close()
    yield redis_cluster


def _load_live_memory() -> ModuleType:
    """tests/agent/live_memory.py as the module `agent_live_memory` (the test folders are not packages)."""
    name = "agent_live_memory"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "agent" / "live_memory.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


live_memory_module = _load_live_memory()


@pytest.fixture(scope="session")
def live_memory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Its own redis-server, the tiny checkpoint and one ingested stream, built once per session."""
    memory = live_memory_module.start_live_memory(tmp_path_factory.mktemp("agent-memory"))
    yield memory
    memory.stop()


@pytest.fixture(scope="session")
def live_service(live_memory: Any) -> Any:
    return live_memory.service()


@pytest.fixture(scope="session")
def conversations(live_service: Any) -> Any:
    from tempo.agent.conversations import Conversations
    from tempo.settings import AskSettings

    return Conversations(live_service, settings=AskSettings(max_new_tokens=live_memory_module.MAX_NEW_TOKENS))


@pytest.fixture()
def commit_alert_scores(redis_url: str) -> Any:
    """commit(stream, scores (n, R), wallclock=None): segments 0..n-1 of a new stream committed through the
    real RuleMonitor and store with those per-rule scores (4 s each), so the rules' alerts are real."""
    import numpy as np
    from tempo.agent.monitoring.monitor import RuleMonitor
    from tempo.memory import RedisMemoryStore, SegmentRecord, StreamSettings
    from tempo.memory.alerts import AlertStore
    from tempo.streaming.segment import Segment, SourceInfo

    source = SourceInfo(uri="tcp://127.0.0.1:9", kind="network", live=True)
    settings = StreamSettings(model_id="tiny", embedder_id="e", embedding_dim=4, token_dim=8, stored_tokens=1)

    def commit(stream: str, scores: list[list[float]], wallclock: float | None = None) -> None:
        client = connect(redis_url)  # a cluster client for a cluster's node
        store = RedisMemoryStore(client)
        store.create_stream(stream, source, settings)
        monitor = RuleMonitor(AlertStore(client), stream)
        monitor.queries()
        segments, records = [], []
        for i in range(len(scores)):
            t = 4.0 * i + np.arange(8) / 2
            wc = None if wallclock is None else wallclock + 4.0 * i
            frames = np.zeros((8, 16, 16, 3), np.uint8)
            segments.append(Segment(stream, i, 4.0 * i, 4.0 * i + 4, t, frames, source, 2.0, wallclock_start=wc))
            records.append(
                SegmentRecord(stream, i, 4.0 * i, 4.0 * i + 4, t, (16, 16), wallclock_start=wc,
                              tokens=np.zeros((1, 8), np.float32), embedding=np.full(4, 0.5, np.float32), proxy=b"x")
            )  # fmt: skip
        store.put_segments(records, then=monitor.observe(segments, np.array(scores, np.float32)))

    return commit
