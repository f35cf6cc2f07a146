"""The Tempo network is a Hugging Face model: Auto classes, from_pretrained's options, sharded saving,
generation through `generate` with a streamer, and the attention / device selection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from tempo.models import TempoModel
from tempo.models.configuration_tempo import TempoConfig
from tempo.models.device import attention_implementation, device_map_for
from tempo.models.modeling_tempo import TempoForCausalLM
from tempo.tools.cli import main
from transformers import AutoConfig, AutoModelForCausalLM, TextIteratorStreamer

from .conftest import make_segment


def test_tempo_model_tiny_loads_through_auto_model_for_causal_lm(tmp_path: Path) -> None:
    assert main(["model", "tiny", str(tmp_path / "tiny"), "--seed", "3"]) == 0
    config = AutoConfig.from_pretrained(tmp_path / "tiny")
    assert isinstance(config, TempoConfig) and config.model_type == "tempo_qwen"
    assert config.num_compression_tokens == 32 and config.mm_projector_type == "mlp2x_gelu"
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "tiny")
    assert isinstance(model, TempoForCausalLM)
    names = set(model.state_dict())
    for key in ("model.embed_tokens.weight", "lm_head.weight", "model.norm.weight", "model.mm_projector.0.weight",
                "model.mm_projector.2.bias", "model.vision_tower_aux_list.0.compression_tokens",
                "model.vision_tower_aux_list.0.vlm.model.visual.patch_embed.proj.weight",
                "model.vision_tower_aux_list.0.vlm.model.language_model.norm.weight"):
        assert key in names
    with safe_open(str(tmp_path / "tiny" / "model.safetensors"), "pt") as f:
        assert set(f.keys()) == names  # the released layout, no more, no less


def test_auto_model_equals_tempo_model_weights_with_release_rounding(tiny_model: TempoModel, tiny_dir: Path) -> None:
    auto = AutoModelForCausalLM.from_pretrained(tiny_dir)
    ours = tiny_model.network.state_dict()
    for key, value in auto.state_dict().items():
        assert torch.equal(value, ours[key]), key
    stored = safe_open(str(tiny_dir / "model.safetensors"), "pt").get_tensor("model.mm_projector.0.weight")
    assert torch.equal(auto.state_dict()["model.mm_projector.0.weight"],
                       stored.to(torch.float16).to(torch.bfloat16).float())


def test_bfloat16_load_rounds_float32_weights_through_float16(tiny_dir: Path) -> None:
    auto = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.bfloat16)
    assert auto.dtype == torch.bfloat16
    stored = safe_open(str(tiny_dir / "model.safetensors"), "pt").get_tensor("model.layers.0.mlp.up_proj.weight")
    expected = stored.to(torch.float16).to(torch.bfloat16)
    assert torch.equal(auto.model.layers[0].mlp.up_proj.weight, expected)
    assert not torch.equal(stored.to(torch.bfloat16), expected)  # one rounding would differ somewhere


def test_attn_implementation_reaches_the_compressor(tiny_dir: Path) -> None:
    auto = AutoModelForCausalLM.from_pretrained(tiny_dir, attn_implementation="eager")
    assert auto.config._attn_implementation == "eager"
    assert auto.compressor.config.text_config._attn_implementation == "eager"


def test_sharded_save_loads_back_identically(tiny_dir: Path, tmp_path: Path) -> None:
    auto = AutoModelForCausalLM.from_pretrained(tiny_dir)
    auto.save_pretrained(tmp_path / "sharded", max_shard_size="200KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    saved = json.loads((tmp_path / "sharded" / "config.json").read_text())
    assert saved["model_type"] == "tempo_qwen" and "svlm_config" not in saved and saved["rope_scaling"] is None
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "sharded")
    for key, value in auto.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key


def test_rope_scaling_is_forced_off_on_the_config() -> None:
    config = TempoConfig(hidden_size=64, rope_parameters={"rope_type": "linear", "factor": 4.0, "rope_theta": 1e6})
    assert config.rope_parameters == {"rope_type": "default", "rope_theta": 1e6}


def test_a_model_without_its_base_svlm_config_is_one_clear_error() -> None:
    from tempo.models import CheckpointError

    with pytest.raises(CheckpointError, match="base SVLM"):
        TempoForCausalLM(TempoConfig(hidden_size=64, num_hidden_layers=1))


def test_streamer_gives_the_same_text_as_the_answer(tiny_model: TempoModel) -> None:
    _, memory = tiny_model.compress([make_segment(0)], "dog")
    embeds, _ = tiny_model.build_answer_embeddings("What is it?", [(2.0, memory[0][:8])])
    streamer = TextIteratorStreamer(tiny_model.tokenizer, skip_prompt=True)
    ids = tiny_model.generate_ids(embeds, max_new_tokens=16, streamer=streamer)
    streamed = "".join(streamer)
    assert streamed.strip() == tiny_model.tokenizer.decode(ids).strip()
    assert tiny_model.answer("What is it?", [(2.0, memory[0][:8])], max_new_tokens=16) == streamed.strip()


def test_answer_text_arrives_token_by_token(tiny_model: TempoModel) -> None:
    from tempo.models.answer import AnswerStreamer

    _, memory = tiny_model.compress([make_segment(0)], "dog")
    embeds, _ = tiny_model.build_answer_embeddings("What is it?", [(2.0, memory[0][:8])])
    streamer = AnswerStreamer(tiny_model.tokenizer)
    ids = tiny_model.generate_ids(embeds, max_new_tokens=12, streamer=streamer)
    pieces = list(streamer)
    assert "".join(pieces) == tiny_model.tokenizer.decode(ids)
    # One piece per token that decodes to whole characters by itself; a token holding part of a
    # multi-byte character (U+FFFD alone) waits for the next one.
    whole = [i for i in ids if tiny_model.tokenizer.decode([i]) and "\ufffd" not in tiny_model.tokenizer.decode([i])]
    assert len([p for p in pieces if p]) >= len(whole) - 1 and len(pieces) > 2


def test_sampling_with_a_seed_repeats(tiny_model: TempoModel) -> None:
    _, memory = tiny_model.compress([make_segment(0)], "dog")
    embeds, _ = tiny_model.build_answer_embeddings("What?", [(2.0, memory[0][:8])])
    a = tiny_model.generate_ids(embeds, max_new_tokens=10, temperature=1.5, seed=4)
    b = tiny_model.generate_ids(embeds, max_new_tokens=10, temperature=1.5, seed=4)
    assert a == b


@pytest.mark.parametrize(
    ("device", "flash", "expected"),
    [
        ("cpu", True, "sdpa"),
        ("cpu", False, "sdpa"),
        ("cuda", True, "flash_attention_2"),
        ("cuda", False, "sdpa"),
        ("mps", True, "sdpa"),
    ],
)
def test_flash_attention_only_on_cuda_when_it_imports(device: str, flash: bool, expected: str) -> None:
    assert attention_implementation(torch.device(device), flash_available=lambda: flash) == expected


def test_flash_attention_is_not_picked_here() -> None:
    # No GPU and no flash-attn on this machine: the default check must say so.
    assert attention_implementation(torch.device("cpu")) == "sdpa"
    assert attention_implementation(torch.device("cuda")) == ("flash_attention_2" if _flash_imports() else "sdpa")


def _flash_imports() -> bool:
    try:
        import flash_attn  # noqa: F401
    except Exception:
        return False
    return True


@pytest.mark.parametrize(
    ("device", "accelerate", "expected"),
    [
        ("cpu", True, None),
        ("cuda:1", True, {"": "cuda:1"}),
        ("cuda", False, None),  # loaded on the CPU, then moved: transformers' device_map needs accelerate
    ],
)
def test_device_map_only_with_accelerate_off_the_cpu(device: str, accelerate: bool, expected: dict | None) -> None:
    assert device_map_for(torch.device(device), accelerate_available=lambda: accelerate) == expected


def test_a_reader_that_stops_early_stops_the_generation(tiny_model: TempoModel) -> None:
    """Ctrl-C in `tempo chat` (or a client gone) closes the answer's iterator: the generating thread
    stops at its next token instead of running on to max_new_tokens."""
    import threading

    from tempo.models.answer import streamed_answer

    _, memory = tiny_model.compress([make_segment(0)], "dog")
    embeds, _ = tiny_model.build_answer_embeddings("What is it?", [(2.0, memory[0][:8])])
    steps: list[int] = []

    def generate(streamer):
        class Counting:  # every token the model emits passes here before the streamer
            def put(self, value):
                steps.append(1)
                streamer.put(value)

            def end(self):
                streamer.end()

        return tiny_model.generate_ids(embeds, max_new_tokens=200, streamer=Counting())

    # The tiny model never emits a stop id within 200 tokens when greedy on this prompt (checked below).
    full = tiny_model.generate_ids(embeds, max_new_tokens=200)
    assert len(full) == 200
    pieces = streamed_answer(tiny_model.tokenizer, generate, [])
    assert next(pieces)
    pieces.close()  # what a KeyboardInterrupt in the reader does to the generator
    assert not [t for t in threading.enumerate() if t.name == "tempo-generate"]
    assert len(steps) < 50  # stopped within a few tokens of the close, not after 200
