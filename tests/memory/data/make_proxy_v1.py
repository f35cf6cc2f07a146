"""Writes proxy_v1.bin: a proxy clip made the old way (TPX1), by memory/proxy.py as of commit 6b573c8.

    git show 6b573c8:memory/proxy.py > /tmp/proxy_v1.py
    .venv/bin/python tests/memory/data/make_proxy_v1.py /tmp/proxy_v1.py

The frames are tests/memory/test_proxy.py's `scene()` (8 × 288 × 512), encoded at that version's
defaults (longer edge 256 px, CRF 32); tests/memory/test_proxy.py decodes the committed bytes.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    old = _load(Path(sys.argv[1]), "proxy_v1")
    scene = _load(HERE.parent / "test_proxy.py", "test_proxy").scene
    (HERE / "proxy_v1.bin").write_bytes(old.encode_proxy(scene()))
