"""The local compressor (DESIGN §2): Qwen3-VL reads a segment and a query, M memory tokens read it back.

One forward pass per batch of segments gives both outputs:
- memory tokens: final-layer hidden states at the M learnable memory-token positions appended right
  after each sequence's last real token (right padding after them);
- relevance: sigmoid(h · (w_Yes − w_No)) with h the final hidden state just before the first memory
  token, i.e. where the model would answer "Yes"/"No" (the zero-shot router).

Monitoring rules (`TempoCompressor.score_queries`) reuse that pass: every rule prompt is the generic
prompt with another query, so it shares the generic row's tokens up to the query (system, video). The
generic forward keeps its key/value cache; each rule then runs only its own suffix (query and the
assistant header, tens of tokens) on top of that cache. The vision tower and the long video prefix
run once per segment for all R+1 prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tempo.models.processor import SegmentVideoProcessor
from tempo.models.text import END_OF_TEXT, VIDEO_PLACEHOLDER, TextTokenizer, compressor_prompt
from tempo.streaming.segment import Segment
from torch import nn
from transformers import DynamicCache, Qwen3VLConfig
from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLModel


class SVLMBody(nn.Module):
    """Qwen3-VL without its LM head; the `model.` level keeps the released names (`vlm.model.visual.*`)."""

    def __init__(self, config: Qwen3VLConfig) -> None:
        super().__init__()
        self.model = Qwen3VLModel(config)


class TempoCompressor(nn.Module):
    """`model.vision_tower_aux_list.0` of the checkpoint: the SVLM plus the memory-token embeddings."""

    def __init__(self, config: Qwen3VLConfig, num_tokens: int) -> None:
        super().__init__()
        self.config = config
        self.vlm = SVLMBody(config)
        hidden = config.text_config.hidden_size
        self.compression_tokens = nn.Parameter(torch.zeros(1, num_tokens, hidden))  # (1, M, D)

    @classmethod
    def around(cls, model: Qwen3VLModel, config: Qwen3VLConfig, *, num_tokens: int = 0) -> TempoCompressor:
        """A compressor reading an already loaded Qwen3-VL `model` (shared, not copied), with
        `num_tokens` zero memory-token slots: with 0, a plain zero-shot relevance scorer (the open-weights
        router, tempo.models.qwen3vl_family)."""
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self.config = config
        self.vlm = SVLMBody.__new__(SVLMBody)
        nn.Module.__init__(self.vlm)
        self.vlm.model = model
        param = next(model.parameters())
        shape = (1, num_tokens, config.text_config.hidden_size)
        self.compression_tokens = nn.Parameter(torch.zeros(shape, dtype=param.dtype, device=param.device))
        return self

    @property
    def num_tokens(self) -> int:
        return int(self.compression_tokens.shape[1])

    def forward(
        self,
        input_ids: torch.Tensor,
        valid_lengths: torch.Tensor,
        pixel_values: torch.Tensor,
        grid_thw: torch.Tensor,
        cache: DynamicCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states for a right-padded batch.

        input_ids: (B, L) with each row's real tokens first, then M placeholder slots, then padding;
        valid_lengths: (B,) real tokens per row; pixel_values: (Σ patches, C·tp·p·p); grid_thw: (B, 3).
        Returns (h_answer (B, D): hidden state just before the first memory token,
                 memory (B, M, D): hidden states at the memory tokens).
        `cache`, when given, is filled with the batch's keys/values (for `score_queries`).
        """
        vl = self.vlm.model
        batch, length = input_ids.shape
        m = self.num_tokens
        device = input_ids.device
        pos = torch.arange(length, device=device)[None, :]  # (1, L)
        start = valid_lengths.to(device)[:, None]  # (B, 1)
        memory_mask = (pos >= start) & (pos < start + m)  # (B, L): the M slots right after the real tokens
        attention_mask = (pos < start + m).long()  # real tokens and memory tokens attend; padding does not
        video_mask = (input_ids == self.config.video_token_id) & (pos < start)  # (B, L)
        mm_token_type_ids = video_mask.int() * 2  # 0 text (memory tokens count as text), 2 video

        # Multimodal RoPE positions: memory tokens continue the text positions after the last real token.
        position_ids, _ = vl.get_rope_index(
            input_ids, mm_token_type_ids, video_grid_thw=grid_thw, attention_mask=attention_mask
        )  # (3, B, L)

        embeds = vl.get_input_embeddings()(input_ids)  # (B, L, D)
        vision = vl.get_video_features(pixel_values, grid_thw, return_dict=True)
        video_embeds = torch.cat(vision.pooler_output, dim=0).to(embeds.dtype)  # (Σ vision tokens, D)
        if int(video_mask.sum()) != video_embeds.shape[0]:
            raise ValueError(
                f"{int(video_mask.sum())} video placeholders but {video_embeds.shape[0]} vision tokens"
            )
        embeds = embeds.masked_scatter(video_mask[..., None], video_embeds)
        memory_embeds = (
            self.compression_tokens.to(embeds.dtype).expand(batch, -1, -1).reshape(-1, embeds.shape[-1])
        )
        embeds = embeds.masked_scatter(memory_mask[..., None], memory_embeds)
        deepstack = [torch.cat(feat, dim=0).to(embeds.dtype) for feat in vision.deepstack_features]

        out = vl.language_model(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            visual_pos_masks=video_mask,
            deepstack_visual_embeds=deepstack,
            cache=cache,
            use_cache=cache is not None,
        )
        hidden = out.last_hidden_state  # (B, L, D), after the final norm
        rows = torch.arange(batch, device=device)
        h_answer = hidden[rows, valid_lengths.to(device) - 1]  # (B, D)
        memory = hidden[memory_mask].view(batch, m, hidden.shape[-1])  # (B, M, D)
        return h_answer, memory

    def score_queries(self, cache: DynamicCache, inputs: CompressorInputs, *, max_rows: int = 64) -> torch.Tensor:
        """Answer-position hidden states of `inputs.extra_ids` (Q more prompts per segment), read from
        the `cache` that `forward(..., cache=cache)` filled for the same `inputs`. Returns (B, Q, D).

        Each extra prompt shares the generic row's first P tokens (system, video; P found per row by
        comparing token ids, so any prompt layout with the query after the video works); only its
        remaining S tokens run, attending to the generic row's cached keys/values [0, P). The result
        equals a full forward of that prompt up to float rounding. Rows go `max_rows` at a time, since
        each row holds a copy of its segment's cached prefix.
        """
        vl = self.vlm.model
        batch = len(inputs.extra_ids)
        q = len(inputs.extra_ids[0]) if batch else 0
        hidden = self.config.text_config.hidden_size
        device = inputs.input_ids.device
        if q == 0:
            return torch.zeros(batch, 0, hidden, device=device)
        video_id = self.config.video_token_id
        prefix_lengths: list[int] = []
        suffixes: list[list[int]] = []
        for b, row_queries in enumerate(inputs.extra_ids):
            generic = inputs.input_ids[b, : int(inputs.valid_lengths[b])].tolist()
            for ids in row_queries:
                p = 0
                limit = min(len(generic), len(ids)) - 1  # at least the last token runs again
                while p < limit and generic[p] == ids[p]:
                    p += 1
                if video_id in ids[p:]:
                    raise ValueError("an extra query's prompt differs from the generic one before the video ends")
                prefix_lengths.append(p)
                suffixes.append(ids[p:])
        rows = len(suffixes)
        prefix = torch.tensor(prefix_lengths, dtype=torch.long)  # (N,)
        suffix_len = torch.tensor([len(s) for s in suffixes], dtype=torch.long)  # (N,)
        segment_of_row = torch.arange(rows) // q  # (N,)

        # mRoPE positions of the suffix tokens: those of the whole prompt (cached prefix + suffix).
        full_len = int((prefix + suffix_len).max())
        full = torch.zeros(rows, full_len, dtype=torch.long)  # (N, Lf), right padded
        for r, (p, s) in enumerate(zip(prefix_lengths, suffixes, strict=True)):
            b = int(segment_of_row[r])
            full[r, :p] = inputs.input_ids[b, :p].cpu()
            full[r, p : p + len(s)] = torch.tensor(s, dtype=torch.long)
        full_mask = (torch.arange(full_len)[None, :] < (prefix + suffix_len)[:, None]).long()  # (N, Lf)
        positions, _ = vl.get_rope_index(
            full.to(device),
            ((full == video_id) & full_mask.bool()).int().to(device) * 2,
            video_grid_thw=inputs.grid_thw.to(device)[segment_of_row.to(device)],
            attention_mask=full_mask.to(device),
        )  # (3, N, Lf)

        out = torch.empty(rows, hidden, device=device)
        for lo in range(0, rows, max_rows):
            hi = min(rows, lo + max_rows)
            n = hi - lo
            p_max, s_max = int(prefix[lo:hi].max()), int(suffix_len[lo:hi].max())
            seg = segment_of_row[lo:hi].to(device)
            chunk_cache = DynamicCache(
                ddp_cache_data=[(layer.keys[seg, :, :p_max], layer.values[seg, :, :p_max]) for layer in cache.layers]
            )
            ids = torch.zeros(n, s_max, dtype=torch.long)  # (n, S); padding is masked
            for j, s in enumerate(suffixes[lo:hi]):
                ids[j, : len(s)] = torch.tensor(s, dtype=torch.long)
            attention_mask = torch.cat(
                [
                    torch.arange(p_max)[None, :] < prefix[lo:hi, None],  # the row's own cached prefix only
                    torch.arange(s_max)[None, :] < suffix_len[lo:hi, None],
                ],
                dim=1,
            ).long()  # (n, P + S)
            steps = prefix[lo:hi, None] + torch.arange(s_max)[None, :]  # (n, S) indices into the full prompt
            steps = steps.clamp(max=full_len - 1).to(device)
            suffix_positions = positions[:, lo:hi].gather(2, steps[None].expand(3, -1, -1))  # (3, n, S)
            result = vl.language_model(
                inputs_embeds=vl.get_input_embeddings()(ids.to(device)),  # (n, S, D)
                attention_mask=attention_mask.to(device),
                position_ids=suffix_positions,
                cache=chunk_cache,
                use_cache=True,
            )
            last = (suffix_len[lo:hi] - 1).to(device)
            out[lo:hi] = result.last_hidden_state[torch.arange(n, device=device), last].to(out.dtype)
        return out.view(batch, q, hidden)


@dataclass
class CompressorInputs:
    """A batch ready for `TempoCompressor.forward`, built on CPU."""

    input_ids: torch.Tensor  # (B, L) int64
    valid_lengths: torch.Tensor  # (B,) int64
    pixel_values: torch.Tensor  # (Σ patches, C·tp·p·p) uint8, normalised on the device (processor.normalize)
    grid_thw: torch.Tensor  # (B, 3) int64
    # Token ids of the same segments' prompts for `extra_queries`, unpadded: [segment][query] → ids.
    extra_ids: list[list[list[int]]] = field(default_factory=list)


def sample_clock(segment: Segment) -> float:
    """Seconds of the segment's first sample on the model's clock (SVLM frame times, LLM time tags).

    Release sampling: the release's own clock, first_frame_index / real_fps (absolute sample index over
    the real sampling rate), which can differ from the frame's presentation time. Stream sampling: the
    first frame's presentation time, which is the grid slot's time within the sampling tolerance and
    stays true across the gaps of a live stream.
    """
    if segment.extra.get("sampling") == "release":
        return segment.first_frame_index / segment.sample_fps
    return float(segment.start)


def segment_frame_times(segment: Segment) -> np.ndarray:
    """(T',) seconds per frame as the SVLM's prompt writes them, T' = T rounded up to even (≥ 2).

    The release's rule (mm_datautils.video_process_with_frame_idx): frame j of the segment sits at
    `sample_clock` + j / sample_fps, in stream time (not counted from the segment's start). A clip of odd
    length is padded (by qwen-vl-utils) with a copy of its last frame whose index, and so whose time, is
    the next one; a one-frame window likewise. These are the times the model was trained to read; the
    frames' own presentation times stay in `segment.timestamps` for everything a user sees.
    """
    frames = segment.num_frames
    if frames == 0:
        raise ValueError(f"segment {segment.index} has no frames")
    padded = max(2, frames + frames % 2)
    return sample_clock(segment) + np.arange(padded, dtype=np.float64) / segment.sample_fps


def build_compressor_inputs(
    segments: Sequence[Segment],
    query: str,
    *,
    processor: SegmentVideoProcessor,
    tokenizer: TextTokenizer,
    num_memory_tokens: int,
    extra_queries: Sequence[str] = (),
) -> CompressorInputs:
    """Process frames, build each chat, tokenise and right-pad with room for the M memory tokens.

    `extra_queries` (monitoring rules) are tokenised with the same clip and prompt builder into
    `extra_ids`, for `TempoCompressor.score_queries`.
    """
    pad_id = tokenizer.token_id(END_OF_TEXT)
    chat = compressor_prompt(tokenizer, VIDEO_PLACEHOLDER, query)  # rendered once; each clip fills the video
    extra_chats = [compressor_prompt(tokenizer, VIDEO_PLACEHOLDER, q) for q in extra_queries]
    ids_list: list[list[int]] = []
    extra_ids: list[list[list[int]]] = []
    pixels: list[torch.Tensor] = []
    grids: list[tuple[int, int, int]] = []
    for seg in segments:
        clip = processor(seg.frames_for_model(), segment_frame_times(seg))
        ids_list.append(tokenizer.encode(chat.replace(VIDEO_PLACEHOLDER, clip.prompt, 1)))
        extra_ids.append([tokenizer.encode(c.replace(VIDEO_PLACEHOLDER, clip.prompt, 1)) for c in extra_chats])
        pixels.append(clip.pixel_values)
        grids.append(clip.grid_thw)
    length = max(len(ids) for ids in ids_list) + num_memory_tokens
    input_ids = torch.full((len(ids_list), length), pad_id, dtype=torch.long)
    for row, ids in enumerate(ids_list):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return CompressorInputs(
        input_ids=input_ids,
        valid_lengths=torch.tensor([len(ids) for ids in ids_list], dtype=torch.long),
        pixel_values=torch.cat(pixels, dim=0),
        grid_thw=torch.tensor(grids, dtype=torch.long),
        extra_ids=extra_ids,
    )


def relevance_scores(h_answer: torch.Tensor, yes_minus_no: torch.Tensor) -> torch.Tensor:
    """sigmoid(h · (w_Yes − w_No)) in float32. h_answer: (B, D); yes_minus_no: (D,). Returns (B,)."""
    logit = h_answer.float() @ yes_minus_no.float().to(h_answer.device)
    return torch.sigmoid(logit)
