"""A tiny random Whisper checkpoint the project writes itself (tests, benchmarks): no download.

The layout is a real Hugging Face Whisper directory (config, safetensors weights, generation config
with the language / task / timestamp token ids, tokenizer, feature extractor), so the ASR path
(`tempo.models.asr`) loads it exactly as it loads `openai/whisper-*` or an MIT-licensed fine-tune
from the hub. The weights are random: what it "hears" is noise; times and plumbing are real.

    DIR/config.json, model.safetensors, generation_config.json
    DIR/tokenizer.json, tokenizer_config.json, preprocessor_config.json

`write_random_whisper(DIR, "small")` writes the same kind of directory at a real Whisper size (the
architecture numbers of `openai/whisper-*`, the real vocabulary of 51,865 ids: the BPE part padded
with filler words), for benchmarks: random weights cost the compute a trained checkpoint costs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LANGUAGES = ("en", "de", "fr", "es", "it", "ja", "zh")
TASKS = ("translate", "transcribe")
TIMESTAMPS = 1501  # <|0.00|> … <|30.00|> in 0.02 s steps, as Whisper's tokenizer has them
_CORPUS = ["the quick brown fox jumps over the lazy dog", "hello world this is a test of speech",
           "a blue elephant crosses the road", "good morning everyone and thank you"]


# openai/whisper-{tiny,base,small,medium} config.json: the architecture only (weights do not change
# compute); all four have 80 mel bins, 1500 encoder / 448 decoder positions and the multilingual
# vocabulary of 51,865 ids (50,257 BPE + 107 special + 1,501 timestamp tokens).
WHISPER_SIZES: dict[str, dict[str, int]] = {
    "tiny": {"d_model": 384, "layers": 4, "heads": 6, "ffn": 1536},
    "base": {"d_model": 512, "layers": 6, "heads": 8, "ffn": 2048},
    "small": {"d_model": 768, "layers": 12, "heads": 12, "ffn": 3072},
    "medium": {"d_model": 1024, "layers": 24, "heads": 16, "ffn": 4096},
}
WHISPER_VOCAB = 51865
_TEST_SIZE = {"d_model": 64, "layers": 1, "heads": 2, "ffn": 128}  # the tests' checkpoint: plumbing, not compute


def _tokenizer(vocab_size: int | None = None) -> Any:
    """A byte-level BPE with Whisper's special and timestamp tokens; with `vocab_size`, the BPE part
    is padded with filler words so that the whole vocabulary has exactly that many ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(_CORPUS, trainer)
    specials = ["<|endoftext|>", "<|startoftranscript|>", *[f"<|{lang}|>" for lang in LANGUAGES],
                *[f"<|{t}|>" for t in TASKS], "<|startoflm|>", "<|startofprev|>", "<|nospeech|>",
                "<|notimestamps|>"]
    if vocab_size is not None:
        data = json.loads(tok.to_str())
        vocab: dict[str, int] = data["model"]["vocab"]
        bpe = vocab_size - len(specials) - TIMESTAMPS
        fillers = (f"\u0120w{i}" for i in range(bpe))  # " w0", " w1", …: decodable, never merged into
        while len(vocab) < bpe:
            word = next(fillers)
            vocab.setdefault(word, len(vocab))
        tok = Tokenizer.from_str(json.dumps(data))
    tok.add_special_tokens(specials)
    tok.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(TIMESTAMPS)])
    return tok


def whisper_parts(size: str | None = None) -> tuple[Any, Any, Any]:
    """(tokenizer, WhisperConfig, GenerationConfig) of a random Whisper: `size` one of WHISPER_SIZES
    (the real architecture and vocabulary), or None for the tests' tiny checkpoint."""
    from transformers import GenerationConfig, WhisperConfig, WhisperTokenizerFast

    if size is not None and size not in WHISPER_SIZES:
        raise ValueError(f"unknown Whisper size {size!r}: choose one of {', '.join(WHISPER_SIZES)}.")
    dims = _TEST_SIZE if size is None else WHISPER_SIZES[size]
    tok = _tokenizer(None if size is None else WHISPER_VOCAB)
    tokenizer = WhisperTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                     unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    eot, sot = ids("<|endoftext|>"), ids("<|startoftranscript|>")
    config = WhisperConfig(
        vocab_size=len(tokenizer), num_mel_bins=80, d_model=dims["d_model"], encoder_layers=dims["layers"],
        decoder_layers=dims["layers"], encoder_attention_heads=dims["heads"], decoder_attention_heads=dims["heads"],
        encoder_ffn_dim=dims["ffn"], decoder_ffn_dim=dims["ffn"],
        max_source_positions=1500, max_target_positions=448, pad_token_id=eot, bos_token_id=eot,
        eos_token_id=eot, decoder_start_token_id=sot, begin_suppress_tokens=None, suppress_tokens=None,
    )
    generation = GenerationConfig(
        decoder_start_token_id=sot, eos_token_id=eot, pad_token_id=eot, bos_token_id=eot,
        no_timestamps_token_id=ids("<|notimestamps|>"), max_initial_timestamp_index=50,
        lang_to_id={f"<|{lang}|>": ids(f"<|{lang}|>") for lang in LANGUAGES},
        task_to_id={t: ids(f"<|{t}|>") for t in TASKS}, is_multilingual=True, max_length=448,
        prev_sot_token_id=ids("<|startofprev|>"),
    )
    return tokenizer, config, generation


def write_random_whisper(directory: str | Path, size: str | None = None, *, seed: int = 0) -> Path:
    """Write a random Whisper checkpoint of `size` (see `whisper_parts`) to `directory`; returns it."""
    import torch
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer, config, generation = whisper_parts(size)
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = generation
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(directory)
    return directory


def write_tiny_whisper(directory: str | Path, *, seed: int = 0) -> Path:
    """Write the tiny random Whisper checkpoint to `directory`; returns it."""
    return write_random_whisper(directory, None, seed=seed)
