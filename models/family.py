"""The seam between the engine and a model family (DESIGN §4): `ModelFamily`, and the time-tag rule.

Ingest, recall, the queue worker, the reference pipeline, the rewrite node and the service talk to
"a model family" only through what this Protocol names; `tempo.models.tempo_family.TempoModel` is
the Tempo implementation (tests/models/test_family.py holds both to it), and a second family (open
weights) plugs in by providing the same members. Units: scores in [0, 1], times in seconds, memory
tokens as float32 tensors (n segments × M tokens × D width).

Light on purpose (no torch at import): the types below are annotations only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import torch
    from tempo.models.config import TempoInferenceConfig
    from tempo.models.processor import SegmentVideoProcessor
    from tempo.streaming.segment import Segment

T = TypeVar("T", float, np.ndarray)


def centre_time(start: T, window: int, fps: float) -> T:
    """Time tag t of a segment (seconds; a float or an array): the time of its first sample plus half
    a nominal window. The one centre-time rule (the model's time tags, recall's plans)."""
    return start + window / (2.0 * fps)


@runtime_checkable
class ModelFamily(Protocol):
    """What the engine needs from a loaded model family: relevance, compression, answers.

    Attributes read by callers:
    - `config`: the load-time knobs (window, context limit, compress_batch_size); a question's own
      knobs (budget, answer length, temperature) come with each call, from `AskSettings`;
    - `device`: where the model runs (the service puts the segment embedder beside it);
    - `model_dir`: the loaded checkpoint directory (the service looks for the embedder beside it);
    - `processor`: the frame preprocessing the compressor applies (proxies keep frames as it is fed).
    """

    config: TempoInferenceConfig
    device: torch.device
    model_dir: Path
    processor: SegmentVideoProcessor

    @property
    def num_memory_tokens(self) -> int:
        """M: memory tokens per segment a compression returns."""
        ...

    @property
    def memory_dim(self) -> int:
        """D: width of one memory token."""
        ...

    def centre_time(self, segment: Segment) -> float:
        """The time tag of `segment` in seconds (its first sample + half a window)."""
        ...

    def check_question_fits(self, question: str) -> int:
        """Tokens of the answer context left for video once `question` is in the prompt;
        QuestionTooLongError when not even one segment would fit (called before any compression)."""
        ...

    def score_segments(
        self, segments: Sequence[Segment], queries: Sequence[str], *, batch_size: int | None = None
    ) -> np.ndarray:
        """(n, Q) float32 in [0, 1]: the relevance of each of n segments to each of Q queries."""
        ...

    def compress(
        self,
        segments: Sequence[Segment],
        query: str,
        *,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> tuple[np.ndarray, torch.Tensor]:
        """The query-aware pass: relevance scores (n,) float32 in [0, 1] and memory tokens (n, M, D)
        float32 on CPU. `batch_size` segments per forward (None: `config.compress_batch_size`)."""
        ...

    def compress_with_rules(
        self,
        segments: Sequence[Segment],
        query: str,
        rules: Sequence[str],
        *,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> tuple[np.ndarray, torch.Tensor, np.ndarray]:
        """The ingest pass (`query` is the generic query) with standing rules scored in the same
        forward: scores (n,), memory tokens (n, M, D) float32 on CPU, rule scores (n, R) in [0, 1]."""
        ...

    def answer(
        self,
        question: str,
        memory: Sequence[tuple[float | str, torch.Tensor]],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        on_text: Callable[[str], None] | None = None,
        texts: Sequence[str] | None = None,
    ) -> str:
        """The answer to `question` from per-segment (centre time in seconds, kept memory tokens
        (k_i, D)) in timeline order (a str instead of the time: the segment's whole tag, e.g. a
        cross-stream `<cam2 42.0 seconds>`), at most `max_new_tokens` long; `temperature` 0 is greedy (the
        release). `on_text` receives the text as it is generated, in pieces that concatenate to
        the returned (stripped) answer. `texts`: per segment, the words it carries (subtitles,
        transcript: `tempo.engine.text_track.segment_words`), rendered after its time tag; None: none."""
        ...

    def generate_text(self, prompt: str, *, max_new_tokens: int) -> str:
        """Greedy text-only continuation of a ChatML `prompt` (no video): the rewrite of a follow-up."""
        ...
