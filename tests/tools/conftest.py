"""Fixtures of the tool tests on the real memory and model (see tests/agent/live_memory.py)."""

from __future__ import annotations

import sys

import pytest
import redis
from tempo.tools.launch import ServerProcess

live_memory_module = sys.modules["agent_live_memory"]  # loaded by tests/conftest.py


FIRST_QUESTION = "Where is the square at the beginning?"
FOLLOW_UP = "and after that?"


def run_cli(live_memory, *args: str, stdin: str | None = None, timeout: float = 120):
    """`tempo ARGS` in a subprocess on the test memory."""
    import subprocess

    return subprocess.run(
        live_memory.cli(*args),
        input=stdin,
        capture_output=True,
        text=True,
        env=live_memory.env(),
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def cli_thread(live_memory) -> dict:
    """A two-turn thread made by two separate `tempo chat` processes, as `tempo threads show --json`."""
    thread = "cli-thread-1"
    max_new = str(live_memory_module.MAX_NEW_TOKENS)
    for question in (FIRST_QUESTION, FOLLOW_UP):
        args = ("chat", "--stream", "cam", "--thread", thread, "--max-new-tokens", max_new)
        done = run_cli(live_memory, *args, stdin=question + "\n")
        assert done.returncode == 0, done.stderr
    from tempo.agent.threads import ThreadStore

    return ThreadStore(redis.Redis.from_url(live_memory.url)).show(thread)


@pytest.fixture(scope="session")
def tempo_cli(live_memory):
    """run(*args, stdin=None) -> CompletedProcess of `tempo ARGS` on the test memory (text mode)."""

    def run(*args: str, stdin: str | None = None, timeout: float = 120):
        return run_cli(live_memory, *args, stdin=stdin, timeout=timeout)

    return run


@pytest.fixture()
def tempo_main(live_memory, monkeypatch, capsys):
    """run(*args, stdin="") -> (exit code, stdout, stderr) of `tempo ARGS` in this process."""
    import io

    from tempo.tools.cli import main

    for key, value in live_memory.env().items():
        monkeypatch.setenv(key, value)

    def run(*args: str, stdin: str = ""):
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


# ----- `tempo serve` on a memory of its own (the API and console tests ingest and delete streams) -----

SERVE_TOKEN = "serve-test-token-0123456789"


class ServeProcess(ServerProcess):
    """`tempo serve` on the test memory, on 127.0.0.1 and an ephemeral port, with short answers."""

    def __init__(self, memory, *args: str, env: dict[str, str] | None = None) -> None:
        super().__init__(["serve", "--max-new-tokens", "12", *args], env={**memory.env(), **(env or {})})


@pytest.fixture(scope="module")
def serve_memory(tmp_path_factory):
    """Its own redis-server, the tiny checkpoint, the stream "cam" (40 s), and a media root holding
    a 20 s video "walk.mp4" that is not ingested yet."""
    from tempo.streaming.synthetic import write_test_video

    memory = live_memory_module.start_live_memory(tmp_path_factory.mktemp("serve-memory"))
    media = memory.root / "media"
    media.mkdir()
    write_test_video(media / "walk.mp4", duration=20.0, fps=30, size=(320, 192))
    yield memory
    memory.stop()


@pytest.fixture(scope="module")
def serve_server(serve_memory):
    """`tempo serve --media-root MEDIA` on loopback without a token."""
    server = ServeProcess(serve_memory, "--media-root", str(serve_memory.root / "media"))
    yield server
    server.stop()
