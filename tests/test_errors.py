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


# ----- errors by kind ---------------------------------------------------------------------------------

CATEGORIES = (
    "InvalidInputError", "NotFoundError", "ConflictError", "UnavailableError", "TooManyRequestsError", "TimedOutError",
)


def _tempo_errors() -> list[type]:
    """Every TempoError subclass the package defines (its errors modules, imported by dotted name)."""
    import importlib

    from tempo.errors import TempoError

    found: set[type] = set()
    for path in sorted(ROOT.rglob("errors.py")):
        rel = path.relative_to(ROOT)
        if NOT_PACKAGE & set(rel.parts) or rel.parts[0].startswith("."):
            continue
        module = importlib.import_module(".".join(("tempo", *rel.with_suffix("").parts)))
        found |= {
            obj for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, TempoError) and obj.__module__ == module.__name__
        }
    return sorted(found, key=lambda c: (c.__module__, c.__name__))


def test_every_tempo_error_derives_from_exactly_one_category() -> None:
    import tempo.errors as errors

    categories = tuple(getattr(errors, name) for name in CATEGORIES)
    classes = [c for c in _tempo_errors() if c not in categories and c is not errors.TempoError]
    assert len(classes) > 40  # the walk found the package's errors modules
    wrong = {
        f"{c.__module__}.{c.__name__}": [k.__name__ for k in categories if issubclass(c, k)]
        for c in classes
        if sum(issubclass(c, k) for k in categories) != 1
    }
    assert wrong == {}


def test_the_categories_are_disjoint_direct_children_of_tempo_error() -> None:
    import tempo.errors as errors

    for name in CATEGORIES:
        assert getattr(errors, name).__bases__ == (errors.TempoError,), name


def test_one_stream_busy_error_is_a_conflict() -> None:
    from tempo.errors import ConflictError
    from tempo.memory.errors import StreamBusyError

    assert issubclass(StreamBusyError, ConflictError)
    assert [c for c in _tempo_errors() if c.__name__ == "StreamBusyError"] == [StreamBusyError]


def test_a_conversation_takes_the_one_question_limit_as_invalid_input() -> None:
    import pytest
    from tempo.agent.conversations import InvalidQuestionError, check_question
    from tempo.errors import InvalidInputError
    from tempo.inputs import QUESTION_MAX_CHARS

    assert check_question("x" * QUESTION_MAX_CHARS) == "x" * QUESTION_MAX_CHARS
    with pytest.raises(InvalidQuestionError, match=f"longer than {QUESTION_MAX_CHARS} characters") as err:
        check_question("x" * (QUESTION_MAX_CHARS + 1))
    assert isinstance(err.value, InvalidInputError)
