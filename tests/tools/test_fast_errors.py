"""Mistakes a user makes at the command line are told in one sentence before the model stack (torch)
is imported, so the answer comes at once: a port in use, a missing file, an unknown stream, for every
command that takes one (`ingest`, `ask`, `chat`, `search`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

# `tempo ARGS` in a fresh interpreter; then whether torch was imported, on the last stderr line.
PROBE = (
    "import sys\n"
    "from tempo.tools.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('torch imported' if 'torch' in sys.modules else 'no torch', file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def tempo_probe(*args: str, env: dict[str, str]) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )
    return done.returncode, done.stderr.splitlines()


def test_a_port_in_use_is_told_before_torch_is_imported(redis_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = tempo_probe("serve", "--port", str(port), env={"TEMPO_REDIS_URL": redis_url})
    assert (code, err) == (2, [f"tempo: error: cannot listen on 127.0.0.1:{port}: Address already in use", "no torch"])


@pytest.mark.parametrize("command", [("ingest", "{video}", "--stream", "x"), ("ask", "{video}", "What happens?")])
def test_a_missing_file_is_told_before_torch_is_imported(redis_url: str, tmp_path, command) -> None:
    missing = tmp_path / "nope.mp4"
    args = [a.format(video=missing) for a in command]
    code, err = tempo_probe(*args, env={"TEMPO_REDIS_URL": redis_url})
    assert (code, err) == (2, [f"tempo: error: video source {str(missing)!r} does not exist.", "no torch"])


@pytest.mark.parametrize(
    "command",
    [
        ("chat", "--stream", "nosuch"),
        ("ask", "--stream", "nosuch", "What happens?"),
        ("ask", "--streams", "nosuch,other", "What happens?"),
        ("search", "a red truck", "--streams", "nosuch"),
    ],
)
def test_an_unknown_stream_is_told_before_torch_is_imported(redis_url: str, command) -> None:
    code, err = tempo_probe(*command, env={"TEMPO_REDIS_URL": redis_url})
    assert code == 2 and len(err) == 2 and err[1] == "no torch", err
    assert err[0].startswith("tempo: error: ") and "'nosuch'" in err[0]
