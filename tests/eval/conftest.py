"""Fixtures for the evaluation tests: a tiny checkpoint and tiny benchmark directories per session."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from tempo.models.tiny import write_tiny_checkpoint


def _benchdata() -> ModuleType:
    """tests/eval/benchdata.py as a module (the test folders are not packages)."""
    name = "eval_benchdata"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "benchdata.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


benchdata = _benchdata()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "tempo-tiny", seed=0)


@pytest.fixture(scope="session")
def bench_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("benchmarks")
    return {name: benchdata.write_benchmark(name, root / name) for name in benchdata.WRITERS}
