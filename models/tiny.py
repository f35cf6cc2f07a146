"""Tiny, randomly initialised Tempo checkpoints in exactly the released layout (tests and the demo).

`write_tiny_checkpoint(DIR)` writes:

    DIR/config.json               model_type "tempo_qwen", Qwen3 LM fields + mm_* keys
    DIR/model.safetensors         model.embed_tokens / layers / norm, lm_head,
                                  model.vision_tower_aux_list.0.vlm.model.{visual,language_model}.*,
                                  model.vision_tower_aux_list.0.compression_tokens, model.mm_projector.{0,2}.*
    DIR/tokenizer.json ...        offline byte-level BPE (ChatML + Qwen3-VL specials, "Yes"/"No" one token)
    DIR/*preprocessor_config.json the Qwen3-VL processor configuration
    DIR/qwen3-vl-base/            a complete Hugging Face Qwen3-VL directory (config, weights with LM head,
                                  tokenizer, chat template, processor files); config.json's
                                  mm_vision_tower_aux_list names it ("qwen3-vl" in its name is how the
                                  release's builder recognises a Qwen3-VL tower)
    DIR/siglip/                   a tiny SigLIP for segment embeddings (tempo.models.embedder's writer)

It loads through `TempoModel.load` like the released model, and its config carries the
fields the release's code reads with transformers 4.57 (legacy `rope_theta` / `rope_scaling`, and
`text_config.rope_scaling.mrope_section`), so the release's loader accepts it too; nothing special-cases it.
Deterministic for a seed: weights come from torch's seeded generator, the tokenizer from a fixed corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tempo.models.config import COMPRESSOR_SYSTEM_PROMPT, GENERIC_QUERY, LLM_SYSTEM_PROMPT
from tempo.models.configuration_tempo import TempoConfig
from tempo.models.modeling_tempo import TempoForCausalLM, write_checkpoint
from tempo.models.text import time_tag
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import Qwen3Config, Qwen3VLConfig, Qwen3VLForConditionalGeneration

BASE_DIR_NAME = "qwen3-vl-base"  # the release builds its tower only for names containing "qwen3-vl"
LEGACY_BASE_DIR_NAME = "base_svlm"  # what older tiny checkpoints used (still loadable)
SIGLIP_DIR_NAME = "siglip"

# Dimensions: big enough to exercise every code path (GQA, deepstack, multi-layer), small enough that a
# 2-minute video is answered in seconds on two CPU cores.
TINY_NUM_MEMORY_TOKENS = 32  # M (the release uses 128)
# The shape both tiny decoders (the SVLM's language model and the global LLM) have; the method does
# not need D = H (the projector maps D -> H), it is simply the smallest shape that covers GQA.
_TINY_DECODER = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
}
TINY_SVLM_TEXT = {
    **_TINY_DECODER,  # hidden_size is D = mm_hidden_size
    "rope_parameters": {
        "rope_type": "default",
        "rope_theta": 5000000.0,
        "mrope_section": [2, 3, 3],
        "mrope_interleaved": True,
    },
}
TINY_SVLM_VISION = {
    "depth": 2,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_heads": 2,
    "in_channels": 3,
    "patch_size": 16,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "out_hidden_size": 64,
    "num_position_embeddings": 64,  # an 8 × 8 grid of learned positions, interpolated like the real one
    "deepstack_visual_indexes": [0],
}
TINY_LLM = {
    **_TINY_DECODER,  # hidden_size is H
    "rope_theta": 1000000.0,
    "tie_word_embeddings": False,
}
# Per clip (T·H·W) pixel bounds of the processor: 8 frames come out at about 64 × 64.
TINY_MIN_PIXELS = 2 * 32 * 32
TINY_MAX_PIXELS = 8 * 64 * 64

# Qwen2/Qwen3 pre-tokenizer split (contractions, letters, single digits, punctuation, new lines, spaces).
QWEN_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
VOCAB_SIZE_BEFORE_SPECIALS = 512

# The chat template the tiny SVLM ships: the structure of Qwen3-VL-Instruct's own template (system turn
# from a string or text items, user / assistant / tool turns whose content lists place
# `<|vision_start|><|image_pad|><|vision_end|>` or the video equivalent where an image or a video item
# is, `add_vision_id` numbering, the assistant generation prompt), without its tool-calling preamble.
# Rendered by transformers' chat-template renderer (trim_blocks, lstrip_blocks), as the release renders it.
CHAT_TEMPLATE = """{%- macro render_text(content) %}
    {%- if content is string %}
        {{- content }}
    {%- else %}
        {%- for item in content %}
            {%- if 'text' in item %}
                {{- item.text }}
            {%- endif %}
        {%- endfor %}
    {%- endif %}
{%- endmacro %}
{%- if messages[0].role == 'system' %}
    {{- '<|im_start|>system\\n' + render_text(messages[0].content) + '<|im_end|>\\n' }}
{%- endif %}
{%- set image_count = namespace(value=0) %}
{%- set video_count = namespace(value=0) %}
{%- for message in messages %}
    {%- if message.role == "user" or message.role == "tool" %}
        {{- '<|im_start|>' + ('user' if message.role == 'tool' else message.role) + '\\n' }}
        {%- if message.content is string %}
            {{- message.content }}
        {%- else %}
            {%- for content in message.content %}
                {%- if content.type == 'image' or 'image' in content or 'image_url' in content %}
                    {%- set image_count.value = image_count.value + 1 %}
                    {%- if add_vision_id %}Picture {{ image_count.value }}: {% endif -%}
                    <|vision_start|><|image_pad|><|vision_end|>
                {%- elif content.type == 'video' or 'video' in content %}
                    {%- set video_count.value = video_count.value + 1 %}
                    {%- if add_vision_id %}Video {{ video_count.value }}: {% endif -%}
                    <|vision_start|><|video_pad|><|vision_end|>
                {%- elif 'text' in content %}
                    {{- content.text }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role + '\\n' + render_text(message.content) + '<|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""


def _training_corpus() -> list[str]:
    """A fixed corpus: the prompts, numbers and time tags, everyday video words, and Yes/No answers."""
    words = [
        "the",
        "a",
        "an",
        "is",
        "are",
        "was",
        "were",
        "what",
        "who",
        "where",
        "when",
        "why",
        "how",
        "which",
        "did",
        "does",
        "do",
        "in",
        "on",
        "at",
        "of",
        "to",
        "from",
        "with",
        "and",
        "or",
        "person",
        "people",
        "man",
        "woman",
        "child",
        "dog",
        "cat",
        "car",
        "bus",
        "truck",
        "bike",
        "door",
        "window",
        "fence",
        "street",
        "road",
        "room",
        "kitchen",
        "table",
        "chair",
        "ball",
        "red",
        "blue",
        "green",
        "yellow",
        "black",
        "white",
        "left",
        "right",
        "up",
        "down",
        "open",
        "close",
        "walk",
        "run",
        "jump",
        "sit",
        "stand",
        "enter",
        "leave",
        "climb",
        "fall",
        "hold",
        "pick",
        "put",
        "throw",
        "catch",
        "first",
        "last",
        "before",
        "after",
        "during",
        "time",
        "second",
        "seconds",
        "minute",
        "video",
        "segment",
        "frame",
        "scene",
        "camera",
        "answer",
        "question",
        "option",
        "letter",
        "describe",
        "content",
        "happens",
        "happened",
        "visible",
        "count",
        "many",
        "color",
        "wearing",
        "doing",
    ]
    lines = [
        COMPRESSOR_SYSTEM_PROMPT,
        LLM_SYSTEM_PROMPT,
        GENERIC_QUERY,
        "Query:",
        "Answer the question with the option letter",
    ]
    lines += [" ".join(words[i : i + 8]) for i in range(0, len(words), 8)]
    lines += [time_tag(t / 2) for t in range(0, 400)]
    lines += ["(A) (B) (C) (D) (E)"] * 20
    lines += ["Yes", "No", "Yes.", "No."] * 200  # "Yes" and "No" must end up as single tokens
    return lines


def build_tiny_tokenizer() -> Tokenizer:
    """Byte-level BPE with the Qwen pre-tokenizer, trained offline on a fixed corpus; specials appended."""
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE_BEFORE_SPECIALS,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(_training_corpus(), trainer=trainer)
    tok.add_special_tokens(SPECIAL_TOKENS)
    for word in ("Yes", "No"):
        if len(tok.encode(word, add_special_tokens=False).ids) != 1:
            raise RuntimeError(f"tiny tokenizer: {word!r} did not become a single token")
    return tok


def _write_tokenizer_files(tok: Tokenizer, directory: Path) -> None:
    tok.save(str(directory / "tokenizer.json"))
    tok.model.save(str(directory))  # vocab.json + merges.txt, for tools that read those
    added = {
        str(tok.token_to_id(t)): {
            "content": t,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "single_word": False,
            "special": True,
        }
        for t in SPECIAL_TOKENS
    }
    config = {
        "tokenizer_class": "Qwen2Tokenizer",
        "added_tokens_decoder": added,
        "additional_special_tokens": SPECIAL_TOKENS[1:],
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "errors": "replace",
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "split_special_tokens": False,
        "model_max_length": 32768,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (directory / "chat_template.jinja").write_text(CHAT_TEMPLATE)


def _write_processor_files(directory: Path) -> None:
    common = {
        "size": {"shortest_edge": TINY_MIN_PIXELS, "longest_edge": TINY_MAX_PIXELS},
        "patch_size": TINY_SVLM_VISION["patch_size"],
        "temporal_patch_size": TINY_SVLM_VISION["temporal_patch_size"],
        "merge_size": TINY_SVLM_VISION["spatial_merge_size"],
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "do_resize": True,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "do_convert_rgb": True,
        "processor_class": "Qwen3VLProcessor",
    }
    video = dict(common, video_processor_type="Qwen3VLVideoProcessor", fps=2, do_sample_frames=False)
    image = dict(common, image_processor_type="Qwen2VLImageProcessor")
    (directory / "video_preprocessor_config.json").write_text(json.dumps(video, indent=2) + "\n")
    (directory / "preprocessor_config.json").write_text(json.dumps(image, indent=2) + "\n")


def tiny_svlm_config(tok: Tokenizer) -> Qwen3VLConfig:
    ids = {
        name: tok.token_to_id(tokn)
        for name, tokn in (
            ("image_token_id", "<|image_pad|>"),
            ("video_token_id", "<|video_pad|>"),
            ("vision_start_token_id", "<|vision_start|>"),
            ("vision_end_token_id", "<|vision_end|>"),
        )
    }
    text = dict(TINY_SVLM_TEXT, vocab_size=tok.get_vocab_size(), tie_word_embeddings=False)
    return Qwen3VLConfig(
        text_config=text,
        vision_config=dict(TINY_SVLM_VISION),
        tie_word_embeddings=False,
        **ids,
    )


def write_tiny_checkpoint(directory: str | Path, *, seed: int = 0) -> Path:
    """Write a random tiny Tempo checkpoint (layout in the module docstring) to `directory`; returns it."""
    out = Path(directory).resolve()
    base = out / BASE_DIR_NAME
    base.mkdir(parents=True, exist_ok=True)
    tok = build_tiny_tokenizer()

    # Base SVLM: a complete Hugging Face Qwen3-VL directory, LM head included (relevance rows).
    torch.manual_seed(seed)
    svlm_config = tiny_svlm_config(tok)
    svlm_config._attn_implementation = "sdpa"
    base_model = Qwen3VLForConditionalGeneration(svlm_config).eval()
    base_model.save_pretrained(str(base))
    add_legacy_rope_fields(base / "config.json")
    _write_tokenizer_files(tok, base)
    _write_processor_files(base)
    _write_generation_config(tok, base)

    # Tempo: the compressor starts from the base SVLM (as fine-tuning does), the rest is random.
    llm = Qwen3Config(
        vocab_size=tok.get_vocab_size(),
        **TINY_LLM,
        bos_token_id=None,
        eos_token_id=tok.token_to_id("<|im_end|>"),
        pad_token_id=tok.token_to_id("<|endoftext|>"),
    )
    llm_dict = llm.to_dict()
    for key in ("transformers_version", "architectures", "_name_or_path", "dtype", "torch_dtype"):
        llm_dict.pop(key, None)
    llm_dict["architectures"] = ["TempoQwenForCausalLM"]
    # transformers 4.57 (the release) reads the RoPE base from the legacy keys, not rope_parameters.
    llm_dict["rope_theta"] = TINY_LLM["rope_theta"]
    llm_dict["rope_scaling"] = None
    config = TempoConfig.from_dict(
        {
            **llm_dict,
            "mm_vision_tower_aux_list": [str(base)],
            "num_compression_tokens": TINY_NUM_MEMORY_TOKENS,
            "mm_hidden_size": TINY_SVLM_TEXT["hidden_size"],
        }
    )
    config.svlm_config = svlm_config
    network = TempoForCausalLM(config)
    network.compressor.vlm.model.load_state_dict(base_model.model.state_dict())
    with torch.no_grad():
        network.compressor.compression_tokens.normal_(0.0, 0.02)
    write_checkpoint(network, out)
    _write_tokenizer_files(tok, out)
    _write_processor_files(out)
    _write_generation_config(tok, out)
    _write_siglip(out / SIGLIP_DIR_NAME, seed)
    return out


def add_legacy_rope_fields(config_path: Path) -> None:
    """Add to a Qwen3-VL config.json the RoPE keys older transformers (4.57, the release's) read.

    transformers 5 writes `text_config.rope_parameters`; 4.57 reads `text_config.rope_theta` and
    `text_config.rope_scaling` (whose `mrope_section` splits the rotary dimensions over time, height
    and width). Both versions accept the file with both spellings.
    """
    raw = json.loads(config_path.read_text())
    text = raw["text_config"]
    rope = dict(text.get("rope_parameters") or {})
    text["rope_theta"] = rope.get("rope_theta", TINY_SVLM_TEXT["rope_parameters"]["rope_theta"])
    text["rope_scaling"] = {
        "rope_type": rope.get("rope_type", "default"),
        "mrope_section": list(rope.get("mrope_section", TINY_SVLM_TEXT["rope_parameters"]["mrope_section"])),
        "mrope_interleaved": bool(rope.get("mrope_interleaved", True)),
    }
    config_path.write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n")


def _write_generation_config(tok: Tokenizer, directory: Path) -> None:
    """generation_config.json as Qwen checkpoints ship it: the end-of-turn and end-of-text ids stop."""
    config = {
        "eos_token_id": [tok.token_to_id("<|im_end|>"), tok.token_to_id("<|endoftext|>")],
        "pad_token_id": tok.token_to_id("<|endoftext|>"),
        "do_sample": False,
    }
    (directory / "generation_config.json").write_text(json.dumps(config, indent=2) + "\n")


def _write_siglip(directory: Path, seed: int) -> None:
    """The memory layer's tiny segment embedder, when its writer exists (tempo.models.embedder)."""
    try:
        from tempo.models.embedder import write_tiny_siglip  # type: ignore[attr-defined]
    except ImportError:
        return
    write_tiny_siglip(directory, seed=seed)
