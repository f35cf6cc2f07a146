"""The one configuration of a Tempo checkpoint (DESIGN §2): `TempoConfig`, what its config.json says.

A Qwen3 causal-LM config (the global LLM) plus the release's mm_* keys: the base SVLM
(`mm_vision_tower_aux_list`), M (`num_compression_tokens`), D (`mm_hidden_size`) and the projector
(`mm_projector_type`). Registered with `AutoConfig` for model_type "tempo_qwen". Loading reads
config.json once (`read_tempo_config`); writing gives the same file back (`to_checkpoint_dict`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tempo.models.checkpoint import CONFIG_FILE, read_json, resolve_base_svlm
from tempo.models.config import MODEL_TYPE, PROJECTOR_TYPE
from tempo.models.errors import CheckpointError
from transformers import AutoConfig, Qwen3Config, Qwen3VLConfig

# Keys the released config.json adds on top of a Qwen3 causal-LM config; a checkpoint lacking one is refused.
MM_KEYS = ("mm_vision_tower_aux_list", "num_compression_tokens", "mm_projector_type", "mm_hidden_size")
# What `to_dict` adds that a released config.json does not carry: written by whoever loaded or saved
# the config last, not part of the architecture (the tiny writer drops the same keys).
_RUNTIME_KEYS = ("transformers_version", "_name_or_path", "dtype", "torch_dtype")


class TempoConfig(Qwen3Config):
    """config.json of a Tempo checkpoint (model_type "tempo_qwen"): a Qwen3 causal-LM config plus the
    release's mm_* keys. `svlm_config` (the base Qwen3-VL config) is not stored: loading reads it from
    the directory `mm_vision_tower_aux_list` names (`attach_base_svlm_config`), as the release's
    builder does."""

    model_type = MODEL_TYPE
    mm_vision_tower_aux_list: list | str | None = None  # [hub id or directory of the base Qwen3-VL]
    num_compression_tokens: int = 128  # M: memory tokens per segment (128 in the release)
    mm_projector_type: str = PROJECTOR_TYPE
    mm_hidden_size: int = 2048  # D: the SVLM hidden size the memory tokens have (2048 for Qwen3-VL-2B)
    svlm_config: Qwen3VLConfig | dict | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        # The release forces `rope_scaling = None` on the global LLM (TempoQwenForCausalLM.__init__): plain
        # RoPE with the config's base, whatever scaling the config names.
        theta = (self.rope_parameters or {}).get("rope_theta", getattr(self, "rope_theta", None))
        self.rope_parameters = {"rope_type": "default", "rope_theta": theta}
        if isinstance(self.svlm_config, dict):
            self.svlm_config = Qwen3VLConfig.from_dict(self.svlm_config)

    @property
    def base_svlm(self) -> str:
        """mm_vision_tower_aux_list[0]: hub id or directory of the base Qwen3-VL model."""
        towers = self.mm_vision_tower_aux_list
        return str(towers[0] if isinstance(towers, list | tuple) else towers)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.pop("svlm_config", None)  # lives in the base SVLM's directory
        # transformers 4.57 (the release) reads the RoPE base from the legacy keys.
        out["rope_theta"] = self.rope_parameters["rope_theta"]
        out["rope_scaling"] = None
        return out

    def to_checkpoint_dict(self, *, base_svlm: str | None = None) -> dict[str, Any]:
        """config.json in the released layout: the architecture only (no transformers version, dtype or
        load path), the base SVLM as a one-element list (`base_svlm` overrides it, e.g. an absolute
        directory so a copy of the checkpoint still finds it)."""
        out = self.to_dict()
        for key in _RUNTIME_KEYS:
            out.pop(key, None)
        out["model_type"] = MODEL_TYPE
        out["mm_vision_tower_aux_list"] = [self.base_svlm if base_svlm is None else base_svlm]
        return out


AutoConfig.register(MODEL_TYPE, TempoConfig)


def read_tempo_config(model_dir: Path) -> TempoConfig:
    """config.json of a Tempo checkpoint, read once, as a TempoConfig; CheckpointError for a file that
    is not one (another model_type, a missing or mangled mm_* key, not a Qwen3 causal-LM config)."""
    path = model_dir / CONFIG_FILE
    raw = read_json(path, "Tempo checkpoint")
    if raw.get("model_type") != MODEL_TYPE:
        raise CheckpointError(
            f"{path} has model_type {raw.get('model_type')!r}, not {MODEL_TYPE!r}: this is not a Tempo checkpoint."
        )
    try:
        missing = [k for k in MM_KEYS if k not in raw]
        if missing:
            raise KeyError(", ".join(missing))
        towers = raw["mm_vision_tower_aux_list"]
        base = towers[0] if isinstance(towers, list | tuple) else towers
        mm = {
            "mm_vision_tower_aux_list": [str(base)],
            "num_compression_tokens": int(raw["num_compression_tokens"]),
            "mm_hidden_size": int(raw["mm_hidden_size"]),
            "mm_projector_type": str(raw["mm_projector_type"]),
        }
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CheckpointError(f"{path} lacks or mangles the Tempo key(s) {exc}.") from exc
    fields = {k: v for k, v in raw.items() if k != "model_type"} | mm
    try:
        return TempoConfig.from_dict(fields)
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path} is not a Qwen3 causal-LM config ({exc}).") from exc


def attach_base_svlm_config(config: TempoConfig, model_dir: Path) -> Path:
    """Read the base Qwen3-VL config that `mm_vision_tower_aux_list` names into `config.svlm_config`;
    returns the base SVLM's directory."""
    base_dir = resolve_base_svlm(config.base_svlm, model_dir)
    if not isinstance(config.svlm_config, Qwen3VLConfig):
        try:
            config.svlm_config = Qwen3VLConfig.from_dict(read_json(base_dir / CONFIG_FILE, "base SVLM"))
        except (TypeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{base_dir / CONFIG_FILE} is not a Qwen3-VL config ({exc}).") from exc
    return base_dir
