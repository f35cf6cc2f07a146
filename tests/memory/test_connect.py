"""`connect` against servers that are not what TEMPO_REDIS_URL promises: one sentence each, the
password never in it, and no hang (issue 8 §2 and §4)."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from tempo.memory import MemoryUnavailableError, connect
from tempo.memory.embedded import free_tcp_ports, redis_server_binary
from tempo.memory.errors import ClusterNotReadyError
from tempo.tools.cli import main

SECRET = "hunter2-S3cret"


def tcp_server(reply: bytes | None) -> Iterator[int]:
    """A plain TCP server on 127.0.0.1 (ephemeral port) that answers every connection with `reply`
    (None: reads and never answers); yields its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            if reply is not None:
                try:
                    conn.recv(4096)
                    conn.sendall(reply)
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for conn in held:
        conn.close()


@pytest.fixture()
def http_server() -> Iterator[int]:
    yield from tcp_server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture()
def silent_server() -> Iterator[int]:
    yield from tcp_server(None)


def one_sentence(exc: pytest.ExceptionInfo[MemoryUnavailableError]) -> str:
    message = str(exc.value)
    assert "\n" not in message and SECRET not in message
    return message


def test_a_server_that_is_not_redis_is_one_sentence(http_server: int) -> None:
    with pytest.raises(MemoryUnavailableError) as exc:
        connect(f"redis://:{SECRET}@127.0.0.1:{http_server}/0")
    assert one_sentence(exc).startswith(
        f"Redis at redis://:***@127.0.0.1:{http_server}/0 does not speak the Redis protocol ("
    )


def test_a_server_that_never_answers_times_out(silent_server: int, monkeypatch) -> None:
    monkeypatch.setattr("tempo.memory.embedded._PROBE_TIMEOUT", 0.5)
    with pytest.raises(MemoryUnavailableError) as exc:
        connect(f"redis://user:{SECRET}@127.0.0.1:{silent_server}/0")
    assert one_sentence(exc).startswith(f"cannot reach Redis at redis://user:***@127.0.0.1:{silent_server}/0 (")


def test_a_wrong_password_is_refused_without_showing_it(tmp_path: Path) -> None:
    sock = tmp_path / "redis.sock"
    proc = subprocess.Popen(
        [redis_server_binary(), "--port", "0", "--unixsocket", str(sock), "--save", "", "--requirepass", "right-one"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                redis.Redis(unix_socket_path=str(sock), password="right-one").ping()
                break
            except (redis.ConnectionError, FileNotFoundError):
                threading.Event().wait(0.05)
        with pytest.raises(MemoryUnavailableError) as exc:
            connect(f"unix://:{SECRET}@{sock}")
        assert one_sentence(exc).startswith(f"Redis at unix://:***@{sock} refused our credentials")
        assert connect(f"unix://:right-one@{sock}").ping()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_an_unreachable_url_with_a_password_is_shown_redacted() -> None:
    with pytest.raises(MemoryUnavailableError) as exc:
        connect(f"redis://:{SECRET}@127.0.0.1:1/0")
    assert one_sentence(exc).startswith("cannot reach Redis at redis://:***@127.0.0.1:1/0 (")


def test_a_cluster_node_gives_a_cluster_client_that_reaches_every_shard(redis_cluster_url: str) -> None:
    client = connect(redis_cluster_url)
    assert isinstance(client, redis.RedisCluster) and len(client.get_primaries()) == 3
    names = [f"cam{i}" for i in range(12)]
    for name in names:
        client.set(f"tempo:s:{{{name}}}:probe", name)
    assert len({client.get_node_from_key(f"tempo:s:{{{n}}}:probe").name for n in names}) == 3
    assert sorted(client.scan_iter("tempo:s:*")) == sorted(f"tempo:s:{{{n}}}:probe".encode() for n in names)


def test_a_cluster_without_slots_is_one_sentence(tmp_path: Path, monkeypatch, capsys) -> None:
    port, bus = free_tcp_ports(2)
    proc = subprocess.Popen(
        [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--cluster-enabled", "yes",
         "--cluster-port", str(bus), "--cluster-config-file", str(tmp_path / "nodes.conf"), "--dir", str(tmp_path),
         "--save", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        url = f"redis://:{SECRET}@127.0.0.1:{port}"
        for _ in range(200):
            try:
                redis.Redis(port=port).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        with pytest.raises(ClusterNotReadyError) as caught:
            connect(url)
        message = str(caught.value)
        assert message.endswith(
            f"127.0.0.1:{port} is a Redis Cluster node but the cluster is not ready (cluster_state fail, 0 of "
            "16384 slots assigned); finish its setup (every slot assigned, every node reachable) or fix TEMPO_REDIS_URL"
        )
        assert message.startswith("Redis at redis://") and SECRET not in message and "\n" not in message
        monkeypatch.setenv("TEMPO_REDIS_URL", url)
        assert main(["streams"]) != 0
        err = capsys.readouterr().err
        assert err.startswith("tempo: error: ") and "cluster is not ready" in err and err.count("\n") == 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)
