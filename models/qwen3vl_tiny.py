"""`write_tiny_qwen3vl(DIR)`: a random tiny Qwen3-VL checkpoint in the released layout of the
Qwen3-VL family (what `tempo model tiny --family qwen3-vl DIR` writes).

The directory is what a Qwen/Qwen3-VL-*-Instruct download holds, at toy size: config.json
(`model_type` "qwen3_vl"), model.safetensors (LM head included: the router reads its Yes/No rows),
tokenizer.json / vocab.json / merges.txt / tokenizer_config.json, chat_template.jinja,
preprocessor_config.json and video_preprocessor_config.json, generation_config.json. transformers'
Auto classes load it (`AutoModelForImageTextToText`, `AutoProcessor`); the tokenizer is trained offline
from a fixed corpus, as the Tempo factory's (tempo.models.tiny). A tiny SigLIP segment embedder sits in
`siglip/` beside it, where the service looks for one. The answers of a random model are noise: it is for
tests, the demo and benchmarks, not for quality.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tempo.models.tiny import (
    SIGLIP_DIR_NAME,
    _write_generation_config,
    _write_processor_files,
    _write_siglip,
    _write_tokenizer_files,
    add_legacy_rope_fields,
    build_tiny_tokenizer,
    tiny_svlm_config,
)
from transformers import Qwen3VLForConditionalGeneration


def write_tiny_qwen3vl(directory: str | Path, *, seed: int = 0, embedder: bool = True) -> Path:
    """Write a random tiny Qwen3-VL checkpoint (layout in the module docstring) to `directory`; returns it.
    `embedder` False leaves out the SigLIP segment embedder (a bare Qwen3-VL directory)."""
    out = Path(directory).resolve()
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tiny_tokenizer()
    torch.manual_seed(seed)
    config = tiny_svlm_config(tok)
    config._attn_implementation = "sdpa"
    model = Qwen3VLForConditionalGeneration(config).eval()
    model.save_pretrained(str(out))
    add_legacy_rope_fields(out / "config.json")
    _write_tokenizer_files(tok, out)
    _write_processor_files(out)
    _write_generation_config(tok, out)
    if embedder:
        _write_siglip(out / SIGLIP_DIR_NAME, seed)
    return out
