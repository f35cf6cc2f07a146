"""The answer prompt with a segment's words (subtitles, transcript) after its time tag."""

from __future__ import annotations

import torch
from tempo.engine.text_track import segment_words
from tempo.models import TempoInferenceConfig, TempoModel
from tempo.models.text import llm_prompt_parts
from tempo.streaming.subtitles import Cue


def _memory(model: TempoModel, counts: list[int]) -> list[tuple[float, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(2.0 + 4.0 * i, torch.randn(k, model.memory_dim, generator=g)) for i, k in enumerate(counts)]


def test_words_sit_between_each_time_tag_and_its_tokens(tiny_model: TempoModel) -> None:
    memory = _memory(tiny_model, [3, 5])
    words = [segment_words([Cue(1.0, 2.0, "a blue elephant", "srt")]), ""]
    assert words[0] == '\nSubtitles 1.0-2.0 s: "a blue elephant"\n'
    embeds, stats = tiny_model.build_answer_embeddings("Where?", memory, words)
    before, after = llm_prompt_parts("Where?")
    emb, tok = tiny_model.network.model.embed_tokens, tiny_model.tokenizer
    pos = len(tok.encode(before))
    with torch.inference_mode():
        for (t, tokens), text in zip(memory, words, strict=True):
            ids = tok.encode(f"<{t:.1f} seconds>") + (tok.encode(text) if text else [])
            torch.testing.assert_close(embeds[0, pos : pos + len(ids)], emb(torch.tensor(ids)))
            pos += len(ids)
            torch.testing.assert_close(embeds[0, pos : pos + tokens.shape[0]], tiny_model.network.project(tokens))
            pos += tokens.shape[0]
    assert pos + len(tok.encode(after)) == embeds.shape[1] == stats.prompt_tokens
    assert tiny_model.count_text_tokens(words[0]) == len(tok.encode(words[0]))


def test_words_count_against_the_context_limit(tiny_dir) -> None:
    model = TempoModel.load(tiny_dir, config=TempoInferenceConfig(context_limit=160))
    words = [segment_words([Cue(0.0, 1.0, "word " * 20, "asr")])] * 6
    embeds, stats = model.build_answer_embeddings("What?", _memory(model, [32] * 6), words)
    assert stats.truncated_tokens > 0
    assert embeds.shape[1] == 160 - 16  # limit − margin holds with the words in
