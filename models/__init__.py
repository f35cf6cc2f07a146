"""The Tempo model core (DESIGN §2): SVLM compressor + relevance head, ATA, projector, global LLM.

model = TempoModel.from_pretrained(resolve_model_name(None))   # --model / $TEMPO_MODEL / released id
scores, memory = model.compress(segments, question)            # (n,), (n, M, D)
counts = allocate_tokens(scores, tokens_per_segment=model.num_memory_tokens, budget=8192)
kept = truncate_memory(memory, counts)
text = model.answer(question, [(model.centre_time(s), k) for s, k in zip(segments, kept)])

Owns: the SVLM compressor and relevance head (compressor.py, processor.py, text.py), ATA (ata.py),
the Hugging Face network `TempoConfig` / `TempoForCausalLM` and its release numerics (network.py),
checkpoint IO (checkpoint.py), loading a checkpoint and the compressor pass (modeling.py: `TempoModel`),
the global LLM's prompt and decoding (answer.py: `GlobalLLM`), the SigLIP segment embedder
(embedder.py), tiny test checkpoints (tiny.py), settings (config.py). The stages that run the model
(ingest, recall, the reference-mode `answer_video`) are `tempo.engine`'s. May import: `tempo.streaming`
(segments) and the shared top-level modules (`tempo.errors`, `tempo.inputs`, `tempo.settings`); never
memory, engine, agent, tools or service (tests/test_import_stages.py).
"""

from __future__ import annotations

from typing import Any

# Public names and the submodule each lives in. They load on first use (PEP 562): the CLI imports
# this package to build its parser, and torch/transformers take seconds to import.
_LAZY = {
    "allocate_tokens": "ata",
    "average_tokens_per_frame": "ata",
    "truncate_memory": "ata",
    "CheckpointError": "checkpoint",
    "ModelNotAvailableError": "checkpoint",
    "DEFAULT_MODEL_ID": "config",
    "GENERIC_QUERY": "config",
    "TempoCheckpointConfig": "config",
    "TempoInferenceConfig": "config",
    "AnswerStats": "answer",
    "TempoConfig": "network",
    "TempoForCausalLM": "network",
    "TempoModel": "modeling",
    "segment_centre_time": "modeling",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tempo.models' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"tempo.models.{module}"), name)
    globals()[name] = value
    return value


from tempo.settings import ENV_MODEL, environment  # noqa: E402 (light: no torch)

MODEL_ENV = ENV_MODEL


def resolve_model_name(value: str | None) -> str:
    """The model to load: an explicit value, else $TEMPO_MODEL, else the released id."""
    from tempo.models.config import DEFAULT_MODEL_ID

    return value or environment().model or DEFAULT_MODEL_ID


__all__ = [
    "DEFAULT_MODEL_ID",
    "GENERIC_QUERY",
    "MODEL_ENV",
    "AnswerStats",
    "CheckpointError",
    "ModelNotAvailableError",
    "TempoCheckpointConfig",
    "TempoConfig",
    "TempoForCausalLM",
    "TempoInferenceConfig",
    "TempoModel",
    "allocate_tokens",
    "average_tokens_per_frame",
    "resolve_model_name",
    "segment_centre_time",
    "truncate_memory",
]
