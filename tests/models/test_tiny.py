"""The tiny checkpoint's offline tokenizer and base SVLM behave like the released ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tempo.models import TempoModel
from tempo.models.tempo_family import load_relevance_head
from tempo.models.text import TextTokenizer
from tempo.models.tiny import SPECIAL_TOKENS
from transformers import AutoTokenizer, Qwen3VLConfig


def test_yes_no_and_specials_are_single_tokens(tiny_dir: Path) -> None:
    tok = TextTokenizer.from_dir(tiny_dir)
    for token in ["Yes", "No", *SPECIAL_TOKENS]:
        assert len(tok.encode(token)) == 1, token
    assert tok.decode(tok.encode("<|im_start|>user\nIs it 12.5 seconds?<|im_end|>"), skip_special_tokens=False) == (
        "<|im_start|>user\nIs it 12.5 seconds?<|im_end|>"
    )


def test_transformers_loads_the_same_tokenizer_and_chat_template(tiny_dir: Path) -> None:
    hf = AutoTokenizer.from_pretrained(tiny_dir / "qwen3-vl-base")
    ours = TextTokenizer.from_dir(tiny_dir / "qwen3-vl-base")
    text = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|vision_start|><|video_pad|><|vision_end|>"
    assert hf(text, add_special_tokens=False)["input_ids"] == ours.encode(text)
    chat = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "\nQuery:\nWhere?"}]}]
    rendered = hf.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert rendered == "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>\nQuery:\nWhere?<|im_end|>\n" + (
        "<|im_start|>assistant\n"
    )


def test_relevance_rows_come_from_tied_embeddings_when_the_base_ties_them(tiny_dir: Path, tmp_path: Path) -> None:
    base = tmp_path / "base"
    shutil.copytree(tiny_dir / "qwen3-vl-base", base)
    cfg = json.loads((base / "config.json").read_text())
    cfg["tie_word_embeddings"] = True
    cfg["text_config"]["tie_word_embeddings"] = True
    (base / "config.json").write_text(json.dumps(cfg))
    weights = load_file(str(base / "model.safetensors"))
    del weights["lm_head.weight"]  # a tied checkpoint stores only the embedding table
    save_file(weights, str(base / "model.safetensors"), metadata={"format": "pt"})

    head = load_relevance_head(base, TextTokenizer.from_dir(base), Qwen3VLConfig.from_dict(cfg))
    table = weights["model.language_model.embed_tokens.weight"].to(torch.bfloat16)  # subtracted in bfloat16
    torch.testing.assert_close(head.direction, (table[head.yes_id] - table[head.no_id]).float(), rtol=0, atol=0)


def test_relevance_rows_come_from_the_base_lm_head(tiny_model: TempoModel, tiny_dir: Path) -> None:
    head = load_file(str(tiny_dir / "qwen3-vl-base" / "model.safetensors"))["lm_head.weight"]
    r = tiny_model.relevance
    # The release loads the base LM head in its model dtype (bfloat16) and subtracts there.
    rows = head.to(torch.bfloat16)
    torch.testing.assert_close(r.direction, (rows[r.yes_id] - rows[r.no_id]).float(), rtol=0, atol=0)
