"""Which model a `tempo eval` run answered with, however it was named (--model, $TEMPO_MODEL, the default).

A results file records the resolved checkpoint directory and a fingerprint of what the directory
holds — config.json, the weight index (sharded checkpoints) and, per weight file, its name, size and
first and last MiB — so a resume with another checkpoint is refused while the same checkpoint named
another way (a flag, the environment, a copy elsewhere) is accepted. Reading it loads no weights.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

_SAMPLE = 1 << 20  # bytes read from each end of a weight file


def model_identity(model: str | None) -> dict[str, str]:
    """{"path": the checkpoint directory, "sha256": its fingerprint} of `model` (None: $TEMPO_MODEL, else
    the default); CheckpointError, one sentence, when it names no checkpoint on disk."""
    from tempo.models import resolve_model_name
    from tempo.models.checkpoint import WEIGHTS_INDEX_FILE, resolve_model_dir, weight_files

    directory = Path(resolve_model_dir(resolve_model_name(model))).resolve()
    digest = hashlib.sha256()
    for name in ("config.json", WEIGHTS_INDEX_FILE):
        path = directory / name
        if path.is_file():
            digest.update(f"{name}\0".encode() + path.read_bytes() + b"\0")
    for path in weight_files(directory):
        size = path.stat().st_size
        digest.update(f"{path.name}\0{size}\0".encode())
        with path.open("rb") as fh:
            digest.update(fh.read(_SAMPLE))
            fh.seek(max(0, size - _SAMPLE))
            digest.update(fh.read(_SAMPLE))
    return {"path": str(directory), "sha256": digest.hexdigest()}


def same_model(recorded: Any, current: dict[str, str]) -> bool:
    """Whether a results file's recorded model is `current` (by fingerprint, wherever it lies)."""
    return isinstance(recorded, dict) and recorded.get("sha256") == current.get("sha256")


def describe(recorded: Any) -> str:
    """A recorded model in words, for the refusal of a resume."""
    if isinstance(recorded, dict):
        return f"{recorded.get('path') or 'unknown path'} (fingerprint {str(recorded.get('sha256'))[:12]})"
    return str(recorded) if recorded else "unrecorded"
