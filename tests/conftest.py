"""Shared fixtures: a real Redis server started for the test session (no mocks), and the real
memory + tiny model the agent and tool tests converse with (tests/agent/live_memory.py)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis
from tempo.memory.embedded import spawn_redis_server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server on a unix socket, AOF on; yields its URL (unix://...)."""
    proc, url = spawn_redis_server(tmp_path_factory.mktemp("redis"))
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture()
def redis_url(redis_server: str) -> Iterator[str]:
    """The session server, flushed before each test so tests do not see each other's keys."""
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    yield redis_server


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

    return Conversations(live_service, max_new_tokens=live_memory_module.MAX_NEW_TOKENS)
