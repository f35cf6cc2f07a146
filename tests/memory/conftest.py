"""Fixtures of the memory tests: a store on the session's real Redis and synthetic segment records."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis
from tempo.memory import RedisMemoryStore, connect


def _load_factory() -> ModuleType:
    # Tests run with --import-mode=importlib, so sibling modules are loaded by path.
    path = Path(__file__).with_name("records_factory.py")
    spec = importlib.util.spec_from_file_location("memory_records_factory", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


factory = _load_factory()


@pytest.fixture()
def records() -> ModuleType:
    """The record factory module: make_record, SETTINGS, FILE_SOURCE, DIM, EMB, unit."""
    return factory


@pytest.fixture()
def redis_url(any_redis_url: str) -> str:
    """Every memory test that uses Redis runs twice: on one redis-server and on a 3-master cluster."""
    return any_redis_url


@pytest.fixture()
def admin(redis_url: str) -> Iterator[Any]:
    """A client of the test's Redis for looking at keys directly (a cluster client on the cluster)."""
    client = connect(redis_url)
    yield client
    client.close()


@pytest.fixture()
def server_of(admin: Any) -> Callable[[str], redis.Redis]:
    """`server_of(key)`: a plain client of the one server holding `key` (its shard on a cluster), for
    per-server commands such as CONFIG SET and INFO."""

    def server(key: str) -> redis.Redis:
        if isinstance(admin, redis.RedisCluster):
            return admin.get_node_from_key(key).redis_connection
        return admin

    return server


@pytest.fixture()
def store(redis_url: str) -> RedisMemoryStore:
    return RedisMemoryStore.connect(redis_url)
