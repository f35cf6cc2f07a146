"""Start a `tempo` HTTP server (`tempo serve`, `tempo mcp --http`) as a subprocess on loopback.

For the benchmarks and tests that talk to a real server, and for scripts that run one beside them:

    server = ServerProcess(["serve", "--max-new-tokens", "64"], env=env)
    ...  # requests to server.base
    stderr = server.stop()

The server binds 127.0.0.1 on a free ephemeral port, and the constructor returns once GET /health
answers 200 and does not say `"ready": false` (`tempo serve` is ready once its model and memory are
loaded; the MCP server's /health has no such field, so its 200 is enough).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence

from tempo.tools.errors import ServerStartError

LOOPBACK = "127.0.0.1"
HEALTH_POLL_S = 0.2  # seconds between two /health requests while the server starts

# /health goes straight to loopback, never through a proxy named in the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the kernel's choice of an ephemeral one)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _ready(base: str) -> bool:
    try:
        with _DIRECT.open(f"{base}/health", timeout=1.0) as response:
            return response.status == 200 and json.loads(response.read()).get("ready", True) is not False
    except (OSError, ValueError):  # not listening yet, an HTTP error status, or not JSON
        return False


class ServerProcess:
    """`tempo ARGS --port P` in a subprocess (this interpreter), running and ready on 127.0.0.1:P.

    Args:
        args: the command and its options after `tempo` (e.g. ["mcp", "--http"]); `--port` is added.
        env: the subprocess's environment (None: this process's).
        timeout: seconds to wait for readiness before giving up.

    Raises `ServerStartError` (with the server's stderr) when it exits or is not ready in time; the
    process is killed first. Attributes: `proc` (the Popen, stdout discarded), `port`, `base`
    ("http://127.0.0.1:P"). Its stderr goes to a temporary file, not a pipe: a server that logs a lot
    during a long benchmark never blocks on a full pipe nobody reads.
    """

    def __init__(self, args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 120.0) -> None:
        self.port = free_port()
        self.base = f"http://{LOOPBACK}:{self.port}"
        # Lives as long as the server (read by stop); closed with this object.
        self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tempo.tools.cli", *args, "--port", str(self.port)],
            env=None if env is None else dict(env),
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        deadline = time.monotonic() + timeout
        while not _ready(self.base):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise ServerStartError(f"tempo {' '.join(args[:1])} did not start: {self._read_stderr().strip()}")
            time.sleep(HEALTH_POLL_S)

    def stop(self, timeout: float = 30.0) -> str:
        """Terminate the server (SIGTERM; SIGKILL after `timeout` seconds) and return its stderr."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self._read_stderr()

    def _read_stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()
