"""Loading and decoding as the release does: weight values, RoPE, generation defaults, checkpoint fields."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tempo.models import TempoModel
from tempo.models.modeling_tempo import release_weight_values
from tempo.models.tiny import BASE_DIR_NAME, LEGACY_BASE_DIR_NAME
from tempo.settings import AskSettings

from .conftest import make_segment


def test_weights_hold_the_values_of_a_float16_load_cast_to_bfloat16(tiny_model: TempoModel, tiny_dir: Path) -> None:
    stored = load_file(str(tiny_dir / "model.safetensors"))
    loaded = tiny_model.network.state_dict()
    for key in ("model.layers.0.self_attn.q_proj.weight", "model.mm_projector.0.weight",
                "model.vision_tower_aux_list.0.compression_tokens"):
        expected = stored[key].to(torch.float16).to(torch.bfloat16).float()
        assert torch.equal(loaded[key].float(), expected)
        assert not torch.equal(stored[key], expected)  # the tiny weights are float32: rounding shows


def test_release_weight_values_rounds_through_float16_first() -> None:
    # 1 + 2⁻⁸ + 2⁻¹²: float16 rounds it to 1 + 2⁻⁸, a tie for bfloat16, which rounds it to even (1.0);
    # one rounding straight to bfloat16 would give 1 + 2⁻⁷ (the value is above the halfway point).
    x = torch.tensor([1 + 2**-8 + 2**-12, 70000.0, 1e-8])
    out = release_weight_values(x)
    assert out[0].item() == 1.0 and x[:1].to(torch.bfloat16).item() == 1 + 2**-7
    assert out[1].item() == float("inf")  # beyond float16's range, as the release's float16 load
    assert out[2].item() == 0.0  # below float16's smallest subnormal


def test_bfloat16_model_rounds_rotary_frequencies_as_the_release(tiny_dir: Path) -> None:
    model = TempoModel.load(tiny_dir, dtype="bfloat16")
    llm_rope = model.network.model.rotary_emb.inv_freq
    svlm_rope = model.network.compressor.vlm.model.language_model.rotary_emb.inv_freq
    assert llm_rope.dtype == torch.bfloat16 and svlm_rope.dtype == torch.bfloat16
    theta = model.network.llm_config.rope_parameters["rope_theta"]
    dim = model.network.llm_config.head_dim
    exact = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    assert torch.equal(llm_rope, exact.to(torch.bfloat16))
    scores, _ = model.compress([make_segment(0)], "dog")
    assert 0.0 < float(scores[0]) < 1.0


def _exact_inv_freq(dim: int, theta: float) -> torch.Tensor:
    return 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)


def test_float32_model_holds_the_release_bfloat16_buffers_in_float32(tiny_model: TempoModel) -> None:
    # float32 mode is the release's bfloat16 values computed in float32: its floating buffers too —
    # the global LLM's rotary frequencies rounded to bfloat16, the compressor's through float16 first.
    assert tiny_model.dtype == torch.float32
    network = tiny_model.network
    cfg = network.llm_config
    exact = _exact_inv_freq(cfg.head_dim, cfg.rope_parameters["rope_theta"])
    llm_rope = network.model.rotary_emb.inv_freq
    assert llm_rope.dtype == torch.float32
    assert torch.equal(llm_rope, exact.to(torch.bfloat16).float())
    assert not torch.equal(exact, exact.to(torch.bfloat16).float())  # the rounding shows on these values
    compressor_ids = {id(b) for b in network.compressor.buffers()}
    checked = 0
    for name, buf in network.named_buffers():
        if not buf.is_floating_point():
            continue
        assert buf.dtype == torch.float32, name
        assert torch.equal(buf, buf.to(torch.bfloat16).float()), f"{name} holds values bfloat16 lacks"
        checked += id(buf) in compressor_ids
    assert checked >= 2  # the SVLM's text and vision rotary frequencies
    svlm_rope = network.compressor.vlm.model.language_model.rotary_emb
    text_cfg = network.config.svlm_config.text_config
    svlm_exact = _exact_inv_freq(text_cfg.head_dim, text_cfg.rope_parameters["rope_theta"])
    assert torch.equal(svlm_rope.inv_freq, svlm_exact.to(torch.float16).to(torch.bfloat16).float())


def test_global_llm_ignores_rope_scaling(tiny_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "scaled"
    shutil.copytree(tiny_dir, copy)
    cfg = json.loads((copy / "config.json").read_text())
    cfg["rope_scaling"] = {"rope_type": "linear", "factor": 4.0}
    cfg["rope_parameters"] = {"rope_type": "linear", "factor": 4.0, "rope_theta": cfg["rope_theta"]}
    (copy / "config.json").write_text(json.dumps(cfg))
    model = TempoModel.load(copy)
    assert model.network.llm_config.rope_parameters == {"rope_type": "default", "rope_theta": cfg["rope_theta"]}


def test_generation_stops_on_the_checkpoint_eos_and_im_end_only(tiny_model: TempoModel, tiny_dir: Path,
                                                                 tmp_path: Path) -> None:
    im_end = tiny_model.tokenizer.token_id("<|im_end|>")
    eos = json.loads((tiny_dir / "generation_config.json").read_text())["eos_token_id"]
    assert set(tiny_model.generation.stop_ids) == {*eos, im_end}
    copy = tmp_path / "eos"
    shutil.copytree(tiny_dir, copy, ignore=shutil.ignore_patterns(BASE_DIR_NAME, "siglip"))
    (copy / "generation_config.json").write_text(json.dumps({"eos_token_id": 7}))
    cfg = json.loads((copy / "config.json").read_text())
    cfg["mm_vision_tower_aux_list"] = [str(tiny_dir / BASE_DIR_NAME)]
    (copy / "config.json").write_text(json.dumps(cfg))
    assert TempoModel.load(copy).generation.stop_ids == (7, im_end)


def test_answer_is_stripped_and_its_pieces_add_up(tiny_model: TempoModel) -> None:
    _, memory = tiny_model.compress([make_segment(0)], "dog")
    pieces: list[str] = []
    text = tiny_model.answer("What is it?", [(2.0, memory[0][:8])], max_new_tokens=12, on_text=pieces.append)
    assert text == text.strip() and "".join(pieces) == text


def test_answers_run_up_to_1024_tokens_by_default() -> None:
    # The release's infer.py default; a question's setting, so every entry point starts from it.
    assert AskSettings().max_new_tokens == 1024 and AskSettings().temperature == 0.0


def test_tiny_checkpoint_carries_the_fields_the_release_reads(tiny_dir: Path) -> None:
    cfg = json.loads((tiny_dir / "config.json").read_text())
    base_name = Path(cfg["mm_vision_tower_aux_list"][0]).name
    assert "qwen3-vl" in base_name.lower()  # the release's builder: elif "qwen3-vl" in vision_tower_basename
    assert cfg["rope_theta"] > 0 and cfg["rope_scaling"] is None
    text = json.loads((tiny_dir / base_name / "config.json").read_text())["text_config"]
    assert text["rope_theta"] == text["rope_parameters"]["rope_theta"]
    assert text["rope_scaling"]["mrope_section"] == text["rope_parameters"]["mrope_section"]
    assert sum(text["rope_scaling"]["mrope_section"]) * 2 == text["head_dim"]
    assert (tiny_dir / base_name / "chat_template.jinja").is_file()


def test_an_older_tiny_checkpoint_with_its_base_in_base_svlm_still_loads(tiny_dir: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(tiny_dir, old, ignore=shutil.ignore_patterns("siglip"))
    (old / BASE_DIR_NAME).rename(old / LEGACY_BASE_DIR_NAME)
    cfg = json.loads((old / "config.json").read_text())
    cfg["mm_vision_tower_aux_list"] = [str(old / LEGACY_BASE_DIR_NAME)]
    for key in ("rope_theta", "rope_scaling"):
        cfg.pop(key)
    (old / "config.json").write_text(json.dumps(cfg))
    (old / "generation_config.json").unlink()
    model = TempoModel.load(old)
    scores, _ = model.compress([make_segment(0)], "dog")
    assert scores.shape == (1,)
    assert model.generation.stop_ids[-1] == model.tokenizer.token_id("<|im_end|>")


@pytest.mark.parametrize("name", ["chat_template.jinja"])
def test_checkpoint_without_a_chat_template_is_one_clear_error(tiny_dir: Path, tmp_path: Path, name: str) -> None:
    from tempo.models.checkpoint import CheckpointError

    copy = tmp_path / "no-template"
    shutil.copytree(tiny_dir, copy, ignore=shutil.ignore_patterns("siglip"))
    (copy / BASE_DIR_NAME / name).unlink()
    cfg = json.loads((copy / "config.json").read_text())
    cfg["mm_vision_tower_aux_list"] = [str(copy / BASE_DIR_NAME)]
    (copy / "config.json").write_text(json.dumps(cfg))
    model = TempoModel.load(copy)
    with pytest.raises(CheckpointError, match="ships no chat template"):
        model.compress([make_segment(0)], "dog")
