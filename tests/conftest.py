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
from tempo.memory.embedded import spawn_redis_server


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
