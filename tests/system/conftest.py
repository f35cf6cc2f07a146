"""Fixtures for whole-system tests: a tiny checkpoint, a generated video, the CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from tempo.models.tiny import write_tiny_checkpoint
from tempo.streaming.synthetic import write_test_video

# Helpers shared by this folder's tests (loopback.py) import by name; pytest's importlib mode does
# not put test folders on sys.path.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("system-model") / "tempo-tiny", seed=0)


@pytest.fixture(scope="session")
def video_20s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 s, 30 fps H.264 with B-frames: 5 segments of 8 frames at 2 fps."""
    return write_test_video(tmp_path_factory.mktemp("system-video") / "clip.mp4", duration=20.0, size=(192, 112))


@pytest.fixture(scope="session")
def video_120s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 minutes: 30 segments."""
    return write_test_video(tmp_path_factory.mktemp("system-video") / "long.mp4", duration=120.0, size=(192, 112))


@pytest.fixture()
def tempo_env(redis_url: str, tmp_path: Path, tiny_checkpoint: Path) -> dict[str, str]:
    """Environment for a `tempo` subprocess: the test Redis, a private data dir, the tiny model."""
    env = dict(os.environ)
    env.update(TEMPO_REDIS_URL=redis_url, TEMPO_HOME=str(tmp_path / "home"), TEMPO_MODEL=str(tiny_checkpoint))
    return env


@pytest.fixture()
def tempo_cli(tempo_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `tempo ARGS...` in a subprocess; returns the completed process (text mode)."""

    def run(*args: str, check: bool = True, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "tempo.tools.cli", *args],
            env=tempo_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"tempo {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}")
        return proc

    return run
