"""A tiny random Whisper checkpoint the project writes itself (tests, benchmarks): no download.

The layout is a real Hugging Face Whisper directory (config, safetensors weights, generation config
with the language / task / timestamp token ids, tokenizer, feature extractor), so the ASR path
(`tempo.models.asr`) loads it exactly as it loads `openai/whisper-*` or an MIT-licensed fine-tune
from the hub. The weights are random: what it "hears" is noise; times and plumbing are real.

    DIR/config.json, model.safetensors, generation_config.json
    DIR/tokenizer.json, tokenizer_config.json, preprocessor_config.json
"""

from __future__ import annotations

from pathlib import Path

LANGUAGES = ("en", "de", "fr", "es", "it", "ja", "zh")
TASKS = ("translate", "transcribe")
TIMESTAMPS = 1501  # <|0.00|> … <|30.00|> in 0.02 s steps, as Whisper's tokenizer has them
_CORPUS = ["the quick brown fox jumps over the lazy dog", "hello world this is a test of speech",
           "a blue elephant crosses the road", "good morning everyone and thank you"]


def _tokenizer() -> object:
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
    tok.add_special_tokens(specials)
    tok.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(TIMESTAMPS)])
    return tok


def write_tiny_whisper(directory: str | Path, *, seed: int = 0) -> Path:
    """Write the tiny random Whisper checkpoint to `directory`; returns it."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer()
    tok.save(str(directory / "tokenizer.json"))  # type: ignore[attr-defined]
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(directory / "tokenizer.json"), bos_token="<|endoftext|>",
                                     eos_token="<|endoftext|>", unk_token="<|endoftext|>",
                                     pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    eot, sot = ids("<|endoftext|>"), ids("<|startoftranscript|>")
    config = WhisperConfig(
        vocab_size=len(tokenizer), num_mel_bins=80, d_model=64, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128,
        max_source_positions=1500, max_target_positions=448, pad_token_id=eot, bos_token_id=eot,
        eos_token_id=eot, decoder_start_token_id=sot, begin_suppress_tokens=None, suppress_tokens=None,
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot, eos_token_id=eot, pad_token_id=eot, bos_token_id=eot,
        no_timestamps_token_id=ids("<|notimestamps|>"), max_initial_timestamp_index=50,
        lang_to_id={f"<|{lang}|>": ids(f"<|{lang}|>") for lang in LANGUAGES},
        task_to_id={t: ids(f"<|{t}|>") for t in TASKS}, is_multilingual=True, max_length=448,
        prev_sot_token_id=ids("<|startofprev|>"),
    )
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(directory)
    return directory
