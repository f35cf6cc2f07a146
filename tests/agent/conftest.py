"""Fixtures of the agent tests on the real memory and model (see live_memory.py)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def _load_live_memory():
    name = "agent_live_memory"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("live_memory.py"))
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
