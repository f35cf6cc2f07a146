"""Every third-party module the package imports is a declared dependency in pyproject.toml (none
arrives only as a dependency of a dependency, which a release of that one could drop)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Hidden top-level folders (.venv, .venv-lmms, .git, test artifacts) are never the package.
NOT_PACKAGE = {".venv", "tests", "bench", "build", ".git"}  # bench and tests use the dev extra


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    return {_normal(re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0]) for spec in specs}


def imported_modules() -> dict[str, str]:
    """Top-level module → the first file importing it, over the package's own source files."""
    found: dict[str, str] = {}
    for path in sorted(ROOT.rglob("*.py")):
        if NOT_PACKAGE & set(path.relative_to(ROOT).parts) or path.relative_to(ROOT).parts[0].startswith("."):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "tempo":
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_imported_third_party_module_is_declared() -> None:
    providers = importlib.metadata.packages_distributions()
    wanted = declared()
    modules = imported_modules()
    assert {"torch", "redis", "pydantic", "mcp_types"} <= set(modules)  # the walk sees the package
    missing = {
        module: f"{where} (provided by {providers.get(module, ['nothing installed'])})"
        for module, where in modules.items()
        # A module of an extra that is not installed here (lmms-eval lives in its own venv) is
        # matched by its name, as its distribution is named.
        if not {_normal(d) for d in providers.get(module, [module])} & wanted
    }
    assert missing == {}
