"""The Tempo method's constants (ids, prompts, margins) and its run-time knobs (DESIGN §2).

Light (no torch): the CLI reads these to build its parser. What a checkpoint's config.json says
(the architecture, fixed by training) is `TempoConfig` in configuration_tempo.py;
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

@dataclass
class TempoInferenceConfig:
    """Load-time knobs of a loaded model (DESIGN §2): how frames are sampled for it, its context, how it
    batches and where it runs. Seconds, frames and tokens as named. What one question chooses (budget,
    ATA's floor, answer length, temperature, top-K) is `tempo.settings.AskSettings`, never read from here.
    """

    fps: float = 2.0  # frames sampled per second of video
    window: int = 8  # frames per segment (4 s at 2 fps)
    max_edge: int = 512  # longest frame side in pixels before the SVLM processor (multiples of 16)
    context_limit: int = 16384  # global LLM context at inference (32K in the paper's evaluation)
    compress_batch_size: int = 8  # segments per SVLM forward pass
    # Prepare batch i+1 on the CPU while batch i runs; None: only on accelerators (on CPU both would compete).
    prefetch: bool | None = None
    dtype: str | None = None  # "float32" / "bfloat16"; None: bfloat16 on CUDA, float32 on CPU
    device: str | None = None  # None: "cuda" when available, else "cpu"
    extra: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> TempoInferenceConfig:
        return dataclasses.replace(self, **changes)
