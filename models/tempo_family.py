"""The Tempo model family, loaded and running (DESIGN §2): `TempoModel`.

`TempoModel.load(path_or_id)` loads a checkpoint directory: the network (`TempoForCausalLM`, a
Hugging Face model under the released key names, modeling_tempo.py) on the chosen device, dtype and
attention kernel, plus what the directory carries besides weights (tokenizers, processor, the base
SVLM's Yes/No rows, generation defaults). It is the Tempo implementation of `ModelFamily`
(family.py), the seam the engine calls:

- `compress(segments, query)` → relevance scores (n,) and memory tokens (n, M, D) (here);
- `compress_with_rules(segments, query, rules)` → the same plus rule scores (n, R) (monitoring);
- `score_segments(segments, queries)` → relevance scores (n, Q) only;
- `answer(question, memory)` → text, from (centre time, kept memory tokens) pairs in timeline
  order, however they were obtained (fresh query-aware pass or tokens stored in Redis)
  (`tempo.models.answer.GlobalLLM`, which `TempoModel` extends).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tempo.models.answer import GenerationDefaults, GlobalLLM
from tempo.models.cancel import check_cancelled
from tempo.models.checkpoint import CheckpointError, load_rows, looks_like_hub_id, resolve_model_dir
from tempo.models.compressor import (
    CompressorInputs,
    build_compressor_inputs,
    relevance_scores,
    sample_clock,
)
from tempo.models.config import TempoInferenceConfig
from tempo.models.configuration_tempo import attach_base_svlm_config, read_tempo_config
from tempo.models.device import attention_implementation, device_map_for, pick_device, pick_dtype
from tempo.models.family import centre_time
from tempo.models.modeling_tempo import TempoForCausalLM, write_checkpoint
from tempo.models.processor import SegmentVideoProcessor, VideoProcessorConfig
from tempo.models.text import TextTokenizer
from tempo.streaming.segment import Segment
from tqdm import tqdm
from transformers import DynamicCache, Qwen3VLConfig


@dataclass
class RelevanceHead:
    """w_Yes − w_No from the base Qwen3-VL LM head (or its tied input embeddings)."""

    yes_id: int
    no_id: int
    direction: torch.Tensor  # (D,) float32


def segment_centre_time(segment: Segment, window: int) -> float:
    """Time tag t of a segment (seconds): its first sample's time plus half a nominal window.

    Release sampling gives the release's (8i + 4) / real_fps exactly (`sample_clock`); stream sampling
    counts from the first frame's real time, so a live stream's tags stay true after a gap.
    """
    return centre_time(sample_clock(segment), window, segment.sample_fps)


class TempoModel(GlobalLLM):
    """A loaded Tempo checkpoint: the compressor pass here, the answer side from `GlobalLLM`.
    Build it with `TempoModel.load(path_or_id)`; it satisfies `ModelFamily`."""

    def __init__(
        self,
        network: TempoForCausalLM,
        *,
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
        self.svlm_tokenizer = svlm_tokenizer
        self.processor = processor
        self.relevance = relevance
        self.model_dir = model_dir
        self.base_dir = base_dir
        self._yes_minus_no = relevance.direction.to(device)

    # ------------------------------------------------------------------ loading / saving
    @classmethod
    def load(
        cls,
        path_or_id: str | Path,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        config: TempoInferenceConfig | None = None,
    ) -> TempoModel:
        """Load a checkpoint in the released layout from a directory (or a hub id already on disk).

        config.json is read once, into the network's `TempoConfig`; `device` and `dtype` override
        `config.device` / `config.dtype`.
        """
        config = config or TempoInferenceConfig()
        dev = pick_device(device if device is not None else config.device)
        dt = pick_dtype(dtype if dtype is not None else config.dtype, dev)
        model_dir = resolve_model_dir(path_or_id)
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

    def save(self, directory: str | Path) -> Path:
        """Write config.json, safetensors weights and the tokenizer/processor files in the released layout
        (what `load` reads back); returns the directory."""
        named = self.network.config.base_svlm
        base_svlm = None
        if not (looks_like_hub_id(named) and not Path(named).exists()):
            # A base SVLM given as a directory is written as an absolute path so the copy still finds it.
            base_svlm = str(self.base_dir)
        return write_checkpoint(self.network, directory, base_svlm=base_svlm, aux_source=self.model_dir)

    # ------------------------------------------------------------------ properties
    @property
    def num_memory_tokens(self) -> int:
        """M: memory tokens per segment."""
        return self.network.compressor.num_tokens

    def centre_time(self, segment: Segment) -> float:
        """Time tag of `segment` in seconds (`segment_centre_time` with the configured window)."""
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

    def score_segments(
        self, segments: Sequence[Segment], queries: Sequence[str], *, batch_size: int | None = None
    ) -> np.ndarray:
        """(n, Q) float32 in [0, 1]: each segment's relevance to each query, from one forward per batch
        (the first query's pass, the others riding on it as rules do); memory tokens are dropped."""
        queries = list(queries)
        if not queries:
            return np.zeros((len(segments), 0), dtype=np.float32)
        scores, _, others = self.compress_with_rules(segments, queries[0], queries[1:], batch_size=batch_size)
        return np.concatenate([scores[:, None], others], axis=1)

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
                check_cancelled()  # a question cancelled by its asker stops between batches
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


def has_processor_config(directory: Path) -> bool:
    """Whether `directory` carries the Qwen3-VL processor files (else the base SVLM's are used)."""
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
