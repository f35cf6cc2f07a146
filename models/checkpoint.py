"""Checkpoint IO in the released layout (DESIGN §2): find a model on disk, read and check it, write it.

Nothing here downloads: a hub id resolves only to a directory already on disk (or in the local
Hugging Face cache); anything else is a `ModelNotAvailableError` telling the user what to pass.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tempo.models.errors import CheckpointError, ModelNotAvailableError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
# Files besides config + weights that make a model directory usable (tokenizer, processor, template).
AUX_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
    "processor_config.json",
    "generation_config.json",
)
SHARD_BYTES = 4 * 1024**3


def looks_like_hub_id(name: str) -> bool:
    """"owner/name" and not a path: the one hub-id rule."""
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "~")) and not os.path.isabs(name)


def _from_local_hub_cache(repo_id: str) -> Path | None:
    """The snapshot of hub id `repo_id` in the local Hugging Face cache, if one was downloaded before;
    None also for a name that is not a hub id."""
    if not looks_like_hub_id(repo_id):
        return None
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached, or the hub library refuses offline: both mean "not here"
        return None


def resolve_model_dir(path_or_id: str | os.PathLike[str]) -> Path:
    """A checkpoint directory on disk for a path or a hub id; never downloads."""
    name = os.fspath(path_or_id)
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists():
        raise CheckpointError(f"{name} is a file, but a model is a directory with {CONFIG_FILE} and weights.")
    cached = _from_local_hub_cache(name)
    if cached is not None:
        return cached
    if looks_like_hub_id(name):
        raise ModelNotAvailableError(
            f"Model '{name}' is not on this machine and cannot be downloaded here; pass --model DIR "
            "(or set TEMPO_MODEL) to a local checkpoint directory, e.g. one made by `tempo model tiny DIR`."
        )
    raise ModelNotAvailableError(f"No model directory at {name}; pass --model DIR (or set TEMPO_MODEL).")


def resolve_base_svlm(name: str, checkpoint_dir: Path) -> Path:
    """The base Qwen3-VL directory `mm_vision_tower_aux_list` names (path, beside the checkpoint, cache)."""
    # As written; relative to the checkpoint; else by its last path part inside or beside the checkpoint
    # (a checkpoint directory that was moved together with its base SVLM).
    candidates = [Path(name).expanduser()]
    if not os.path.isabs(name):
        candidates.append(checkpoint_dir / name)
    candidates += [checkpoint_dir / Path(name).name, checkpoint_dir.parent / Path(name).name]
    for cand in candidates:
        if (cand / CONFIG_FILE).is_file():
            return cand.resolve()
    cached = _from_local_hub_cache(name)
    if cached is not None:
        return cached
    raise ModelNotAvailableError(
        f"The base SVLM '{name}' that {checkpoint_dir / CONFIG_FILE} names is not on this machine "
        "and cannot be "
        f"downloaded here; place it beside the checkpoint as {checkpoint_dir / Path(name).name}."
    )


def read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path.parent} is not a complete {what}: {path.name} is missing.")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}).") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} does not hold a JSON object.")
    return data


def weight_files(model_dir: Path) -> list[Path]:
    index = model_dir / WEIGHTS_INDEX_FILE
    if index.is_file():
        weight_map = read_json(index, "sharded checkpoint").get("weight_map", {})
        files = sorted({model_dir / f for f in weight_map.values()})
    elif (model_dir / WEIGHTS_FILE).is_file():
        files = [model_dir / WEIGHTS_FILE]
    else:
        raise CheckpointError(f"{model_dir} has no weights ({WEIGHTS_FILE} or {WEIGHTS_INDEX_FILE}).")
    for f in files:
        if not f.is_file():
            raise CheckpointError(f"{model_dir} is incomplete: weight shard {f.name} is missing.")
    return files


def load_rows(
    model_dir: Path, key_candidates: Iterable[str], rows: list[int]
) -> tuple[str, torch.Tensor] | None:
    """Selected rows of the first existing 2-D tensor among `key_candidates`, read lazily (no full load)."""
    wanted = list(key_candidates)
    for f in weight_files(model_dir):
        with safe_open(str(f), framework="pt") as handle:
            keys = set(handle.keys())
            for key in wanted:
                if key in keys:
                    sl = handle.get_slice(key)
                    return key, torch.stack([sl[r : r + 1][0] for r in rows])
    return None


def save_weights(state: Mapping[str, torch.Tensor], model_dir: Path) -> None:
    """safetensors in one file, or shards of ≤ 4 GiB with an index (the Hugging Face convention)."""
    # Contiguous, unshared copies: safetensors refuses tensors that share storage (tied weights).
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    meta = {"format": "pt"}
    if total <= SHARD_BYTES:
        save_file(tensors, str(model_dir / WEIGHTS_FILE), metadata=meta)
        return
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for k, t in tensors.items():
        nbytes = t.numel() * t.element_size()
        if shards[-1] and size + nbytes > SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][k] = t
        size += nbytes
    weight_map = {}
    for i, shard in enumerate(shards, 1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(model_dir / name), metadata=meta)
        weight_map.update(dict.fromkeys(shard, name))
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (model_dir / WEIGHTS_INDEX_FILE).write_text(json.dumps(index, indent=2))


def copy_aux_files(src: Path, dst: Path) -> None:
    """Tokenizer, processor and template files travel with the weights."""
    for name in AUX_FILES:
        if (src / name).is_file() and (src / name).resolve() != (dst / name).resolve():
            shutil.copy2(src / name, dst / name)
