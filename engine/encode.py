"""`encode_batch`: the ingest's model step, once for every process that runs it (DESIGN §3).

One batch of segments → the generic SVLM pass (memory tokens, with the standing questions' relevance
riding on the same forward: the vision tower runs once for all prompts) + the segment embedder. The
single-process ingest (engine/ingest.py) and the queue workers (engine/worker.py) both call it, so a
segment is encoded the same way whichever path ingests it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from tempo.models.config import GENERIC_QUERY

if TYPE_CHECKING:
    from tempo.models.embedder import SegmentEmbedder
    from tempo.models.family import ModelFamily
    from tempo.streaming.segment import Segment


@dataclass(frozen=True)
class EncodedBatch:
    """What `encode_batch` made of n segments."""

    memory: np.ndarray  # (n, M, D) float32: generic memory tokens
    embeddings: np.ndarray  # (n, E) float32: segment embeddings
    rule_scores: list[np.ndarray]  # per segment (R_i,) float32 in [0, 1]: relevance of its rules, in order


def encode_batch(
    model: ModelFamily,
    embedder: SegmentEmbedder,
    segments: Sequence[Segment],
    rules: Sequence[Sequence[str]] | None = None,
    *,
    batch_size: int,
    query: str = GENERIC_QUERY,
) -> EncodedBatch:
    """The generic pass (`query`) and the embedder over `segments`.

    `rules[i]`: the texts of the standing questions to score with segment i (None: none for any).
    Segments whose rule texts are the same share a forward (one for a single-process batch, which is
    all one stream); the embedder runs once over the whole batch.
    """
    n = len(segments)
    if n == 0:
        return EncodedBatch(np.zeros((0, model.num_memory_tokens, model.memory_dim), np.float32),
                            np.zeros((0, embedder.dim), np.float32), [])
    texts = [tuple(r) for r in rules] if rules is not None else [()] * n
    groups: dict[tuple[str, ...], list[int]] = {}
    for row, key in enumerate(texts):
        groups.setdefault(key, []).append(row)
    memory: np.ndarray | None = None
    scores: list[np.ndarray] = [np.zeros(0, np.float32)] * n
    for key, rows in groups.items():
        group = [segments[r] for r in rows]
        if key:  # (g, M, D) memory and (g, R) rule relevance from one forward
            _, mem, rule_scores = model.compress_with_rules(group, query, list(key), batch_size=batch_size)
        else:
            _, mem = model.compress(group, query, batch_size=batch_size)  # (g, M, D)
            rule_scores = np.zeros((len(rows), 0), dtype=np.float32)
        tokens = mem.float().numpy()  # (g, M, D)
        if len(groups) == 1:
            memory = tokens  # one forward for the whole batch, rows in order: no copy
        else:
            if memory is None:
                memory = np.empty((n, *tokens.shape[1:]), dtype=np.float32)
            memory[rows] = tokens
        for k, r in enumerate(rows):
            scores[r] = np.asarray(rule_scores[k], dtype=np.float32)  # (R,)
    embeddings = embedder.embed_segments([s.frames for s in segments])  # (n, E)
    assert memory is not None
    return EncodedBatch(memory=memory, embeddings=embeddings, rule_scores=scores)
