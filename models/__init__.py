"""Model families behind one seam (DESIGN §2, §4): the Tempo model core — SVLM compressor + relevance
head, ATA, projector, global LLM — loaded, and the interface the engine calls it through.

model = TempoModel.load(resolve_model_name(None))              # --model / $TEMPO_MODEL / released id
scores, memory = model.compress(segments, question)            # (n,), (n, M, D)
counts = allocate_tokens(scores, tokens_per_segment=model.num_memory_tokens, budget=8192)
kept = truncate_memory(memory, counts)
text = model.answer(question, [(model.centre_time(s), k) for s, k in zip(segments, kept)])

Owns: the seam `ModelFamily` and the one centre-time rule (family.py); the Tempo family, loaded
(tempo_family.py: `TempoModel`, checkpoint + base SVLM + processor, the compressor pass); the
Hugging Face model files in transformers' naming — the one config class `TempoConfig`
(configuration_tempo.py) and `TempoForCausalLM` with its release numerics (modeling_tempo.py); the
SVLM compressor and relevance head (compressor.py, processor.py, text.py), ATA (ata.py), the global
LLM's prompt and decoding (answer.py: `GlobalLLM`), checkpoint IO (checkpoint.py), device / dtype /
attention choice (device.py), the SigLIP segment embedder (embedder.py), tiny test checkpoints
(tiny.py), constants and load-time knobs (config.py). The stages that run a model (ingest, recall,
the reference mode's `answer_video`) are `tempo.engine`'s.
May import: `tempo.streaming` (segments) and the shared top-level modules (`tempo.errors`,
`tempo.inputs`, `tempo.settings`); never memory, the engine, agent, tools or service
(tests/test_import_stages.py).
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
    "TempoInferenceConfig": "config",
    "AnswerStats": "answer",
    "TempoConfig": "configuration_tempo",
    "TempoForCausalLM": "modeling_tempo",
    "ModelFamily": "family",
    "centre_time": "family",
    "TempoModel": "tempo_family",
    "segment_centre_time": "tempo_family",
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
    "ModelFamily",
    "ModelNotAvailableError",
    "TempoConfig",
    "TempoForCausalLM",
    "TempoInferenceConfig",
    "TempoModel",
    "allocate_tokens",
    "average_tokens_per_frame",
    "centre_time",
    "resolve_model_name",
    "segment_centre_time",
    "truncate_memory",
]
