"""Fixtures of the tool tests on the real memory and model (see tests/agent/live_memory.py)."""

from __future__ import annotations

import sys

import pytest
import redis

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
