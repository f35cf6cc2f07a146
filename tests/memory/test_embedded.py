"""The embedded redis-server of a data directory, and connection errors."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import redis
from tempo.memory import EmbeddedRedis, MemoryUnavailableError, RedisMemoryStore, connect


def test_embedded_server_starts_on_a_unix_socket_with_aof_and_is_reused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("TEMPO_REDIS_URL", raising=False)
    monkeypatch.setenv("TEMPO_HOME", str(tmp_path))
    server = EmbeddedRedis(tmp_path)
    try:
        client = connect()  # nothing running: starts it
        pid = server.pid()
        assert pid is not None and server.is_running()
        config = client.config_get("*")
        assert (config["port"], config["appendonly"], config["appendfsync"]) == ("0", "yes", "always")
        assert config["unixsocket"] == str(tmp_path / "redis" / "redis.sock")
        client.set("k", "v")
        again = connect()  # a later command reuses the same server
        assert server.pid() == pid and again.get("k") == b"v"
    finally:
        assert server.stop() is True
    assert not server.is_running() and not server.stop()


def test_embedded_server_keeps_its_data_across_a_clean_restart(tmp_path: Path, records, monkeypatch) -> None:
    monkeypatch.delenv("TEMPO_REDIS_URL", raising=False)
    server = EmbeddedRedis(tmp_path)
    try:
        store = RedisMemoryStore.connect(server.ensure_running())
        store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
        store.put_segments([records.make_record("cam", i) for i in range(5)])
        server.stop()
        store = RedisMemoryStore.connect(home=tmp_path)  # TEMPO_REDIS_URL unset: restarts it
        assert store.next_index("cam") == 5
    finally:
        server.stop()


def test_two_commands_starting_at_once_share_one_server(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    urls: list[str] = []
    threads = [threading.Thread(target=lambda: urls.append(server.ensure_running())) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(urls)) == 1
        assert redis.Redis.from_url(urls[0]).info("clients")["connected_clients"] >= 1
        pid = server.pid()
        assert pid is not None
        # Exactly one redis-server owns this data directory.
        owners = [
            p for p in os.listdir("/proc") if p.isdigit() and _cmdline(p).count(str(server.socket_path))
        ]
        assert owners == [str(pid)]
    finally:
        server.stop()


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def test_a_long_data_dir_gets_its_socket_under_the_temp_dir(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    server = EmbeddedRedis(deep)
    assert len(str(server.socket_path)) <= 100
    try:
        assert redis.Redis.from_url(server.ensure_running()).ping()
    finally:
        server.stop()


def test_unreachable_redis_is_one_sentence() -> None:
    with pytest.raises(MemoryUnavailableError) as exc:
        connect("redis://127.0.0.1:1/0")
    message = str(exc.value)
    assert message.startswith("cannot reach Redis at redis://127.0.0.1:1/0") and "\n" not in message


def test_a_url_that_is_not_redis_is_one_sentence() -> None:
    with pytest.raises(MemoryUnavailableError, match="is not a Redis URL"):
        connect("http://localhost:6379")


def test_tempo_redis_url_wins_over_the_embedded_server(tmp_path: Path, monkeypatch, redis_url) -> None:
    monkeypatch.setenv("TEMPO_REDIS_URL", redis_url)
    monkeypatch.setenv("TEMPO_HOME", str(tmp_path))
    client = connect()
    assert client.ping() and not EmbeddedRedis(tmp_path).is_running()


def test_spawned_server_that_exits_at_once_says_why(tmp_path) -> None:
    from tempo.memory.embedded import spawn_redis_server

    t0 = time.monotonic()
    with pytest.raises(MemoryUnavailableError) as err:
        spawn_redis_server(tmp_path / "missing", timeout=20.0)
    message = str(err.value)
    assert time.monotonic() - t0 < 10  # not the start timeout
    assert "did not" not in message and "exited at once" in message
    assert "missing" in message and "No such file or directory" in message
