"""Fixtures of the memory tests: a store on the session's real Redis and synthetic segment records."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from tempo.memory import RedisMemoryStore


def _load_factory() -> ModuleType:
    # Tests run with --import-mode=importlib, so sibling modules are loaded by path.
    path = Path(__file__).with_name("records_factory.py")
    spec = importlib.util.spec_from_file_location("memory_records_factory", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


factory = _load_factory()


@pytest.fixture()
def records() -> ModuleType:
    """The record factory module: make_record, SETTINGS, FILE_SOURCE, DIM, EMB, unit."""
    return factory


@pytest.fixture()
def store(redis_url: str) -> RedisMemoryStore:
    return RedisMemoryStore.connect(redis_url)
