"""The global LLM's side of Tempo (DESIGN §2): the answer prompt as embeddings, and decoding.

`GlobalLLM` builds the ChatML prompt with `<image>` replaced by [time tag + projected kept memory
tokens] per segment (cut at the end to fit the context), and answers through the network's own
`generate(inputs_embeds=…)` — greedy by default, stopping on the checkpoint's eos ids or `<|im_end|>` —
streaming text with `TextIteratorStreamer`. `TempoModel` is a `GlobalLLM` that also compresses.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tempo.errors import QuestionTooLongError
from tempo.models.cancel import AnswerCancelled, check_cancelled, current_cancel
from tempo.models.checkpoint import read_json
from tempo.models.config import CONTEXT_MARGIN, TempoInferenceConfig
from tempo.models.modeling_tempo import TempoForCausalLM
from tempo.models.text import IM_END, TextTokenizer, llm_prompt_parts, time_tag
from transformers import GenerationConfig, Qwen3Config, TextIteratorStreamer

log = logging.getLogger(__name__)

CANCEL_JOIN_S = 30.0  # at most one decoding step to wait for after a cancel (a CPU step is well under)


@dataclass
class AnswerStats:
    prompt_tokens: int  # LLM input length (text + visual)
    visual_tokens: int  # time tags + memory tokens after the context guard
    memory_tokens: int  # kept memory tokens given (before the guard)
    truncated_tokens: int  # visual embeddings cut by the context guard



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



class GenerationCancelled(Exception):
    """Raised inside `generate` (from the streamer) once nobody reads the answer any more: control flow
    between two threads, never seen by a user."""


class AnswerStreamer(TextIteratorStreamer):
    """`TextIteratorStreamer` that hands over new text after every token, not at word ends (a client
    sees the answer grow token by token); only an incomplete multi-byte character (decoded as U+FFFD)
    waits for the next token. Batch size 1; the prompt (given as embeddings) is skipped. After
    `cancel()`, or once the asker's event (`asker`, tempo.models.cancel) is set, the next token stops
    `generate` (it raises GenerationCancelled there)."""

    def __init__(self, tokenizer: TextTokenizer, asker: threading.Event | None = None) -> None:
        super().__init__(tokenizer, skip_prompt=True, timeout=None)  # type: ignore[arg-type]
        self.cancelled = threading.Event()
        self.asker = asker

    def cancel(self) -> None:
        self.cancelled.set()

    def put(self, value: torch.Tensor) -> None:
        if self.cancelled.is_set() or (self.asker is not None and self.asker.is_set()):
            raise GenerationCancelled
        if value.ndim > 1:
            value = value[0]
        if self.skip_prompt and self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            return
        self.token_cache.extend(value.tolist())
        text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
        if text.endswith("\ufffd"):
            return
        printable = text[self.print_len :]
        if text.endswith("\n"):  # a finished line: decode from here on, so each step stays short
            self.token_cache, self.print_len = [], 0
        else:
            self.print_len = len(text)
        if printable:
            self.on_finalized_text(printable)


def streamed_answer(
    tokenizer: Any,
    generate: Callable[[AnswerStreamer], list[int]],
    result: list[str],
    *,
    stop_ids: Sequence[int] = (),
) -> Iterator[str]:
    """Run `generate(streamer)` (the answer's new token ids) in a thread and yield the answer's text as
    it arrives, stripped as the release strips it (pieces never carry edge whitespace); append the whole
    stripped answer (cut at the first of `stop_ids`) to `result`. Errors are raised in the caller's thread.
    A reader that stops early (Ctrl-C in `tempo chat`, a client gone) cancels the generation: it ends at
    its next token instead of running on to max_new_tokens while holding the model. So does an asker
    that cancels from another thread (tempo.models.cancel): then AnswerCancelled is raised here."""
    asker = current_cancel()  # read in the reader's thread: the generating thread has no context
    check_cancelled()
    streamer = AnswerStreamer(tokenizer, asker)
    done: dict[str, Any] = {}

    def run() -> None:
        try:
            done["ids"] = generate(streamer)
        except BaseException as exc:  # re-raised in the caller's thread
            done["error"] = exc
            streamer.end()

    worker = threading.Thread(target=run, name="tempo-generate", daemon=True)
    worker.start()
    raw, sent = "", ""
    try:
        for chunk in streamer:
            raw += chunk
            text = raw.strip()
            if len(text) > len(sent) and text.startswith(sent):
                yield text[len(sent) :]
                sent = text
    finally:  # the reader left early (Ctrl-C, a closed client): generation stops at its next token
        streamer.cancel()
        worker.join(CANCEL_JOIN_S)
    if "error" in done:
        if isinstance(done["error"], GenerationCancelled) and asker is not None and asker.is_set():
            raise AnswerCancelled("the question was cancelled") from None
        raise done["error"]
    ids: list[int] = done["ids"]
    stop = set(stop_ids)
    ids = ids[: next((i for i, t in enumerate(ids) if t in stop), len(ids))]
    final = tokenizer.decode(ids).strip()
    if len(final) > len(sent) and final.startswith(sent):
        yield final[len(sent) :]
    result.append(final)


def collect_answer(pieces: Callable[[list[str]], Iterator[str]], on_text: Callable[[str], None] | None) -> str:
    """Drain `pieces(result)` (an answer generator that appends the whole answer to `result` at its
    end), handing each piece to `on_text` as it arrives; the whole answer. Both families answer so."""
    result: list[str] = []
    for piece in pieces(result):
        if on_text is not None:
            on_text(piece)
    return result[0]


class GlobalLLM:
    """The global Qwen3 LLM of a loaded checkpoint, with its tokenizer and decoding defaults."""

    def __init__(
        self,
        network: TempoForCausalLM,
        *,
        tokenizer: TextTokenizer,
        config: TempoInferenceConfig,
        device: torch.device,
        dtype: torch.dtype,
        generation: GenerationDefaults | None = None,
    ) -> None:
        self.network = network
        self.tokenizer = tokenizer
        self.config = config
        self.device = device
        self.dtype = dtype
        self.generation = generation or GenerationDefaults((tokenizer.token_id(IM_END),))

    @property
    def memory_dim(self) -> int:
        """D: width of a memory token (the SVLM hidden size)."""
        return int(self.network.compressor.compression_tokens.shape[-1])

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

    def count_text_tokens(self, text: str) -> int:
        """Tokens `text` takes in the global LLM's prompt (the cue words' cap is counted with it)."""
        return len(self.tokenizer.encode(text))

    def build_answer_embeddings(
        self, question: str, memory: Sequence[tuple[float | str, torch.Tensor]], texts: Sequence[str] | None = None
    ) -> tuple[torch.Tensor, AnswerStats]:
        """The prompt as LLM input embeddings (1, L, H): ChatML text with `<image>` replaced by
        [time tag + the segment's words (`texts[i]`, may be empty) + projected kept tokens] per segment,
        the visual part (words included) cut at the end to fit the context."""
        before, after = llm_prompt_parts(question)
        ids_before = self.tokenizer.encode(before)
        ids_after = self.tokenizer.encode(after)
        text_ids = [self.tokenizer.encode(t) if t else [] for t in (texts or [""] * len(memory))]
        if len(text_ids) != len(memory):
            raise ValueError(f"{len(text_ids)} segment texts for {len(memory)} segments")
        # The words travel inside the visual part: they share its room, and its cut at the end.
        room = self._visual_room(len(ids_before) + len(ids_after))
        for _, tokens in memory:
            if tokens.ndim != 2 or tokens.shape[-1] != self.memory_dim:
                raise ValueError(f"memory tokens must be (k, {self.memory_dim}), got {tuple(tokens.shape)}")
        # One embedding lookup for all time tags and one projector call for all kept tokens (a long
        # timeline has thousands of segments), then interleaved: [tag_1, tokens_1, tag_2, tokens_2, ...].
        # A segment's anchor: its centre time (seconds) as `<t seconds>`, or a ready tag (a cross-stream
        # prompt names the stream too: `<cam2 42.0 seconds>`, tempo.engine.multi).
        tag_ids = [
            self.tokenizer.encode(centre if isinstance(centre, str) else time_tag(centre)) for centre, _ in memory
        ]
        sizes = [int(tokens.shape[0]) for _, tokens in memory]
        memory_tokens = sum(sizes)
        pieces: list[torch.Tensor] = []
        if memory:
            # A segment's words go between its time tag and its tokens: one lookup for tags and words.
            tag_ids = [tag + txt for tag, txt in zip(tag_ids, text_ids, strict=True)]
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

    def generation_config(self, max_new_tokens: int, temperature: float) -> GenerationConfig:
        """Greedy (or sampled when temperature > 0) decoding that stops on the checkpoint's eos ids
        (generation_config.json, else config.json) or `<|im_end|>`, the release's stop string."""
        stop = list(self.generation.stop_ids)
        sampled = temperature > 0
        return GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=sampled,
            temperature=temperature if sampled else None,
            top_k=0 if sampled else None,  # plain softmax sampling at `temperature`
            top_p=1.0 if sampled else None,
            eos_token_id=stop,
            pad_token_id=stop[0],
            bos_token_id=None,
        )

    def generate_ids(
        self,
        embeds: torch.Tensor,
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
        streamer: TextIteratorStreamer | None = None,
    ) -> list[int]:
        """New token ids from (1, L, H) prompt embeddings, through transformers' `generate` (KV cache,
        stop ids of `generation_config`); the stop id itself is not returned. `seed` makes sampling
        repeatable (it seeds torch's global generator, as `generate` samples from it)."""
        if max_new_tokens <= 0:
            if streamer is not None:
                streamer.end()
            return []
        if temperature > 0:
            torch.manual_seed(0 if seed is None else seed)
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)  # (1, L)
        with torch.inference_mode():
            out = self.network.generate(
                inputs_embeds=embeds,
                attention_mask=mask,
                generation_config=self.generation_config(max_new_tokens, temperature),
                streamer=streamer,
            )  # (1, new): only the generated ids when the prompt is given as embeddings
        ids = out[0].tolist()
        stop = set(self.generation.stop_ids)
        return ids[: next((i for i, t in enumerate(ids) if t in stop), len(ids))]

    @torch.inference_mode()
    def generate_text(self, prompt: str, *, max_new_tokens: int) -> str:
        """Greedy continuation of a ChatML `prompt` by the global LLM (no visual tokens), decoded to
        text: the rewrite of a follow-up question needs no video."""
        ids = self.tokenizer.encode(prompt)
        embeds = self._embed_ids(ids)[None]  # (1, L, H)
        return self.tokenizer.decode(self.generate_ids(embeds, max_new_tokens=max_new_tokens, temperature=0.0))

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
        """Answer from per-segment (centre time seconds, kept memory tokens (k_i, D)) in timeline order.

        Needs no compression: the tokens may come from a fresh query-aware pass or from storage.
        `on_text` receives the answer as it is generated, in pieces that concatenate to the result.
        `texts`: per segment, the words it carries (subtitles, transcript), put after its time tag.
        """
        return collect_answer(
            lambda result: self._answer_pieces(question, memory, max_new_tokens, temperature, result, texts), on_text
        )

    def stream_answer(
        self,
        question: str,
        memory: Sequence[tuple[float | str, torch.Tensor]],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
    ) -> Iterator[str]:
        """`answer` as an iterator of text pieces, yielded as they are generated."""
        yield from self._answer_pieces(question, memory, max_new_tokens, temperature, [])

    def _answer_pieces(
        self,
        question: str,
        memory: Sequence[tuple[float | str, torch.Tensor]],
        max_new_tokens: int,
        temperature: float,
        result: list[str],
        texts: Sequence[str] | None = None,
    ) -> Iterator[str]:
        """Yield new text as tokens arrive; append the full text to `result` at the end."""
        with torch.inference_mode():
            embeds, _ = self.build_answer_embeddings(question, memory, texts)
        yield from streamed_answer(
            self.tokenizer,
            lambda streamer: self.generate_ids(
                embeds, max_new_tokens=max_new_tokens, temperature=temperature, streamer=streamer
            ),
            result,
        )
