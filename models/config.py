"""Every hyper-parameter of the Tempo model core, named in one place (DESIGN §2).

`TempoCheckpointConfig` is what a checkpoint's config.json says (architecture: fixed by training);
`TempoInferenceConfig` holds the knobs chosen at run time (sampling, budget, context, device).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# The released model on the Hugging Face hub (academic and non-commercial use only).
DEFAULT_MODEL_ID = "Vision-CAIR/Tempo-6B"
# The base SVLM whose LM-head rows give the zero-shot relevance prior.
DEFAULT_BASE_SVLM_ID = "Qwen/Qwen3-VL-2B-Instruct"
MODEL_TYPE = "tempo_qwen"
PROJECTOR_TYPE = "mlp2x_gelu"

# Query used for the query-agnostic ingest pass (DESIGN §3).
GENERIC_QUERY = "Describe this content."

# The compressor's system turn, verbatim from the release (tempo/mm_datautils.py, construct_message,
# "prompt 1 (using during inference)"): compress for the query, and first answer Yes/No on relevance.
COMPRESSOR_SYSTEM_PROMPT = (
    "You are a query-conditioned visual compressor. "
    "Store in the provided memory tokens the minimal visual information needed to answer the Query. "
    "Ignore irrelevant details. "
    "Now, before compressing, answer exactly 'Yes' or 'No': is this segment relevant to the Query?"
)
# The compressor's user turn after the video (the release's `user_message`).
COMPRESSOR_QUERY_TEMPLATE = "\nQuery:\n{query}"
# The global LLM's system turn (DESIGN §2).
LLM_SYSTEM_PROMPT = "You are a helpful assistant."
# Placeholder in the user turn that the visual sequence replaces.
IMAGE_PLACEHOLDER = "<image>"
# Tokens kept free between the prompt and the context limit (DESIGN §2: limit − text − 16).
CONTEXT_MARGIN = 16

# Keys the released config.json adds on top of a Qwen3 causal-LM config.
_MM_KEYS = ("mm_vision_tower_aux_list", "num_compression_tokens", "mm_projector_type", "mm_hidden_size")


@dataclass
class TempoCheckpointConfig:
    """The architecture a checkpoint declares in its config.json (model_type "tempo_qwen")."""

    llm: dict[str, Any]  # the Qwen3 causal-LM config (hidden_size, num_hidden_layers, vocab_size, ...)
    base_svlm: str  # mm_vision_tower_aux_list[0]: hub id or directory of the base Qwen3-VL model
    num_compression_tokens: int  # M: memory tokens per segment (128 in the release)
    mm_hidden_size: int  # D: the SVLM hidden size the memory tokens have (2048 for Qwen3-VL-2B)
    mm_projector_type: str = PROJECTOR_TYPE

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TempoCheckpointConfig:
        missing = [k for k in _MM_KEYS if k not in raw]
        if missing:
            raise KeyError(", ".join(missing))
        towers = raw["mm_vision_tower_aux_list"]
        base = towers[0] if isinstance(towers, list | tuple) else towers
        llm = {k: v for k, v in raw.items() if k not in _MM_KEYS}
        return cls(
            llm=llm,
            base_svlm=str(base),
            num_compression_tokens=int(raw["num_compression_tokens"]),
            mm_hidden_size=int(raw["mm_hidden_size"]),
            mm_projector_type=str(raw["mm_projector_type"]),
        )

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.llm)
        out["model_type"] = MODEL_TYPE
        out["mm_vision_tower_aux_list"] = [self.base_svlm]
        out["num_compression_tokens"] = self.num_compression_tokens
        out["mm_projector_type"] = self.mm_projector_type
        out["mm_hidden_size"] = self.mm_hidden_size
        return out


@dataclass
class TempoInferenceConfig:
    """Run-time knobs of the reference method (DESIGN §2). Seconds, frames and tokens as named."""

    fps: float = 2.0  # frames sampled per second of video
    window: int = 8  # frames per segment (4 s at 2 fps)
    max_edge: int = 512  # longest frame side in pixels before the SVLM processor (multiples of 16)
    min_tokens: int = 4  # m: the floor of ATA (0.5 token/frame)
    budget: int = 8192  # B: visual tokens over the whole timeline (4096 or 8192 in the paper)
    context_limit: int = 16384  # global LLM context at inference (32K in the paper's evaluation)
    max_new_tokens: int = 1024  # the release's infer.py default (reference mode)
    temperature: float = 0.0  # 0 = greedy (the reference)
    compress_batch_size: int = 8  # segments per SVLM forward pass
    # Prepare batch i+1 on the CPU while batch i runs; None: only on accelerators (on CPU both would compete).
    prefetch: bool | None = None
    dtype: str | None = None  # "float32" / "bfloat16"; None: bfloat16 on CUDA, float32 on CPU
    device: str | None = None  # None: "cuda" when available, else "cpu"
    extra: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> TempoInferenceConfig:
        return dataclasses.replace(self, **changes)
