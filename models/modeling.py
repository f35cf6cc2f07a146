"""The Tempo model: SVLM compressor + relevance head → ATA → projector + time tags → global Qwen3 LLM.

`TempoModel.from_pretrained(path_or_id)` loads a checkpoint directory: the network
(`tempo.models.network.TempoForCausalLM`, a Hugging Face model under the released key names) on the
chosen device, dtype and attention kernel, plus what the directory carries besides weights
(tokenizers, processor, the base SVLM's Yes/No rows, generation defaults). It offers the two steps
the rest of Tempo calls:

- `compress(segments, query)` → relevance scores (n,) and memory tokens (n, M, D) (here);
- `answer(question, memory)` → text, from (centre time, kept memory tokens) pairs in timeline
  order, however they were obtained (fresh query-aware pass or tokens stored in Redis)
  (`tempo.models.answer.GlobalLLM`, which `TempoModel` extends).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from tempo.errors import DeviceUnavailableError
from tempo.models.answer import AnswerStats, GenerationDefaults, GlobalLLM
from tempo.models.checkpoint import (
    CheckpointError,
    load_rows,
    looks_like_hub_id,
    read_checkpoint_config,
    resolve_model_dir,
)
from tempo.models.compressor import (
    CompressorInputs,
    build_compressor_inputs,
    relevance_scores,
    sample_clock,
)
from tempo.models.config import TempoCheckpointConfig, TempoInferenceConfig
from tempo.models.network import (
    TempoConfig,
    TempoForCausalLM,
    attach_base_svlm_config,
    read_tempo_config,
    release_weight_values,
    round_buffers_as_released,
    write_checkpoint,
)
from tempo.models.processor import SegmentVideoProcessor, VideoProcessorConfig
from tempo.models.text import TextTokenizer
from tempo.streaming.segment import Segment
from tqdm import tqdm
from transformers import DynamicCache, Qwen3VLConfig

# Names that lived here before the split, still importable from this module.
__all__ = [
    "AnswerStats",
    "GenerationDefaults",
    "RelevanceHead",
    "TempoConfig",
    "TempoForCausalLM",
    "TempoModel",
    "attention_implementation",
    "centre_time",
    "device_map_for",
    "load_relevance_head",
    "pick_device",
    "pick_dtype",
    "release_weight_values",
    "round_buffers_as_released",
    "segment_centre_time",
    "write_checkpoint",
]


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


def flash_attn_imports() -> bool:
    """Whether `flash_attn` (the `gpu` extra; `pip install flash-attn --no-build-isolation`) imports:
    an install whose CUDA build does not match torch is found but fails to import."""
    if importlib.util.find_spec("flash_attn") is None:
        return False
    try:
        importlib.import_module("flash_attn")
    except Exception:  # ImportError, or an OSError/RuntimeError from a mismatched CUDA build
        return False
    return True


def attention_implementation(device: torch.device, *, flash_available: Callable[[], bool] = flash_attn_imports) -> str:
    """"flash_attention_2" on a CUDA device when flash-attn imports, else "sdpa" (torch's own)."""
    if device.type == "cuda" and flash_available():
        return "flash_attention_2"
    return "sdpa"


def device_map_for(device: torch.device, *, accelerate_available: Callable[[], bool] | None = None) -> dict | None:
    """`device_map` for transformers' from_pretrained: weights loaded straight onto an accelerator
    when `accelerate` (the `gpu` extra) is installed, which transformers needs for it; else None
    (loaded on the CPU, then moved)."""
    if accelerate_available is None:
        accelerate_available = lambda: importlib.util.find_spec("accelerate") is not None  # noqa: E731
    if device.type == "cpu" or not accelerate_available():
        return None
    return {"": str(device)}


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


class TempoModel(GlobalLLM):
    """A loaded Tempo checkpoint: the compressor pass here, the answer side from `GlobalLLM`.
    Build it with `TempoModel.from_pretrained(path_or_id)`."""

    def __init__(
        self,
        network: TempoForCausalLM,
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
        super().__init__(
            network, tokenizer=tokenizer, config=config, device=device, dtype=dtype, generation=generation
        )
        self.checkpoint_config = checkpoint_config
        self.svlm_tokenizer = svlm_tokenizer
        self.processor = processor
        self.relevance = relevance
        self.model_dir = model_dir
        self.base_dir = base_dir
        self._yes_minus_no = relevance.direction.to(device)

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
        llm_config = read_tempo_config(model_dir)
        base_dir = attach_base_svlm_config(llm_config, model_dir)
        svlm_config = llm_config.svlm_config
        network = TempoForCausalLM.from_pretrained(
            model_dir,
            config=llm_config,
            dtype=dt,
            device_map=device_map_for(dev),
            attn_implementation=attention_implementation(dev),
        )
        network.to(dev).eval()  # a no-op when device_map already placed it

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
