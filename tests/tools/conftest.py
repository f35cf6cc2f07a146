"""Fixtures of the tool tests on the real memory and model (see tests/agent/live_memory.py)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis


def _load_live_memory():
    name = "agent_live_memory"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent.parent / "agent" / "live_memory.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


live_memory_module = _load_live_memory()


@pytest.fixture(scope="session")
def live_memory(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    memory = live_memory_module.start_live_memory(tmp_path_factory.mktemp("agent-memory"))
    yield memory
    memory.stop()


@pytest.fixture(scope="session")
def live_service(live_memory):
    return live_memory.service()


@pytest.fixture(scope="session")
def conversations(live_service):
    from tempo.agent.conversations import Conversations

    return Conversations(live_service, max_new_tokens=live_memory_module.MAX_NEW_TOKENS)


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
