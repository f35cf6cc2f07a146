"""Files that hold one thing each (issue 20): no source file over 600 lines and no function over 120
lines outside tests/ and bench/, so a reader finds each thing where its name says and can read it whole."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 120


def _sources() -> list[Path]:
    skip = {"tests", "bench", "build", "dist"}
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if not (set(parts[:-1]) & skip or any(part.startswith(".") for part in parts)):
            found.append(path)
    return found


def test_the_walk_sees_every_floor() -> None:
    folders = {p.relative_to(ROOT).parts[0] for p in _sources() if len(p.relative_to(ROOT).parts) > 1}
    assert {"streaming", "models", "engine", "memory", "agent", "tools", "eval"} <= folders


def test_no_source_file_is_longer_than_600_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for p in _sources() if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES}
    assert not long, f"files over {MAX_FILE_LINES} lines: {long}"


def test_no_function_is_longer_than_120_lines() -> None:
    long = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.name}"] = lines
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"
