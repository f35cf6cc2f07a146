"""Typed user errors live in the packages' `errors` modules (one obvious place for each).

Internal control-flow exceptions that never reach a user (streaming.decode's `ReadInterrupted`, a
plain `Exception`) are not errors in this sense and stay where they are raised and caught."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Hidden top-level folders (.venv, .venv-lmms, .git, test artifacts) are never the package.
NOT_PACKAGE = {".venv", "tests", "bench", "build", ".git"}


def test_every_exception_class_is_defined_in_an_errors_module() -> None:
    outside = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if NOT_PACKAGE & set(rel.parts) or rel.parts[0].startswith(".") or rel.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                bases = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases]
                if any(b.endswith("Error") for b in bases):
                    outside.append(f"{rel}:{node.lineno} {node.name}")
    assert outside == []
