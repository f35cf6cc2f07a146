"""Tokenizers and the exact prompt texts of DESIGN §2 (compressor chat and global-LLM chat).

The compressor's chat is rendered by the base SVLM's own chat template (as the release renders it
with `processor.apply_chat_template(..., add_generation_prompt=True)`); the global LLM's prompt is the
release's hand-written "qwen" conversation, written out here as ChatML. Special tokens inside the
text (`<|im_start|>`, `<|video_pad|>`, ...) are matched as added tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

from tempo.models.checkpoint import CheckpointError
from tempo.models.config import (
    COMPRESSOR_QUERY_TEMPLATE,
    COMPRESSOR_SYSTEM_PROMPT,
    IMAGE_PLACEHOLDER,
    LLM_SYSTEM_PROMPT,
)
from tokenizers import Tokenizer

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
END_OF_TEXT = "<|endoftext|>"
# What a chat template writes for one video item, before the processor expands it (Qwen3-VL).
VIDEO_PLACEHOLDER = "<|vision_start|><|video_pad|><|vision_end|>"
# Where a Hugging Face model directory keeps its chat template, in the order transformers reads them.
CHAT_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json", "tokenizer_config.json")


class TextTokenizer:
    """A `tokenizers` tokenizer read from a model directory's tokenizer.json (offline, no conversion)."""

    def __init__(self, tokenizer: Tokenizer, source: Path | None = None, chat_template: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.source = source
        self.chat_template = chat_template  # Jinja source, None when the directory ships none

    @classmethod
    def from_dir(cls, directory: Path) -> TextTokenizer:
        path = directory / "tokenizer.json"
        if not path.is_file():
            raise CheckpointError(
                f"{directory} is not a complete model directory: tokenizer.json is missing."
            )
        return cls(Tokenizer.from_file(str(path)), directory, read_chat_template(directory))

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: int | list[int], skip_special_tokens: bool = True) -> str:
        """Text of token ids (one id or a list, as a transformers tokenizer takes them: the streamers call it)."""
        return self.tokenizer.decode([ids] if isinstance(ids, int) else ids, skip_special_tokens=skip_special_tokens)

    def token_id(self, token: str) -> int:
        """Id of a token that must exist as one vocabulary entry (special tokens, "Yes", "No")."""
        tid = self.tokenizer.token_to_id(token)
        if tid is None:
            ids = self.encode(token)
            if len(ids) != 1:
                where = self.source or "the tokenizer"
                raise CheckpointError(f"{where}: {token!r} is not a single token in its vocabulary.")
            tid = ids[0]
        return int(tid)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)


def read_chat_template(directory: Path) -> str | None:
    """The chat template a model directory ships (chat_template.jinja, .json, or tokenizer_config.json)."""
    for name in CHAT_TEMPLATE_FILES:
        path = directory / name
        if not path.is_file():
            continue
        if name.endswith(".jinja"):
            return path.read_text()
        try:
            template = json.loads(path.read_text()).get("chat_template")
        except (OSError, json.JSONDecodeError, AttributeError) as exc:
            raise CheckpointError(f"{path} is not valid JSON ({exc}).") from exc
        if isinstance(template, str):
            return template
    return None


def render_chat(template: str, messages: list[dict], *, add_generation_prompt: bool = True) -> str:
    """`messages` rendered by a Hugging Face chat template, exactly as `apply_chat_template` renders them."""
    from transformers.utils.chat_template_utils import render_jinja_template

    rendered, _ = render_jinja_template([messages], chat_template=template, add_generation_prompt=add_generation_prompt)
    return rendered[0]


def plain_text(text: str) -> str:
    """User text (a question, a subtitle line) as the models may read it: markup of their special tokens
    (`<|im_end|>`, `<|video_pad|>`, `<|vision_start|>`) written without its bars, so that text can neither
    end a turn nor add a vision token the inputs do not match. Text without `<|` or `|>` is unchanged
    (so every prompt the release builds from ordinary text is unchanged)."""
    return text.replace("<|", "<").replace("|>", ">")


def compressor_prompt(tokenizer: TextTokenizer, video_text: str, query: str) -> str:
    """The SVLM chat (DESIGN §2) as the release builds it (mm_datautils.construct_message).

    system: the compressor prompt; user: the video, then `\nQuery:\n{query}`; then the assistant
    turn's generation prompt. Rendered by the SVLM's own chat template, whose video placeholder is
    then replaced by the processor's expansion `video_text` (time tags + vision tokens), as
    Qwen3VLProcessor replaces it.
    """
    if tokenizer.chat_template is None:
        where = tokenizer.source or "the SVLM tokenizer"
        raise CheckpointError(f"{where} ships no chat template (chat_template.jinja or chat_template.json).")
    messages = [
        {"role": "system", "content": [{"type": "text", "text": COMPRESSOR_SYSTEM_PROMPT}]},
        {
            "role": "user",
            "content": [
                {"type": "video", "video": "segment"},
                {"type": "text", "text": COMPRESSOR_QUERY_TEMPLATE.format(query=plain_text(query))},
            ],
        },
    ]
    text = render_chat(tokenizer.chat_template, messages, add_generation_prompt=True)
    if VIDEO_PLACEHOLDER not in text:
        raise CheckpointError(f"the chat template of {tokenizer.source} writes no {VIDEO_PLACEHOLDER} for a video.")
    return text.replace(VIDEO_PLACEHOLDER, video_text, 1)


def llm_prompt_parts(question: str) -> tuple[str, str]:
    """The global-LLM ChatML prompt split at `<image>`: (text before the visual part, text after)."""
    full = (
        f"{IM_START}system\n{LLM_SYSTEM_PROMPT}{IM_END}\n"
        f"{IM_START}user\n{IMAGE_PLACEHOLDER}\n{plain_text(question)}{IM_END}\n"
        f"{IM_START}assistant\n"
    )
    before, after = full.split(IMAGE_PLACEHOLDER, 1)
    return before, after


def time_tag(seconds: float, stream: str | None = None) -> str:
    """Temporal anchor placed before a segment's memory tokens (DESIGN §2); in a cross-stream prompt
    it names the stream too, `<cam2 42.0 seconds>` (tempo.engine.multi_cite parses both back)."""
    return f"<{seconds:.1f} seconds>" if stream is None else f"<{stream} {seconds:.1f} seconds>"
