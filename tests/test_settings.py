"""One settings module: `TEMPO_*` variables are read in tempo/settings.py only, and the time rules
(clock format, centre time, time tag, hub id, "is live") exist once."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
from tempo.settings import AskSettings, environment

ROOT = Path(__file__).resolve().parents[1]
# Hidden top-level folders (.venv, .venv-lmms, .git, test artifacts) are never the package.
NOT_PACKAGE = {".venv", "tests", "build", ".git"}


def _environment_reads(path: Path) -> list[int]:
    """Lines of `os.environ.get(...)`, `os.environ[...]` (read) and `os.getenv(...)` in a file."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        target = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("get", "__getitem__"):
                target = node.func.value
            elif node.func.attr == "getenv":
                lines.append(node.lineno)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            target = node.value
        if isinstance(target, ast.Attribute) and target.attr == "environ":
            lines.append(node.lineno)
    return lines


def test_environment_variables_are_read_in_one_place() -> None:
    reads = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if NOT_PACKAGE & set(rel.parts) or rel.parts[0].startswith(".") or str(rel) == "settings.py":
            continue
        if found := _environment_reads(path):
            reads[str(rel)] = found
    assert reads == {}


def test_environment_reads_the_tempo_variables_now(monkeypatch) -> None:
    monkeypatch.setenv("TEMPO_MODEL", "/m")
    monkeypatch.setenv("TEMPO_REDIS_URL", "")
    env = environment()
    assert (env.model, env.redis_url) == ("/m", None)


def test_cli_defaults_come_from_the_settings_dataclasses() -> None:
    import argparse

    from tempo.models.config import TempoInferenceConfig
    from tempo.tools.commands import ask, chat

    parsers = argparse.ArgumentParser().add_subparsers()
    ask.register(parsers)
    chat.register(parsers)
    asked = parsers.choices["ask"].parse_args(["--stream", "s", "q"])
    chatted = parsers.choices["chat"].parse_args(["--stream", "s"])
    assert asked.top_k == chatted.top_k == AskSettings().top_k
    assert asked.budget == AskSettings().budget and asked.fps == TempoInferenceConfig().fps


def test_one_clock_format() -> None:
    from tempo.engine.timeexpr import format_clock

    assert [format_clock(t) for t in (0, 4.5, 65, 3725.25)] == ["0:00", "0:04.5", "1:05", "1:02:05.2"]
    assert [format_clock(t) for t in (119.98, 59.96, 3599.97)] == ["2:00", "1:00", "1:00:00"]  # never "1:60.0"


def test_one_centre_time_rule_for_segments_and_plans() -> None:
    from tempo.models.family import centre_time

    assert centre_time(8.0, 8, 2.0) == 10.0
    np.testing.assert_allclose(centre_time(np.array([0.0, 4.0]), 8, 2.0), [2.0, 6.0])


def test_one_is_live_rule() -> None:
    from tempo.streaming.segment import SourceInfo, is_live

    assert not is_live(SourceInfo(uri="/a.mp4", kind="file", live=False))
    assert is_live(SourceInfo(uri="rtsp://x", kind="network", live=True))
    assert is_live({"uri": "-", "kind": "stdin", "live": False})
    assert not is_live({"uri": "/a.mp4"})
