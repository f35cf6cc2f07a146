"""Tempo as an lmms-eval model: `lmms-eval --model tempo --model_args pretrained=DIR --tasks videomme`.

lmms-eval is installed by `make lmms` into a venv of its own that sees the project's (README
"Evaluate": lmms-eval's own dependency list would replace torch and PyAV); it finds Tempo through the entry point
`tempo = "tempo.eval.lmms_plugin:manifest"` in the group "lmms_eval.models" (pyproject.toml), its
plugin mechanism since 0.7. The model arguments are the release's (`lmms_eval/models/simple/tempo.py`),
and each request is answered the way the release's wrapper answers it: `<image>` removed from the
task's text, the task's `max_new_tokens` (else `inference_max_length`, 16), the first visual of the
doc as the video, an empty answer when it is missing, the answer cut at the task's stop strings.
The answering itself is `tempo.eval.harness.ReferencePipeline`, the pipeline of `tempo ask VIDEO`.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from lmms_eval.models.registry_v2 import ModelManifest
from tempo.eval.prompts import release_question
from tqdm import tqdm

log = logging.getLogger(__name__)

MODEL_ID = "tempo"
# Model arguments of the release's wrapper that the reference pipeline takes as they are; the others
# it accepts are listed in `Tempo.__init__`.
_IGNORED = {"use_cache", "use_flash_attention_2", "device_map", "conv_version", "max_batch_size"}


def manifest() -> ModelManifest:
    """The entry point lmms-eval loads: the model id and where its class lives.

    lmms-eval (0.7.3) calls it while `lmms_eval.models` initialises its registry; `lmms-eval models` lists
    the table of simple models that module holds, which entry points do not reach, so Tempo enters it
    too (as the legacy LMMS_EVAL_PLUGINS route enters its models: id → class path)."""
    class_path = f"{__name__}.Tempo"
    simple_models = getattr(sys.modules.get("lmms_eval.models"), "AVAILABLE_SIMPLE_MODELS", None)
    if isinstance(simple_models, dict):
        simple_models.setdefault(MODEL_ID, class_path)
    return ModelManifest(model_id=MODEL_ID, simple_class_path=class_path)


class Tempo(lmms):
    """The reference method (every segment compressed for the question) behind lmms-eval's API."""

    def __init__(
        self,
        pretrained: str | None = None,
        device: str | None = None,
        batch_size: int | str = 1,
        video_fps: float = 2.0,
        frame_windows: int = 8,
        model_max_length: int = 32768,
        inference_max_length: int = 16,
        visual_token_budget: int = 8192,
        min_frames_num: int = 4,
        max_frames_num: int = 1024,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        from tempo.eval.harness import ReferencePipeline
        from tempo.models import TempoInferenceConfig
        from tempo.settings import AskSettings

        unused = sorted(set(kwargs) - _IGNORED)
        if unused:
            log.warning("tempo: model arguments not used by this implementation: %s", ", ".join(unused))
        if int(batch_size) != 1:
            raise ValueError("the tempo model answers one request at a time: use --batch_size 1")
        config = TempoInferenceConfig(fps=float(video_fps), window=int(frame_windows),
                                      context_limit=int(model_max_length))
        settings = AskSettings(max_new_tokens=int(inference_max_length), budget=int(visual_token_budget))
        self.pipeline = ReferencePipeline(pretrained, config, settings,
                                          device=None if device in (None, "") else str(device),
                                          min_frames=int(min_frames_num), max_frames=int(max_frames_num))
        self.inference_max_length = int(inference_max_length)
        self.task_dict: dict[str, Any] = getattr(self, "task_dict", {})

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        raise NotImplementedError("the tempo model generates answers; log-likelihood tasks are not supported")

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        raise NotImplementedError("the tempo model answers single questions; multi-round tasks are not supported")

    def generate_until(self, requests: list[Instance]) -> list[str]:
        answers = []
        for request in tqdm(requests, desc="Model Responding", disable=self.rank != 0):
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            answers.append(self._answer(context, dict(gen_kwargs or {}), doc_to_visual, doc_id, task, split))
        return answers

    def _answer(self, context: str, gen_kwargs: dict[str, Any], doc_to_visual: Any, doc_id: int, task: str,
                split: str) -> str:
        visual = doc_to_visual(self.task_dict[task][split][doc_id])
        if isinstance(visual, list):
            visual = visual[0] if visual else None
        if not isinstance(visual, str) or not os.path.isfile(visual):
            log.warning("tempo: no readable video for %s doc %s; answering with an empty string", task, doc_id)
            return ""  # as the release's wrapper does
        result = self.pipeline.ask(
            visual, release_question(context),
            max_new_tokens=int(gen_kwargs.get("max_new_tokens", self.inference_max_length)),
        )
        answer = result["answer"].strip()
        until = gen_kwargs.get("until") or []
        for term in [until] if isinstance(until, str) else until:
            if term and term != "\n\n":  # the release drops "\n\n" from the stop strings
                answer = answer.split(term)[0]
        return answer.strip()
