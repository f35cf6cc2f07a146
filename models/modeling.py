"""The Tempo model: SVLM compressor + relevance head → ATA → projector + time tags → global Qwen3 LLM.

`TempoNetwork` holds the weights under exactly the released key names; `TempoModel` adds what a
checkpoint directory carries besides weights (tokenizers, processor, the base SVLM's Yes/No rows)
and offers the two steps the rest of Tempo calls:

- `compress(segments, query)` → relevance scores (n,) and memory tokens (n, M, D);
- `answer(question, memory)` → text, from (centre time, kept memory tokens) pairs in timeline
  order, however they were obtained (fresh query-aware pass or tokens stored in Redis).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from tempo.errors import DeviceUnavailableError, QuestionTooLongError
from tempo.models.checkpoint import (
    CONFIG_FILE,
    CheckpointError,
    check_and_load_state,
    copy_aux_files,
    load_rows,
    load_weights,
    looks_like_hub_id,
    read_checkpoint_config,
    read_json,
    resolve_base_svlm,
    resolve_model_dir,
    save_weights,
)
from tempo.models.compressor import (
    CompressorInputs,
    TempoCompressor,
    build_compressor_inputs,
    relevance_scores,
    sample_clock,
)
from tempo.models.config import (
    CONTEXT_MARGIN,
    PROJECTOR_TYPE,
    TempoCheckpointConfig,
    TempoInferenceConfig,
)
from tempo.models.processor import SegmentVideoProcessor, VideoProcessorConfig
from tempo.models.text import IM_END, TextTokenizer, llm_prompt_parts, time_tag
from tempo.streaming.segment import Segment
from torch import nn
from tqdm import tqdm
from transformers import Qwen3Config, Qwen3Model, Qwen3VLConfig
from transformers.cache_utils import DynamicCache

log = logging.getLogger(__name__)

COMPRESSOR_PREFIX = "model.vision_tower_aux_list.0."


def _no_init() -> contextlib.AbstractContextManager[None]:
    """Skip random initialisation when weights are loaded right after (saves seconds on big models)."""
    try:
        from transformers.initialization import no_init_weights  # transformers ≥ 5

        return no_init_weights()
    except ImportError:  # pragma: no cover - older layouts
        return contextlib.nullcontext()


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Create new floating tensors in `dtype` inside the block (parameters built in their final dtype)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


class TempoNetwork(nn.Module):
    """All weights, named as in the released checkpoint (DESIGN §2).

    model.embed_tokens / layers / norm and lm_head: the global Qwen3 LM;
    model.vision_tower_aux_list.0: the compressor (Qwen3-VL without LM head + compression_tokens);
    model.mm_projector.0 / .2: Linear(D → H), GELU, Linear(H → H).
    """

    def __init__(self, config: TempoCheckpointConfig, svlm_config: Qwen3VLConfig) -> None:
        super().__init__()
        if config.mm_projector_type != PROJECTOR_TYPE:
            raise CheckpointError(
                f"mm_projector_type {config.mm_projector_type!r} is not supported (only {PROJECTOR_TYPE!r})."
            )
        self.llm_config = Qwen3Config.from_dict({k: v for k, v in config.llm.items() if k != "model_type"})
        # The release forces `rope_scaling = None` on the global LLM (TempoQwenForCausalLM.__init__): plain
        # RoPE with the config's base, whatever scaling the config names.
        theta = (self.llm_config.rope_parameters or {}).get("rope_theta", getattr(self.llm_config, "rope_theta", None))
        self.llm_config.rope_parameters = {"rope_type": "default", "rope_theta": theta}
        self.llm_config._attn_implementation = svlm_config._attn_implementation
        hidden = self.llm_config.hidden_size
        svlm_hidden = svlm_config.text_config.hidden_size
        if config.mm_hidden_size != svlm_hidden:
            raise CheckpointError(
                f"config.json says mm_hidden_size={config.mm_hidden_size} "
                f"but the base SVLM's hidden size is {svlm_hidden}."
            )
        self.model = Qwen3Model(self.llm_config)
        self.model.vision_tower_aux_list = nn.ModuleList([TempoCompressor(svlm_config, config.num_compression_tokens)])
        self.model.mm_projector = nn.Sequential(nn.Linear(svlm_hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.lm_head = nn.Linear(hidden, self.llm_config.vocab_size, bias=False)
        if self.llm_config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    @property
    def compressor(self) -> TempoCompressor:
        return self.model.vision_tower_aux_list[0]

    def project(self, memory: torch.Tensor) -> torch.Tensor:
        """(k, D) memory tokens → (k, H) LLM input embeddings."""
        return self.model.mm_projector(memory)


@dataclass
class RelevanceHead:
    """w_Yes − w_No from the base Qwen3-VL LM head (or its tied input embeddings)."""

    yes_id: int
    no_id: int
    direction: torch.Tensor  # (D,) float32


def pick_device(device: str | torch.device | None) -> torch.device:
    """`device`, else cuda when available, else cpu; DeviceUnavailableError for one this machine lacks."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceUnavailableError(f"{str(device)!r} is not a torch device (use cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cpu":
        return dev
    backend = {"cuda": torch.cuda, "xpu": getattr(torch, "xpu", None), "mps": torch.backends.mps}.get(dev.type)
    count = 0
    if backend is not None and backend.is_available():
        count = backend.device_count() if hasattr(backend, "device_count") else 1
    if count == 0:
        raise DeviceUnavailableError(f"device {str(device)!r} is not available: this machine has no {dev.type} device")
    if dev.index is not None and dev.index >= count:
        raise DeviceUnavailableError(
            f"device {str(device)!r} is not available: this machine has {count} {dev.type} device(s), "
            f"{dev.type}:0 to {dev.type}:{count - 1}"
        )
    return dev


def pick_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    except KeyError:
        raise ValueError(f"dtype must be float32, bfloat16 or float16, not {dtype!r}") from None


def attention_implementation(device: torch.device) -> str:
    if device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


T = TypeVar("T", float, np.ndarray)


def centre_time(start: T, window: int, fps: float) -> T:
    """Time tag t of a segment (seconds; a float or an array): the time of its first sample plus half
    a nominal window. The one centre-time rule (the model's time tags, recall's plans)."""
    return start + window / (2.0 * fps)


def segment_centre_time(segment: Segment, window: int) -> float:
    """Time tag t of a segment: its first sample's time plus half a nominal window.

    Release sampling gives the release's (8i + 4) / real_fps exactly (`sample_clock`); stream sampling
    counts from the first frame's real time, so a live stream's tags stay true after a gap.
    """
    return centre_time(sample_clock(segment), window, segment.sample_fps)


class TempoModel:
    """A loaded Tempo checkpoint. Build it with `TempoModel.from_pretrained(path_or_id)`."""

    def __init__(
        self,
        network: TempoNetwork,
        *,
        checkpoint_config: TempoCheckpointConfig,
        tokenizer: TextTokenizer,
        svlm_tokenizer: TextTokenizer,
        processor: SegmentVideoProcessor,
        relevance: RelevanceHead,
        model_dir: Path,
        base_dir: Path,
        config: TempoInferenceConfig,
        device: torch.device,
        dtype: torch.dtype,
        generation: GenerationDefaults | None = None,
    ) -> None:
        self.network = network
        self.checkpoint_config = checkpoint_config
        self.tokenizer = tokenizer
        self.svlm_tokenizer = svlm_tokenizer
        self.processor = processor
        self.relevance = relevance
        self.model_dir = model_dir
        self.base_dir = base_dir
        self.config = config
        self.device = device
        self.dtype = dtype
        self._yes_minus_no = relevance.direction.to(device)
        self.generation = generation or GenerationDefaults((tokenizer.token_id(IM_END),))

    # ------------------------------------------------------------------ loading / saving
    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | Path,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        config: TempoInferenceConfig | None = None,
    ) -> TempoModel:
        """Load a checkpoint in the released layout from a directory (or a hub id already on disk)."""
        config = config or TempoInferenceConfig()
        dev = pick_device(device if device is not None else config.device)
        dt = pick_dtype(dtype if dtype is not None else config.dtype, dev)
        model_dir = resolve_model_dir(path_or_id)
        ckpt = read_checkpoint_config(model_dir)
        base_dir = resolve_base_svlm(ckpt.base_svlm, model_dir)
        try:
            svlm_config = Qwen3VLConfig.from_dict(read_json(base_dir / CONFIG_FILE, "base SVLM"))
        except (TypeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{base_dir / CONFIG_FILE} is not a Qwen3-VL config ({exc}).") from exc
        attn = attention_implementation(dev)
        svlm_config._attn_implementation = attn
        svlm_config.text_config._attn_implementation = attn
        svlm_config.vision_config._attn_implementation = attn

        # Parameters are created directly on the device in the target dtype; rotary `inv_freq` buffers stay
        # float32 as transformers computes them (a later `.to(dtype)` would round them to bfloat16).
        with _no_init(), torch.device(dev), default_dtype(dt):
            network = TempoNetwork(ckpt, svlm_config)
        state = load_weights(model_dir)
        for key in state:  # one tensor at a time, so the file's copy is freed as each is replaced
            state[key] = release_weight_values(state[key])
        if (
            network.llm_config.tie_word_embeddings
            and "lm_head.weight" not in state
            and "model.embed_tokens.weight" in state
        ):
            state["lm_head.weight"] = state["model.embed_tokens.weight"]
        check_and_load_state(network, state, model_dir)
        del state
        if dt == torch.bfloat16:
            round_buffers_as_released(network)
        network.eval()

        tokenizer = TextTokenizer.from_dir(model_dir)
        svlm_tokenizer = TextTokenizer.from_dir(base_dir)
        processor_dir = model_dir if has_processor_config(model_dir) else base_dir
        try:
            processor = SegmentVideoProcessor(VideoProcessorConfig.from_dir(processor_dir))
        except FileNotFoundError as exc:
            raise CheckpointError(f"{exc}; the Qwen3-VL processor configuration is required.") from exc
        relevance = load_relevance_head(base_dir, svlm_tokenizer, svlm_config)
        generation = GenerationDefaults.from_dirs(model_dir, network.llm_config, tokenizer)
        return cls(
            network,
            checkpoint_config=ckpt,
            tokenizer=tokenizer,
            svlm_tokenizer=svlm_tokenizer,
            processor=processor,
            relevance=relevance,
            model_dir=model_dir,
            base_dir=base_dir,
            config=config,
            device=dev,
            dtype=dt,
            generation=generation,
        )

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write config.json, safetensors weights and the tokenizer/processor files in the released layout."""
        ckpt = self.checkpoint_config
        if not (looks_like_hub_id(ckpt.base_svlm) and not Path(ckpt.base_svlm).exists()):
            # A base SVLM given as a directory is written as an absolute path so the copy still finds it.
            ckpt = dataclasses.replace(ckpt, base_svlm=str(self.base_dir))
        return write_checkpoint(self.network, ckpt, directory, aux_source=self.model_dir)

    # ------------------------------------------------------------------ properties
    @property
    def num_memory_tokens(self) -> int:
        """M: memory tokens per segment."""
        return self.network.compressor.num_tokens

    @property
    def memory_dim(self) -> int:
        """D: width of a memory token (the SVLM hidden size)."""
        return int(self.network.compressor.compression_tokens.shape[-1])

    def centre_time(self, segment: Segment) -> float:
        return segment_centre_time(segment, self.config.window)

    # ------------------------------------------------------------------ compressor
    def compress(
        self,
        segments: Sequence[Segment],
        query: str,
        *,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> tuple[np.ndarray, torch.Tensor]:
        """Query-aware SVLM pass over segments.

        Returns (scores (n,) float32 in [0, 1], memory tokens (n, M, D) float32 on CPU).
        """
        scores, memory, _ = self.compress_with_rules(segments, query, (), batch_size=batch_size, progress=progress)
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
        """The `query` pass over segments plus the relevance of each segment to each of `rules` (monitoring).

        The rules ride on the same forward: the vision tower and the prompt up to the query run once
        per segment (`TempoCompressor.score_queries`). Returns (scores (n,) float32, memory tokens
        (n, M, D) float32 on CPU, rule scores (n, R) float32 in [0, 1]).
        """
        segments = list(segments)
        rules = list(rules)
        n = len(segments)
        m, d = self.num_memory_tokens, self.memory_dim
        if n == 0:
            return np.zeros(0, dtype=np.float32), torch.zeros(0, m, d), np.zeros((0, len(rules)), np.float32)
        bs = max(1, int(batch_size or self.config.compress_batch_size))
        scores = np.zeros(n, dtype=np.float32)
        rule_scores = np.zeros((n, len(rules)), dtype=np.float32)
        memory = torch.empty(n, m, d, dtype=torch.float32)
        bar = tqdm(total=n, desc="compress", unit="seg", disable=not progress, leave=False)

        def prepare(lo: int) -> CompressorInputs:
            return build_compressor_inputs(
                segments[lo : lo + bs],
                query,
                processor=self.processor,
                tokenizer=self.svlm_tokenizer,
                num_memory_tokens=m,
                extra_queries=rules,
            )

        starts = list(range(0, n, bs))
        # On an accelerator the CPU side of batch i+1 (resize, patchify, tokenise) overlaps the forward
        # pass of batch i; on CPU both would compete for the same cores, so by default it stays sequential.
        prefetch = self.config.prefetch if self.config.prefetch is not None else self.device.type != "cpu"
        compressor = self.network.compressor
        with ThreadPoolExecutor(max_workers=1) if prefetch else contextlib.nullcontext() as pool:
            pending = pool.submit(prepare, starts[0]) if pool else None
            for i, lo in enumerate(starts):
                inputs = pending.result() if pending else prepare(lo)
                if pool and i + 1 < len(starts):
                    pending = pool.submit(prepare, starts[i + 1])
                cache = DynamicCache() if rules else None
                h_answer, mem = compressor(
                    inputs.input_ids.to(self.device),
                    inputs.valid_lengths.to(self.device),
                    self.processor.normalize(inputs.pixel_values.to(self.device)).to(self.dtype),
                    inputs.grid_thw.to(self.device),
                    cache=cache,
                )
                count = int(inputs.valid_lengths.shape[0])
                scores[lo : lo + count] = relevance_scores(h_answer, self._yes_minus_no).cpu().numpy()
                memory[lo : lo + count] = mem.float().cpu()
                if cache is not None:
                    h_rules = compressor.score_queries(cache, inputs)  # (count, R, D)
                    flat = relevance_scores(h_rules.reshape(-1, h_rules.shape[-1]), self._yes_minus_no)
                    rule_scores[lo : lo + count] = flat.view(count, len(rules)).cpu().numpy()
                    del cache
                bar.update(count)
        bar.close()
        return scores, memory, rule_scores

    # ------------------------------------------------------------------ global LLM
    def _embed_ids(self, ids: list[int]) -> torch.Tensor:
        return self.network.model.embed_tokens(torch.tensor(ids, dtype=torch.long, device=self.device))

    def check_question_fits(self, question: str) -> int:
        """Tokens of the LLM context left for video once `question` is in the prompt.

        Raises QuestionTooLongError when not even one segment (its time tag and one memory token)
        would fit. Entry points call it before the expensive SVLM passes; the prompt builder applies
        the same rule, so no path answers from a question with the video cut to nothing.
        """
        before, after = llm_prompt_parts(question)
        return self._visual_room(len(self.tokenizer.encode(before)) + len(self.tokenizer.encode(after)))

    def _visual_room(self, text_tokens: int) -> int:
        room = self.config.context_limit - text_tokens - CONTEXT_MARGIN
        one_segment = len(self.tokenizer.encode(time_tag(0.0))) + 1
        if room < one_segment:
            raise QuestionTooLongError(self.config.context_limit)
        return room

    def build_answer_embeddings(
        self, question: str, memory: Sequence[tuple[float, torch.Tensor]]
    ) -> tuple[torch.Tensor, AnswerStats]:
        """The prompt as LLM input embeddings (1, L, H): ChatML text with `<image>` replaced by
        [time tag + projected kept tokens] per segment, the visual part cut at the end to fit the context."""
        before, after = llm_prompt_parts(question)
        ids_before = self.tokenizer.encode(before)
        ids_after = self.tokenizer.encode(after)
        room = self._visual_room(len(ids_before) + len(ids_after))
        for _, tokens in memory:
            if tokens.ndim != 2 or tokens.shape[-1] != self.memory_dim:
                raise ValueError(f"memory tokens must be (k, {self.memory_dim}), got {tuple(tokens.shape)}")
        # One embedding lookup for all time tags and one projector call for all kept tokens (a long
        # timeline has thousands of segments), then interleaved: [tag_1, tokens_1, tag_2, tokens_2, ...].
        tag_ids = [self.tokenizer.encode(time_tag(centre)) for centre, _ in memory]
        sizes = [int(tokens.shape[0]) for _, tokens in memory]
        memory_tokens = sum(sizes)
        pieces: list[torch.Tensor] = []
        if memory:
            tags = self._embed_ids([i for ids in tag_ids for i in ids]).split([len(ids) for ids in tag_ids])
            kept = torch.cat([tokens.to(self.device, self.dtype) for _, tokens in memory])  # (Σk, D)
            projected = self.network.project(kept).split(sizes)  # Σk × H, per segment
            for tag, proj in zip(tags, projected, strict=True):
                pieces += [tag, proj]
        hidden = self.network.llm_config.hidden_size
        visual = torch.cat(pieces, dim=0) if pieces else torch.zeros(0, hidden, device=self.device, dtype=self.dtype)
        cut = max(0, visual.shape[0] - room)
        if cut:
            log.warning(
                "visual context of %d tokens cut to %d to fit the %d-token limit",
                visual.shape[0],
                room,
                self.config.context_limit,
            )
            visual = visual[:room]
        embeds = torch.cat([self._embed_ids(ids_before), visual, self._embed_ids(ids_after)], dim=0)[None]
        stats = AnswerStats(
            prompt_tokens=int(embeds.shape[1]),
            visual_tokens=int(visual.shape[0]),
            memory_tokens=memory_tokens,
            truncated_tokens=int(cut),
        )
        return embeds, stats

    @torch.inference_mode()
    def generate_ids(
        self,
        embeds: torch.Tensor,
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Iterator[int]:
        """Token ids from (1, L, H) prompt embeddings with a KV cache.

        Stops at the checkpoint's end-of-sequence ids (generation_config.json, else config.json) or
        `<|im_end|>`, the release's stop string; greedy unless temperature > 0.
        """
        stop = set(self.generation.stop_ids)
        gen = None
        if temperature > 0:
            gen = torch.Generator(device=self.device)
            gen.manual_seed(0 if seed is None else seed)
        cache = DynamicCache(config=self.network.llm_config)
        out = self.network.model(inputs_embeds=embeds, cache=cache, use_cache=True)
        for _ in range(max_new_tokens):
            logits = self.network.lm_head(out.last_hidden_state[:, -1]).float()  # (1, V)
            if temperature > 0:
                probs = torch.softmax(logits / temperature, dim=-1)
                next_id = int(torch.multinomial(probs, 1, generator=gen).item())
            else:
                next_id = int(logits.argmax(dim=-1).item())
            if next_id in stop:
                return
            yield next_id
            step = self.network.model.embed_tokens(torch.tensor([[next_id]], device=self.device))
            out = self.network.model(inputs_embeds=step, cache=out.cache, use_cache=True)

    def answer(
        self,
        question: str,
        memory: Sequence[tuple[float, torch.Tensor]],
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> str:
        """Answer from per-segment (centre time seconds, kept memory tokens (k_i, D)) in timeline order.

        Needs no compression: the tokens may come from a fresh query-aware pass or from storage.
        `on_text` receives the answer as it is generated, in pieces that concatenate to the result.
        """
        return self.answer_with_stats(
            question, memory, max_new_tokens=max_new_tokens, temperature=temperature, on_text=on_text
        )[0]

    def answer_with_stats(
        self,
        question: str,
        memory: Sequence[tuple[float, torch.Tensor]],
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> tuple[str, AnswerStats]:
        """`answer`, also returning prompt sizes and generation time."""
        t0 = time.perf_counter()
        result: list[tuple[str, AnswerStats]] = []
        for piece in self._answer_pieces(question, memory, max_new_tokens, temperature, result):
            if on_text is not None:
                on_text(piece)
        text, stats = result[0]
        stats.seconds = time.perf_counter() - t0
        return text, stats

    def stream_answer(
        self,
        question: str,
        memory: Sequence[tuple[float, torch.Tensor]],
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Iterator[str]:
        """`answer` as an iterator of text pieces, yielded as they are generated."""
        yield from self._answer_pieces(question, memory, max_new_tokens, temperature, [])

    def _answer_pieces(
        self,
        question: str,
        memory: Sequence[tuple[float, torch.Tensor]],
        max_new_tokens: int | None,
        temperature: float | None,
        result: list[tuple[str, AnswerStats]],
    ) -> Iterator[str]:
        """Yield new text as tokens arrive; append (full text, stats) to `result` at the end."""
        with torch.inference_mode():
            embeds, stats = self.build_answer_embeddings(question, memory)
        ids: list[int] = []
        sent = ""  # the answer is stripped as the release strips it: pieces never carry edge whitespace
        for tid in self.generate_ids(
            embeds,
            max_new_tokens=self.config.max_new_tokens if max_new_tokens is None else max_new_tokens,
            temperature=self.config.temperature if temperature is None else temperature,
        ):
            ids.append(tid)
            text = self.tokenizer.decode(ids).strip()
            # Hold back while a multi-byte character is incomplete (decoding ends in U+FFFD); pieces only
            # ever extend what was already sent.
            if not text.endswith("\ufffd") and len(text) > len(sent) and text.startswith(sent):
                yield text[len(sent) :]
                sent = text
        final = self.tokenizer.decode(ids).strip()
        if len(final) > len(sent) and final.startswith(sent):
            yield final[len(sent) :]
        stats.generated_tokens = len(ids)
        result.append((final, stats))


@dataclass(frozen=True)
class GenerationDefaults:
    """What the checkpoint's generation_config.json says about decoding, as the release's `generate` uses it."""

    stop_ids: tuple[int, ...]  # its eos ids plus <|im_end|> (the release's stop string)

    @classmethod
    def from_dirs(cls, model_dir: Path, llm_config: Qwen3Config, tokenizer: TextTokenizer) -> GenerationDefaults:
        """eos ids from generation_config.json when present, else from config.json (as transformers does)."""
        path = model_dir / "generation_config.json"
        eos = read_json(path, "checkpoint").get("eos_token_id") if path.is_file() else llm_config.eos_token_id
        ids = [eos] if isinstance(eos, int) else list(eos or [])
        im_end = tokenizer.token_id(IM_END)
        return cls(tuple(dict.fromkeys([*(int(i) for i in ids), im_end])))


def release_weight_values(tensor: torch.Tensor) -> torch.Tensor:
    """A weight as the release computes with it: loaded as float16, then cast to bfloat16 (builder.py,
    infer.py). A bfloat16 tensor, whose values a float32 parameter also holds exactly (the CPU path
    computes in float32 with them); integer tensors pass unchanged."""
    if not tensor.is_floating_point():
        return tensor
    return tensor.to(torch.float16).to(torch.bfloat16)


def round_buffers_as_released(network: TempoNetwork) -> None:
    """Floating buffers (rotary frequencies) as the release's casts leave them on a bfloat16 model:
    the SVLM's went through float16 (`vision_tower_aux.to(dtype=float16)`), everything then to bfloat16."""
    compressor_buffers = {id(b) for b in network.compressor.buffers()}
    for module in network.modules():
        for name, buf in list(module.named_buffers(recurse=False)):
            if buf is None or not buf.is_floating_point():
                continue
            value = buf.to(torch.float16) if id(buf) in compressor_buffers else buf
            module._buffers[name] = value.to(torch.bfloat16)


@dataclass
class AnswerStats:
    prompt_tokens: int  # LLM input length (text + visual)
    visual_tokens: int  # time tags + memory tokens after the context guard
    memory_tokens: int  # kept memory tokens given (before the guard)
    truncated_tokens: int  # visual embeddings cut by the context guard
    generated_tokens: int = 0
    seconds: float = 0.0


def write_checkpoint(
    network: TempoNetwork,
    config: TempoCheckpointConfig,
    directory: str | Path,
    *,
    aux_source: Path | None = None,
) -> Path:
    """config.json + safetensors (+ tokenizer/processor files from `aux_source`) in the released layout."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    raw = config.to_dict()
    (out / CONFIG_FILE).write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n")
    state = dict(network.state_dict())
    if network.llm_config.tie_word_embeddings:
        state.pop("lm_head.weight", None)  # tied: the embedding table is the head
    save_weights(state, out)
    if aux_source is not None:
        copy_aux_files(aux_source, out)
    return out


def has_processor_config(directory: Path) -> bool:
    return (directory / "video_preprocessor_config.json").is_file() or (
        directory / "preprocessor_config.json"
    ).is_file()


def load_relevance_head(base_dir: Path, tokenizer: TextTokenizer, svlm_config: Qwen3VLConfig) -> RelevanceHead:
    """w_Yes − w_No: the base model's LM-head rows, or its input-embedding rows when the two are tied."""
    yes_id, no_id = tokenizer.token_id("Yes"), tokenizer.token_id("No")
    tied = bool(getattr(svlm_config, "tie_word_embeddings", False) or svlm_config.text_config.tie_word_embeddings)
    keys = ["lm_head.weight"]
    if tied:
        keys += [
            "model.language_model.embed_tokens.weight",
            "model.embed_tokens.weight",
            "language_model.model.embed_tokens.weight",
        ]
    found = load_rows(base_dir, keys, [yes_id, no_id])
    if found is None:
        raise CheckpointError(
            f"the base SVLM at {base_dir} has no LM head (lm_head.weight) "
            "to read the Yes/No rows of the relevance head from."
        )
    key, rows = found
    expected = svlm_config.text_config.hidden_size
    if rows.shape[-1] != expected:
        raise CheckpointError(f"{base_dir}: {key} rows have width {rows.shape[-1]} but the config says {expected}.")
    # The release loads the base LM head in the model dtype (bfloat16) and subtracts there
    # (Qwen3VLTower.smart_init_dynamic_compress); the score is then taken in float32.
    rows = rows.to(torch.bfloat16)
    direction = (rows[0] - rows[1]).float().contiguous()  # (D,)
    return RelevanceHead(yes_id=yes_id, no_id=no_id, direction=direction)
