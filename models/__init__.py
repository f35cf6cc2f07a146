"""The Tempo model core (DESIGN §2): SVLM compressor + relevance head, ATA, projector, global LLM.

model = TempoModel.from_pretrained(resolve_model_name(None))   # --model / $TEMPO_MODEL / released id
scores, memory = model.compress(segments, question)            # (n,), (n, M, D)
counts = allocate_tokens(scores, tokens_per_segment=model.num_memory_tokens, budget=8192)
kept = truncate_memory(memory, counts)
text = model.answer(question, [(model.centre_time(s), k) for s, k in zip(segments, kept)])
"""

from __future__ import annotations

import os

from tempo.models.ata import allocate_tokens, average_tokens_per_frame, truncate_memory
from tempo.models.checkpoint import CheckpointError, ModelNotAvailableError
from tempo.models.config import (
    DEFAULT_MODEL_ID,
    GENERIC_QUERY,
    TempoCheckpointConfig,
    TempoInferenceConfig,
)
from tempo.models.modeling import AnswerStats, TempoModel, segment_centre_time
from tempo.models.pipeline import AskResult, SegmentAllocation, answer_video

MODEL_ENV = "TEMPO_MODEL"


def resolve_model_name(value: str | None) -> str:
    """The model to load: an explicit value, else $TEMPO_MODEL, else the released id."""
    return value or os.environ.get(MODEL_ENV) or DEFAULT_MODEL_ID


__all__ = [
    "DEFAULT_MODEL_ID",
    "GENERIC_QUERY",
    "MODEL_ENV",
    "AnswerStats",
    "AskResult",
    "CheckpointError",
    "ModelNotAvailableError",
    "SegmentAllocation",
    "TempoCheckpointConfig",
    "TempoInferenceConfig",
    "TempoModel",
    "allocate_tokens",
    "answer_video",
    "average_tokens_per_frame",
    "resolve_model_name",
    "segment_centre_time",
    "truncate_memory",
]
