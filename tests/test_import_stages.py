"""Layout (issues 9 and 20): no module imports from a later stage of the data flow, with no exceptions.

streaming → models, memory → engine → service → agent → tools. models (the model families) and memory
(storage) share a stage and know nothing of each other; engine (the stages that run models) joins them;
the service owns the resources and asks nothing (asking is the agent's, above it). `errors.py`,
`inputs.py`, `settings.py` and `_version.py` at the top level are shared by every stage. Imports inside
functions and under TYPE_CHECKING count too: a lazy import or an annotation is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = {"streaming": 0, "models": 1, "memory": 1, "engine": 2, "service": 3, "agent": 4, "tools": 5}
SHARED = {"errors", "inputs", "settings", "_version"}


def _stage_of(module: str) -> float | None:
    """The stage of `tempo.X...` (None for shared or non-Tempo modules)."""
    parts = module.split(".")
    if parts[0] != "tempo" or len(parts) < 2 or parts[1] in SHARED:
        return None
    return STAGES.get(parts[1])


def _is_type_checking(test: ast.expr) -> bool:
    """The test of `if TYPE_CHECKING:` / `if typing.TYPE_CHECKING:` (imports for annotations only)."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, runtime_only: bool) -> Iterator[ast.AST]:
    """Every node under `node`; with `runtime_only`, not the body of an `if TYPE_CHECKING:`."""
    for child in ast.iter_child_nodes(node):
        if runtime_only and isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.orelse:
                yield stmt
                yield from _walk(stmt, runtime_only)
            continue
        yield child
        yield from _walk(child, runtime_only)


def _imports(path: Path, *, runtime_only: bool = False) -> set[str]:
    found: set[str] = set()
    for node in _walk(ast.parse(path.read_text(), str(path)), runtime_only):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names if node.module == "tempo"}
    return found


def _modules() -> list[tuple[str, Path]]:
    out = [("tempo.service", ROOT / "service.py")]
    for folder in ("streaming", "models", "memory", "engine", "agent", "tools"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            out.append(("tempo." + ".".join(rel.parts), path))
    return out


def _violations() -> set[tuple[str, str]]:
    bad = set()
    for name, path in _modules():
        own = _stage_of(name)
        for imported in _imports(path):
            stage = _stage_of(imported)
            if own is not None and stage is not None and stage > own:
                bad.add((name, imported))
    return bad


def test_no_module_imports_from_a_later_stage() -> None:
    bad = _violations()
    assert not bad, "imports from a later stage: " + ", ".join(f"{a} → {b}" for a, b in sorted(bad))


def _part_of(module: str) -> str | None:
    """The part (`streaming`, ..., `service`) of `tempo.X...`; None for shared and non-Tempo modules."""
    parts = module.split(".")
    return parts[1] if parts[0] == "tempo" and len(parts) > 1 and parts[1] in STAGES else None


def test_no_import_cycle_between_parts() -> None:
    edges: dict[str, set[str]] = {part: set() for part in STAGES}
    for name, path in _modules():
        own = _part_of(name)
        for imported in _imports(path):
            other = _part_of(imported)
            if own is not None and other is not None and other != own:
                edges[own].add(other)
    # Depth-first search for a back edge.
    state: dict[str, int] = {}

    def cycle_from(part: str, trail: list[str]) -> list[str] | None:
        state[part] = 1
        for nxt in sorted(edges[part]):
            if state.get(nxt) == 1:
                return [*trail, part, nxt]
            if nxt not in state and (found := cycle_from(nxt, [*trail, part])):
                return found
        state[part] = 2
        return None

    for part in sorted(edges):
        if part not in state:
            found = cycle_from(part, [])
            assert found is None, "import cycle: " + " → ".join(found or [])


def test_the_rule_sees_lazy_imports(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from tempo.tools.cli import main\n    import tempo.agent.graph\n")
    assert {"tempo.tools.cli", "tempo.agent.graph"} <= _imports(path)
    assert _stage_of("tempo.tools.cli") == 5 and _stage_of("tempo.errors") is None


def _imports_of(package: str, *, runtime_only: bool) -> set[tuple[str, str]]:
    return {
        (name, imported)
        for name, path in _modules()
        if name.split(".")[:2] == ["tempo", package]
        for imported in _imports(path, runtime_only=runtime_only)
    }


def test_memory_imports_no_model_code() -> None:
    # Storage only (DESIGN §4): what it needs of a model is a small Protocol of its own, so not even an
    # annotation names a model type.
    bad = {(a, b) for a, b in _imports_of("memory", runtime_only=False) if b.split(".")[:2] == ["tempo", "models"]}
    assert not bad, "memory imports model code: " + ", ".join(f"{a} → {b}" for a, b in sorted(bad))


def test_models_never_import_memory() -> None:
    bad = {(a, b) for a, b in _imports_of("models", runtime_only=False) if b.split(".")[:2] == ["tempo", "memory"]}
    assert not bad, "models imports storage: " + ", ".join(f"{a} → {b}" for a, b in sorted(bad))


def test_type_checking_imports_are_not_run_time_imports(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tempo.models.embedder import E\n"
        "else:\n    import tempo.models.ata\ndef f():\n    from tempo.models.config import GENERIC_QUERY\n"
    )
    assert _imports(path, runtime_only=True) == {"typing", "tempo.models.ata", "tempo.models.config"}
    assert "tempo.models.embedder" in _imports(path)
