"""Every benchmark under bench/ still starts: its imports resolve and `--help` explains it.

The benchmarks are not run by the tests (speed is measured by running them, not by timed tests), so
nothing else notices when a refactor breaks one; a real-size check on a GPU must not be the first
to find out.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def _help(script: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=300,
                          env=env, cwd=BENCH)


@pytest.fixture(scope="module")
def helps() -> dict[str, subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=2) as pool:  # each mostly waits for torch's import
        return dict(zip((s.name for s in SCRIPTS), pool.map(_help, SCRIPTS), strict=True))


def test_there_are_benchmarks() -> None:
    assert {"compressor.py", "monitoring.py", "scale.py", "retrieval.py"} <= {s.name for s in SCRIPTS}


@pytest.mark.parametrize("name", [s.name for s in SCRIPTS])
def test_the_benchmark_starts_and_explains_itself(
    name: str, helps: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    done = helps[name]
    assert done.returncode == 0, f"bench/{name} --help failed:\n{done.stderr[-2000:]}"
    assert done.stdout.startswith("usage:"), done.stdout[:200]
