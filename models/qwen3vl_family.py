"""The open-weights family (DESIGN §4): Tempo's zero-shot router and ATA in front of any Qwen3-VL.

`Qwen3VLFamily.load(DIR, router=None)` loads a Qwen3-VL checkpoint directory (config.json
`model_type` "qwen3_vl": Qwen/Qwen3-VL-*-Instruct or any directory in that layout) with transformers'
Auto classes, plus its tokenizer, chat template and video-processor configuration:

- router: `score_segments` / `compress_with_rules` give each segment's relevance to each query,
  sigmoid(h · (w_Yes − w_No)) at the last prompt position, with the Tempo compressor's prompt and the
  same batched scoring code (`TempoCompressor` with no memory tokens, so monitoring rules ride on the
  same forward); the router is the answerer itself unless `router` names another Qwen3-VL (a 2B);
- answerer: `answer_clips(question, clips)` — the kept segments as videos in time order, each rendered
  at its rendition (tempo.models.renditions) and written with Qwen3-VL's own timestamp text (every
  temporal patch after its `<t seconds>` tag, the times being stream times; `<cam2 t seconds>` when
  the clip names its stream in a cross-stream ask), each clip's words (`texts=`: subtitles, transcript)
  after its first timestamp, through the chat template, generated with `generate` and a streamer.

This family keeps no memory tokens: a segment's visual input is its frames, so `compress` returns
relevance and an empty (n, 0, D) memory; the unit of `tokens` is Qwen3-VL visual tokens.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tempo.errors import QuestionTooLongError
from tempo.models.answer import AnswerStreamer, GenerationDefaults, collect_answer, streamed_answer
from tempo.models.checkpoint import CheckpointError, resolve_model_dir
from tempo.models.compressor import TempoCompressor, build_compressor_inputs, relevance_scores
from tempo.models.config import CONTEXT_MARGIN, LLM_SYSTEM_PROMPT, TempoInferenceConfig
from tempo.models.device import attention_implementation, device_map_for, pick_device, pick_dtype
from tempo.models.processor import SegmentVideoProcessor, VideoProcessorConfig
from tempo.models.renditions import (
    ImagePricing,
    RenderedClip,
    Rendition,
    clip_inputs,
    rendition_cost,
    rendition_ladder,
)
from tempo.models.tempo_family import load_relevance_head, segment_centre_time
from tempo.models.text import VIDEO_PLACEHOLDER, TextTokenizer, plain_text, render_chat
from tempo.streaming.segment import Segment
from transformers import GenerationConfig

FAMILY = "qwen3-vl"
TOKENS_UNIT = "qwen3-vl visual tokens"
IMAGE_TOKENS_UNIT = "qwen3-vl image tokens"  # a remote answerer: frames sent as images, wrappers included
QWEN3VL_MODEL_TYPES = ("qwen3_vl", "qwen3_vl_moe")


@functools.lru_cache(maxsize=8)
def _checkpoint_pricing(directory: Path) -> ImagePricing:
    return ImagePricing.from_dir(directory)


def checkpoint_family(directory: str | Path) -> str:
    """ "qwen3-vl" when `directory`'s config.json says model_type qwen3_vl (or its MoE), else "tempo"."""
    path = Path(directory) / "config.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return "tempo"  # the Tempo loader gives the one-sentence error for a broken directory
    return FAMILY if isinstance(raw, dict) and raw.get("model_type") in QWEN3VL_MODEL_TYPES else "tempo"


class _Router:
    """A Qwen3-VL read as a zero-shot relevance scorer: its tokenizer, processor, and w_Yes − w_No."""

    def __init__(self, network: Any, directory: Path, device: torch.device, dtype: torch.dtype) -> None:
        self.tokenizer = TextTokenizer.from_dir(directory)
        self.processor = _processor(directory)
        head = load_relevance_head(directory, self.tokenizer, network.config)
        self.direction = head.direction.to(device)
        self.scorer = TempoCompressor.around(network.model, network.config, num_tokens=0)
        self.dtype = dtype
        self.device = device


def _processor(directory: Path) -> SegmentVideoProcessor:
    try:
        return SegmentVideoProcessor(VideoProcessorConfig.from_dir(directory))
    except FileNotFoundError as exc:
        raise CheckpointError(f"{exc}; a Qwen3-VL checkpoint ships its processor configuration.") from exc


def _load_network(directory: Path, device: torch.device, dtype: torch.dtype) -> Any:
    from transformers import AutoModelForImageTextToText

    try:
        network = AutoModelForImageTextToText.from_pretrained(
            directory,
            dtype=dtype,
            device_map=device_map_for(device),
            attn_implementation=attention_implementation(device),
        )
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(
            f"{directory} is not a loadable Qwen3-VL checkpoint ({str(exc).splitlines()[0]})."
        ) from exc
    return network.to(device).eval()


class Qwen3VLFamily:
    """A loaded Qwen3-VL answerer (and router); satisfies `ModelFamily`. Build with `load`."""

    family = FAMILY

    def __init__(
        self,
        network: Any,
        *,
        model_dir: Path,
        router: _Router,
        config: TempoInferenceConfig,
        device: torch.device,
        dtype: torch.dtype,
        router_dir: Path,
    ) -> None:
        self.network = network
        self.model_dir = model_dir
        self.router_dir = router_dir
        self.router = router
        self.config = config
        self.device = device
        self.dtype = dtype
        self.tokenizer = TextTokenizer.from_dir(model_dir)
        self.processor = _processor(model_dir)
        if self.tokenizer.chat_template is None:
            raise CheckpointError(f"{model_dir} ships no chat template (chat_template.jinja or chat_template.json).")
        self.generation = GenerationDefaults.from_dirs(model_dir, network.config.text_config, self.tokenizer)
        # Set to a `tempo.models.remote_answer.RemoteAnswerer` to answer on an OpenAI-compatible server.
        self.remote: Any = None

    @classmethod
    def load(
        cls,
        path_or_id: str | Path,
        *,
        router: str | Path | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        config: TempoInferenceConfig | None = None,
    ) -> Qwen3VLFamily:
        """Load the answerer at `path_or_id` and the router at `router` (None: the answerer itself)."""
        config = config or TempoInferenceConfig()
        dev = pick_device(device if device is not None else config.device)
        dt = pick_dtype(dtype if dtype is not None else config.dtype, dev)
        model_dir = resolve_model_dir(path_or_id)
        for d in (model_dir, *([resolve_model_dir(router)] if router is not None else [])):
            if checkpoint_family(d) != FAMILY:
                raise CheckpointError(f"{d} is not a Qwen3-VL checkpoint (its config.json model_type is not qwen3_vl).")
        network = _load_network(model_dir, dev, dt)
        router_dir = resolve_model_dir(router) if router is not None else model_dir
        router_net = network if router_dir == model_dir else _load_network(router_dir, dev, dt)
        return cls(
            network,
            model_dir=model_dir,
            router=_Router(router_net, router_dir, dev, dt),
            config=config,
            device=dev,
            dtype=dt,
            router_dir=router_dir,
        )

    # ------------------------------------------------------------------ sizes and times
    @property
    def num_memory_tokens(self) -> int:
        """Nominal M: the visual tokens of a full window at the reference 512 × 256 frame size. The real
        full cost depends on the video's frame size (`full_cost`); ATA gets that one."""
        return rendition_cost(self.config.window, 256, 512, factor=self.factor)

    @property
    def image_pricing(self) -> ImagePricing | None:
        """How the answerer pays for a rendition: None as a video (the local answerer); with `remote`
        set, as separate images the server's processor resizes (read from this checkpoint's
        preprocessor_config.json: the served Qwen3-VL is assumed to share its processor)."""
        if self.remote is None:
            return None
        return getattr(self.remote, "pricing", None) or _checkpoint_pricing(self.model_dir)

    @property
    def tokens_unit(self) -> str:
        """The unit of `tokens` and of the budget: Qwen3-VL visual tokens, or image tokens when remote."""
        return TOKENS_UNIT if self.remote is None else IMAGE_TOKENS_UNIT

    def rendition_ladder(self, frames: np.ndarray) -> list[Rendition]:
        """The renditions of a segment whose full-rendition frames are `frames` (T, H, W, 3), priced in
        what this answerer pays (`image_pricing`)."""
        return self.ladder(frames.shape[0], frames.shape[1], frames.shape[2])

    def ladder(self, count: int, height: int, width: int) -> list[Rendition]:
        """The renditions of a segment of `count` frames whose full rendition is height × width px (no
        frames needed: planning prices stored segments from their sizes), priced as `rendition_ladder`."""
        return rendition_ladder(count, height, width, factor=self.factor, images=self.image_pricing)

    @property
    def memory_dim(self) -> int:
        return int(self.network.config.text_config.hidden_size)

    @property
    def factor(self) -> int:
        """Pixels per merged token side: patch size × spatial merge (32 for Qwen3-VL)."""
        c = self.processor.config
        return c.patch_size * c.merge_size

    def centre_time(self, segment: Segment) -> float:
        return segment_centre_time(segment, self.config.window)

    # ------------------------------------------------------------------ router
    def score_segments(
        self, segments: Sequence[Segment], queries: Sequence[str], *, batch_size: int | None = None
    ) -> np.ndarray:
        queries = list(queries)
        if not queries:
            return np.zeros((len(segments), 0), dtype=np.float32)
        scores, _, others = self.compress_with_rules(segments, queries[0], queries[1:], batch_size=batch_size)
        return np.concatenate([scores[:, None], others], axis=1)

    def compress(
        self, segments: Sequence[Segment], query: str, *, batch_size: int | None = None, progress: bool = False
    ) -> tuple[np.ndarray, torch.Tensor]:
        scores, memory, _ = self.compress_with_rules(segments, query, (), batch_size=batch_size)
        return scores, memory

    @torch.inference_mode()
    def compress_with_rules(
        self,
        segments: Sequence[Segment],
        query: str,
        rules: Sequence[str],
        *,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> tuple[np.ndarray, torch.Tensor, np.ndarray]:
        """Router scores (n,) for `query`, an empty memory (n, 0, D), rule scores (n, R): one forward
        per batch, the rules riding on its cache (`TempoCompressor.score_queries`)."""
        from transformers import DynamicCache

        segments, rules = list(segments), list(rules)
        n, r = len(segments), self.router
        scores = np.zeros(n, dtype=np.float32)
        rule_scores = np.zeros((n, len(rules)), dtype=np.float32)
        bs = max(1, int(batch_size or self.config.compress_batch_size))
        for lo in range(0, n, bs):
            inputs = build_compressor_inputs(
                segments[lo : lo + bs],
                query,
                processor=r.processor,
                tokenizer=r.tokenizer,
                num_memory_tokens=0,
                extra_queries=rules,
            )
            cache = DynamicCache() if rules else None
            h, _ = r.scorer(
                inputs.input_ids.to(r.device),
                inputs.valid_lengths.to(r.device),
                r.processor.normalize(inputs.pixel_values.to(r.device)).to(r.dtype),
                inputs.grid_thw.to(r.device),
                cache=cache,
            )
            count = int(inputs.valid_lengths.shape[0])
            scores[lo : lo + count] = relevance_scores(h, r.direction).cpu().numpy()
            if cache is not None:
                hr = r.scorer.score_queries(cache, inputs)
                flat = relevance_scores(hr.reshape(-1, hr.shape[-1]), r.direction)
                rule_scores[lo : lo + count] = flat.view(count, len(rules)).cpu().numpy()
        return scores, torch.zeros(n, 0, self.memory_dim), rule_scores

    # ------------------------------------------------------------------ answerer
    def _chat(self, question: str, videos: int) -> str:
        content: list[dict[str, Any]] = [{"type": "video", "video": f"segment {i}"} for i in range(videos)]
        content.append({"type": "text", "text": plain_text(question)})
        messages = [
            {"role": "system", "content": [{"type": "text", "text": LLM_SYSTEM_PROMPT}]},
            {"role": "user", "content": content},
        ]
        return render_chat(self.tokenizer.chat_template or "", messages, add_generation_prompt=True)

    def check_question_fits(self, question: str) -> int:
        """Tokens of the answerer's context left for video once `question` is in the prompt."""
        room = self.config.context_limit - len(self.tokenizer.encode(self._chat(question, 0))) - CONTEXT_MARGIN
        if room < 8:
            raise QuestionTooLongError(self.config.context_limit)
        return room

    def count_text_tokens(self, text: str) -> int:
        """Tokens `text` takes in the answerer's prompt (the cue words' cap is counted with it)."""
        return len(self.tokenizer.encode(text))

    def build_inputs(
        self, question: str, clips: Sequence[RenderedClip], texts: Sequence[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """The answerer's inputs for `clips` in time order: input_ids, attention_mask, mm_token_type_ids,
        pixel_values_videos (normalised), video_grid_thw. `texts[i]`: clip i's words (subtitles,
        transcript; may be empty), written after its first time tag."""
        parts = self._chat(question, len(clips)).split(VIDEO_PLACEHOLDER)
        if len(parts) != len(clips) + 1:
            raise CheckpointError(f"the chat template of {self.model_dir} writes no {VIDEO_PLACEHOLDER} per video.")
        words = list(texts) if texts is not None else [""] * len(clips)
        if len(words) != len(clips):
            raise ValueError(f"{len(words)} segment texts for {len(clips)} clips")
        patches, grids, pieces = [], [], [parts[0]]
        for clip, after, text in zip(clips, parts[1:], words, strict=True):
            pix, grid, prompt = clip_inputs(self.processor, clip, text)
            pieces += [prompt, after]  # the template's placeholder becomes the clip's tags and vision tokens
            patches.append(pix)
            grids.append(grid)
        ids = torch.tensor([self.tokenizer.encode("".join(pieces))], dtype=torch.long)
        video_id = int(self.network.config.video_token_id)
        out: dict[str, torch.Tensor] = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "mm_token_type_ids": (ids == video_id).int() * 2,
        }
        if clips:
            out["pixel_values_videos"] = self.processor.normalize(torch.cat(patches)).to(self.dtype)
            out["video_grid_thw"] = torch.tensor(grids, dtype=torch.long)
        return out

    def answer_clips(
        self,
        question: str,
        clips: Sequence[RenderedClip],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        on_text: Callable[[str], None] | None = None,
        texts: Sequence[str] | None = None,
    ) -> str:
        """The answer from the kept segments' rendered clips (time order); `on_text` gets it as generated.
        `texts[i]`: clip i's words, after its first time tag. With `remote` set, the server answers from
        the same frames, time tags and words."""
        if self.remote is not None:
            sampling = {"max_new_tokens": max_new_tokens, "temperature": temperature}
            return str(self.remote.answer_clips(question, clips, on_text=on_text, texts=texts, **sampling))
        inputs = self.build_inputs(question, clips, texts)
        return collect_answer(lambda result: self._pieces(inputs, max_new_tokens, temperature, result), on_text)

    def answer(
        self,
        question: str,
        memory: Sequence[tuple[float, torch.Tensor]],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        on_text: Callable[[str], None] | None = None,
        texts: Sequence[str] | None = None,
    ) -> str:
        """Memory tokens mean nothing to this family: with none kept, the answer from the question alone."""
        if any(int(t.shape[0]) for _, t in memory) or any(texts or ()):
            raise ValueError("a Qwen3-VL answerer reads renditions and their words (answer_clips), not memory tokens")
        return self.answer_clips(question, [], max_new_tokens=max_new_tokens, temperature=temperature, on_text=on_text)

    def generate_text(self, prompt: str, *, max_new_tokens: int) -> str:
        ids = torch.tensor([self.tokenizer.encode(prompt)], dtype=torch.long)
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "mm_token_type_ids": torch.zeros_like(ids)}
        return collect_answer(lambda result: self._pieces(inputs, max_new_tokens, 0.0, result), None)

    def _generation_config(self, max_new_tokens: int, temperature: float) -> GenerationConfig:
        stop = list(self.generation.stop_ids)
        sampled = temperature > 0
        return GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=sampled,
            temperature=temperature if sampled else None,
            top_k=0 if sampled else None,
            top_p=1.0 if sampled else None,
            eos_token_id=stop,
            pad_token_id=stop[0],
        )

    def _pieces(
        self, inputs: dict[str, torch.Tensor], max_new_tokens: int, temperature: float, result: list[str]
    ) -> Iterator[str]:
        """Yield answer text as `generate` produces it (in a thread, through a streamer); append the
        stripped full answer to `result`."""
        length = int(inputs["input_ids"].shape[1])
        if length + CONTEXT_MARGIN > self.config.context_limit:
            raise QuestionTooLongError(self.config.context_limit)
        if max_new_tokens <= 0:
            result.append("")
            return
        if temperature > 0:
            torch.manual_seed(0)

        def generate(streamer: AnswerStreamer) -> list[int]:
            with torch.inference_mode():
                return self.network.generate(
                    **{k: v.to(self.device) for k, v in inputs.items()},
                    generation_config=self._generation_config(max_new_tokens, temperature),
                    streamer=streamer,
                )[0, length:].tolist()

        yield from streamed_answer(self.tokenizer, generate, result, stop_ids=self.generation.stop_ids)


def load_model_family(
    path_or_id: str | Path,
    *,
    device: str | torch.device | None = None,
    config: TempoInferenceConfig | None = None,
    router: str | Path | None = None,
) -> Any:
    """The family the checkpoint at `path_or_id` belongs to, loaded: a `Qwen3VLFamily` when its
    config.json says qwen3_vl, else a `TempoModel`. `router` (a Qwen3-VL directory) is for the open
    family only."""
    model_dir = resolve_model_dir(path_or_id)
    if checkpoint_family(model_dir) == FAMILY:
        return Qwen3VLFamily.load(model_dir, router=router, device=device, config=config)
    if router is not None:
        raise CheckpointError(f"--router is for Qwen3-VL answerers; {model_dir} is a Tempo checkpoint.")
    from tempo.models.tempo_family import TempoModel

    return TempoModel.load(model_dir, device=device, config=config)
