"""Tokenizers and the exact prompt texts of DESIGN §2 (compressor chat and global-LLM chat).

Prompts are written out as ChatML strings so the token sequence is visible in one place; special
tokens inside the text (`<|im_start|>`, `<|video_pad|>`, ...) are matched as added tokens.
"""

from __future__ import annotations

from pathlib import Path

from tempo.models.checkpoint import CheckpointError
from tempo.models.config import COMPRESSOR_SYSTEM_PROMPT, IMAGE_PLACEHOLDER, LLM_SYSTEM_PROMPT
from tokenizers import Tokenizer

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
END_OF_TEXT = "<|endoftext|>"


class TextTokenizer:
    """A `tokenizers` tokenizer read from a model directory's tokenizer.json (offline, no conversion)."""

    def __init__(self, tokenizer: Tokenizer, source: Path | None = None) -> None:
        self.tokenizer = tokenizer
        self.source = source

    @classmethod
    def from_dir(cls, directory: Path) -> TextTokenizer:
        path = directory / "tokenizer.json"
        if not path.is_file():
            raise CheckpointError(
                f"{directory} is not a complete model directory: tokenizer.json is missing."
            )
        return cls(Tokenizer.from_file(str(path)), directory)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)

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


def compressor_prompt(video_text: str, query: str) -> str:
    """The SVLM chat (DESIGN §2): system; user: video, new line, `Query:`, new line, query; assistant turn."""
    return (
        f"{IM_START}system\n{COMPRESSOR_SYSTEM_PROMPT}{IM_END}\n"
        f"{IM_START}user\n{video_text}\nQuery:\n{query}{IM_END}\n"
        f"{IM_START}assistant\n"
    )


def llm_prompt_parts(question: str) -> tuple[str, str]:
    """The global-LLM ChatML prompt split at `<image>`: (text before the visual part, text after)."""
    full = (
        f"{IM_START}system\n{LLM_SYSTEM_PROMPT}{IM_END}\n"
        f"{IM_START}user\n{IMAGE_PLACEHOLDER}\n{question}{IM_END}\n"
        f"{IM_START}assistant\n"
    )
    before, after = full.split(IMAGE_PLACEHOLDER, 1)
    return before, after


def time_tag(seconds: float) -> str:
    """Temporal anchor placed before a segment's memory tokens (DESIGN §2)."""
    return f"<{seconds:.1f} seconds>"
