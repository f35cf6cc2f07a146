"""The Tempo network as a Hugging Face model (DESIGN §2): `TempoForCausalLM` and its release numerics.

All weights under exactly the released key names, registered with AutoModelForCausalLM for
`TempoConfig` (configuration_tempo.py, model_type "tempo_qwen"), so
`AutoModelForCausalLM.from_pretrained(DIR)` loads a released or tiny checkpoint with transformers'
dtype / device_map / attn_implementation / sharding, and the weights take the values the release
computes with (float16 load, then bfloat16). `write_checkpoint` writes the same layout back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors import safe_open
from tempo.models.checkpoint import (
    CONFIG_FILE,
    CheckpointError,
    copy_aux_files,
    resolve_model_dir,
    save_weights,
    weight_files,
)
from tempo.models.compressor import TempoCompressor
from tempo.models.config import PROJECTOR_TYPE
from tempo.models.configuration_tempo import TempoConfig, attach_base_svlm_config, read_tempo_config
from torch import nn
from transformers import AutoModelForCausalLM, Qwen3ForCausalLM, Qwen3Model, Qwen3VLConfig
from transformers.utils import logging as hf_logging


class TempoForCausalLM(Qwen3ForCausalLM):
    """All weights, named as in the released checkpoint (DESIGN §2); a Hugging Face causal LM.

    model.embed_tokens / layers / norm and lm_head: the global Qwen3 LM (forward and `generate` are
    Qwen3ForCausalLM's); model.vision_tower_aux_list.0: the compressor (Qwen3-VL without LM head +
    compression_tokens); model.mm_projector.0 / .2: Linear(D → H), GELU, Linear(H → H).

    `AutoModelForCausalLM.from_pretrained(DIR)` loads a checkpoint in the released layout (dtype,
    device_map, attn_implementation as usual) with the release's weight rounding.
    """

    config_class = TempoConfig
    _no_split_modules: ClassVar[list[str]] = ["Qwen3DecoderLayer", "TempoCompressor"]

    def __init__(self, config: TempoConfig) -> None:
        # Qwen3PreTrainedModel.__init__: the submodules are built here, then post_init() once.
        super(Qwen3ForCausalLM, self).__init__(config)
        if config.mm_projector_type != PROJECTOR_TYPE:
            raise CheckpointError(
                f"mm_projector_type {config.mm_projector_type!r} is not supported (only {PROJECTOR_TYPE!r})."
            )
        svlm_config = config.svlm_config
        if not isinstance(svlm_config, Qwen3VLConfig):
            raise CheckpointError(
                "a Tempo model needs its base SVLM's config: load it with from_pretrained, which reads "
                "the directory mm_vision_tower_aux_list names."
            )
        attn = config._attn_implementation or "sdpa"
        for sub in (svlm_config, svlm_config.text_config, svlm_config.vision_config):
            sub._attn_implementation = attn
        hidden = config.hidden_size
        svlm_hidden = svlm_config.text_config.hidden_size
        if config.mm_hidden_size != svlm_hidden:
            raise CheckpointError(
                f"config.json says mm_hidden_size={config.mm_hidden_size} "
                f"but the base SVLM's hidden size is {svlm_hidden}."
            )
        self.model = Qwen3Model(config)
        self.model.vision_tower_aux_list = nn.ModuleList([TempoCompressor(svlm_config, config.num_compression_tokens)])
        self.model.mm_projector = nn.Sequential(nn.Linear(svlm_hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(hidden, config.vocab_size, bias=False)
        self.post_init()

    @property
    def llm_config(self) -> TempoConfig:
        return self.config

    @property
    def compressor(self) -> TempoCompressor:
        return self.model.vision_tower_aux_list[0]

    def project(self, memory: torch.Tensor) -> torch.Tensor:
        """(k, D) memory tokens → (k, H) LLM input embeddings."""
        return self.model.mm_projector(memory)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *args: Any, **kwargs: Any) -> TempoForCausalLM:
        """A checkpoint in the released layout, from a directory or a hub id already on disk (never
        downloads). The base SVLM config comes from `mm_vision_tower_aux_list`; weights take the values
        the release computes with (float16 load, then bfloat16; `release_weight_values`)."""
        model_dir = resolve_model_dir(pretrained_model_name_or_path)
        config = kwargs.pop("config", None)
        if isinstance(config, str | Path):
            config = read_tempo_config(resolve_model_dir(config))
        if not isinstance(config, TempoConfig):
            config = read_tempo_config(model_dir)
        attach_base_svlm_config(config, model_dir)
        check_weight_shapes(config, model_dir)
        kwargs.setdefault("local_files_only", True)
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a checkpoint loads quietly, as the rest of Tempo's output
        try:
            model = super().from_pretrained(str(model_dir), *args, config=config, **kwargs)
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        round_weights_as_released(model, model_dir)
        return model


AutoModelForCausalLM.register(TempoConfig, TempoForCausalLM)


def check_weight_shapes(config: TempoConfig, model_dir: Path) -> None:
    """Refuse missing weights or shapes that disagree with the config, in one sentence, before loading
    (read from the safetensors headers; the model is built on the meta device, no memory)."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in TempoForCausalLM(config).state_dict().items()}
    if config.tie_word_embeddings:
        expected.pop("lm_head.weight", None)
    found: dict[str, tuple[int, ...]] = {}
    for f in weight_files(model_dir):
        try:
            with safe_open(str(f), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 (safe_open has no __iter__)
                    found[key] = tuple(handle.get_slice(key).get_shape())
        except Exception as exc:  # safetensors raises its own error types for truncated/corrupt files
            raise CheckpointError(f"cannot read weights {f}: {exc}") from exc
    missing = [k for k in expected if k not in found]
    if missing:
        raise CheckpointError(
            f"{model_dir} is missing {len(missing)} weight(s) its config.json requires, e.g. '{missing[0]}'."
        )
    for key, shape in expected.items():
        if found[key] != shape:
            raise CheckpointError(
                f"{model_dir}: weight '{key}' has shape {found[key]} but config.json implies {shape}."
            )


def round_weights_as_released(model: TempoForCausalLM, model_dir: Path) -> None:
    """Give every loaded weight the value the release computes with (`release_weight_values`).

    In place when the model's dtype holds the stored values exactly; re-read from the file (one tensor
    at a time) when the load narrowed them (a float32 file in a bfloat16 model), since rounding twice
    (float32 → bfloat16, then float16) is not the release's float32 → float16 → bfloat16.
    """
    params = dict(model.named_parameters())
    with torch.no_grad():
        for f in weight_files(model_dir):
            with safe_open(str(f), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118
                    param = params.get(key)
                    if param is None or not param.is_floating_point() or param.device.type == "meta":
                        continue
                    stored = _SAFETENSORS_BITS.get(handle.get_slice(key).get_dtype(), 0)
                    source = handle.get_tensor(key) if stored > param.element_size() * 8 else param.data
                    param.data.copy_(release_weight_values(source))
    if model.dtype in (torch.bfloat16, torch.float32):
        round_buffers_as_released(model)


_SAFETENSORS_BITS = {"F64": 64, "F32": 32, "BF16": 16, "F16": 16}


def release_weight_values(tensor: torch.Tensor) -> torch.Tensor:
    """A weight as the release computes with it: loaded as float16, then cast to bfloat16 (builder.py,
    infer.py). A bfloat16 tensor, whose values a float32 parameter also holds exactly (the CPU path
    computes in float32 with them); integer tensors pass unchanged."""
    if not tensor.is_floating_point():
        return tensor
    return tensor.to(torch.float16).to(torch.bfloat16)


def round_buffers_as_released(network: TempoForCausalLM) -> None:
    """Floating buffers (rotary frequencies of both LLMs, the compressor's) as the release's casts leave
    them: the SVLM's went through float16 (`vision_tower_aux.to(dtype=float16)`), everything then to
    bfloat16. A bfloat16 model keeps them in bfloat16; a float32 model holds the same values in float32
    (float32 mode is "the release's bfloat16 values, computed in float32", buffers as weights)."""
    compressor_buffers = {id(b) for b in network.compressor.buffers()}
    for module in network.modules():
        for name, buf in list(module.named_buffers(recurse=False)):
            if buf is None or not buf.is_floating_point():
                continue
            value = buf.to(torch.float16) if id(buf) in compressor_buffers else buf
            value = value.to(torch.bfloat16)
            module._buffers[name] = value if network.dtype == torch.bfloat16 else value.to(buf.dtype)


def write_checkpoint(
    network: TempoForCausalLM,
    directory: str | Path,
    *,
    base_svlm: str | None = None,
    aux_source: Path | None = None,
) -> Path:
    """config.json (the network's `TempoConfig`; `base_svlm` overrides the base SVLM it names) +
    safetensors (+ tokenizer/processor files from `aux_source`) in the released layout."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    raw = network.config.to_checkpoint_dict(base_svlm=base_svlm)
    (out / CONFIG_FILE).write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n")
    state = dict(network.state_dict())
    if network.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)  # tied: the embedding table is the head
    save_weights(state, out)
    if aux_source is not None:
        copy_aux_files(aux_source, out)
    return out
