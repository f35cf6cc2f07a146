"""The answer step: time tags, projector, context guard, greedy generation and streaming."""

from __future__ import annotations

import torch
from tempo.models import TempoInferenceConfig, TempoModel
from tempo.models.text import llm_prompt_parts

from .conftest import make_segment


def _memory(model: TempoModel, counts: list[int], seed: int = 0) -> list[tuple[float, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(2.0 + 4.0 * i, torch.randn(k, model.memory_dim, generator=g)) for i, k in enumerate(counts)]


def test_answers_from_stored_tokens_without_compressing(tiny_model: TempoModel) -> None:
    text = tiny_model.answer("What happens?", _memory(tiny_model, [4, 16, 8]), max_new_tokens=12)
    assert isinstance(text, str)
    assert text == tiny_model.answer("What happens?", _memory(tiny_model, [4, 16, 8]), max_new_tokens=12)


def test_streamed_pieces_concatenate_to_the_answer(tiny_model: TempoModel) -> None:
    pieces: list[str] = []
    text = tiny_model.answer("What?", _memory(tiny_model, [8, 8]), max_new_tokens=16, on_text=pieces.append)
    assert "".join(pieces) == text


def test_answer_can_be_iterated_piece_by_piece(tiny_model: TempoModel) -> None:
    memory = _memory(tiny_model, [8, 8])
    pieces = list(tiny_model.stream_answer("What?", memory, max_new_tokens=16))
    assert "".join(pieces) == tiny_model.answer("What?", memory, max_new_tokens=16)


def test_prompt_is_chatml_with_time_tags_before_projected_tokens(tiny_model: TempoModel) -> None:
    memory = _memory(tiny_model, [3, 5])
    embeds, stats = tiny_model.build_answer_embeddings("Where is the dog?", memory)
    before, after = llm_prompt_parts("Where is the dog?")
    assert before.endswith("<|im_start|>user\n") and after.startswith("\nWhere is the dog?<|im_end|>")
    emb = tiny_model.network.model.embed_tokens
    tok = tiny_model.tokenizer
    pos = len(tok.encode(before))
    with torch.inference_mode():
        for t, tokens in memory:
            tag = emb(torch.tensor(tok.encode(f"<{t:.1f} seconds>")))
            torch.testing.assert_close(embeds[0, pos : pos + tag.shape[0]], tag)
            pos += tag.shape[0]
            torch.testing.assert_close(
                embeds[0, pos : pos + tokens.shape[0]], tiny_model.network.project(tokens)
            )
            pos += tokens.shape[0]
    assert pos + len(tok.encode(after)) == embeds.shape[1] == stats.prompt_tokens
    assert stats.memory_tokens == 8 and stats.truncated_tokens == 0


def test_a_ready_tag_names_the_segment_instead_of_its_time(tiny_model: TempoModel) -> None:
    # A cross-stream prompt (tempo.engine.multi) tags each segment with its stream and time.
    tokens = _memory(tiny_model, [3])[0][1]
    embeds, _ = tiny_model.build_answer_embeddings("Which camera?", [("<cam2 42.0 seconds>", tokens)])
    before, _ = llm_prompt_parts("Which camera?")
    tok, emb = tiny_model.tokenizer, tiny_model.network.model.embed_tokens
    pos = len(tok.encode(before))
    with torch.inference_mode():
        tag = emb(torch.tensor(tok.encode("<cam2 42.0 seconds>")))
        torch.testing.assert_close(embeds[0, pos : pos + tag.shape[0]], tag)
        pos += tag.shape[0]
        torch.testing.assert_close(embeds[0, pos : pos + 3], tiny_model.network.project(tokens))


def test_visual_part_is_cut_at_the_end_to_fit_the_context(tiny_dir) -> None:
    model = TempoModel.load(tiny_dir, config=TempoInferenceConfig(context_limit=120))
    embeds, stats = model.build_answer_embeddings("What?", _memory(model, [32] * 6))
    assert stats.truncated_tokens > 0
    assert embeds.shape[1] == 120 - 16  # limit − margin: text kept whole, visual cut
    full, _ = TempoModel.load(tiny_dir).build_answer_embeddings("What?", _memory(model, [32] * 6))
    before, after = (len(model.tokenizer.encode(p)) for p in llm_prompt_parts("What?"))
    kept = 120 - 16 - before - after
    assert stats.visual_tokens == kept and stats.truncated_tokens == full.shape[1] - embeds.shape[1]
    # The head of the timeline survives, then the question text follows intact.
    torch.testing.assert_close(embeds[0, : before + kept], full[0, : before + kept])
    torch.testing.assert_close(embeds[0, -after:], full[0, -after:])


def test_time_tag_uses_the_real_segment_start(tiny_model: TempoModel) -> None:
    assert tiny_model.centre_time(make_segment(0)) == 2.0
    assert tiny_model.centre_time(make_segment(5, start=1000.25)) == 1002.25  # live stream after a gap


def test_zero_new_tokens_gives_an_empty_answer(tiny_model: TempoModel) -> None:
    assert tiny_model.answer("What?", _memory(tiny_model, [4]), max_new_tokens=0) == ""


def test_greedy_decoding_matches_transformers_generate(tiny_model: TempoModel) -> None:
    from transformers import Qwen3ForCausalLM

    net = tiny_model.network
    llm = Qwen3ForCausalLM(net.llm_config).eval()
    extras = (".vision_tower_aux_list.", ".mm_projector.")
    own = {k: v for k, v in net.state_dict().items() if not any(e in k for e in extras)}
    llm.load_state_dict(own, strict=True)
    embeds, _ = tiny_model.build_answer_embeddings("What happens?", _memory(tiny_model, [6, 12]))
    stop = [tiny_model.tokenizer.token_id("<|im_end|>"), tiny_model.tokenizer.token_id("<|endoftext|>")]
    with torch.inference_mode():
        ref = llm.generate(inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long),
                           max_new_tokens=20, do_sample=False, eos_token_id=stop, pad_token_id=stop[1])[0].tolist()
    ours = list(tiny_model.generate_ids(embeds, max_new_tokens=20))
    assert ours == [t for t in ref if t not in stop][: len(ours)]
    assert len(ours) == len([t for t in ref if t not in stop])
