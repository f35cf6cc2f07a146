"""Checkpoint IO: the released layout, save → load round trips, and clear refusals."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from tempo.models import CheckpointError, ModelNotAvailableError, TempoModel
from tempo.tools.cli import main

from .conftest import make_segment


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy_checkpoint(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("qwen3-vl-base", "siglip"))
    return dst


def _edit_config(model_dir: Path, **changes: object) -> None:
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg.update(changes)
    (model_dir / "config.json").write_text(json.dumps(cfg))


def test_tiny_checkpoint_has_the_released_layout(tiny_dir: Path) -> None:
    cfg = json.loads((tiny_dir / "config.json").read_text())
    assert cfg["model_type"] == "tempo_qwen"
    assert cfg["mm_projector_type"] == "mlp2x_gelu"
    assert cfg["mm_vision_tower_aux_list"] == [str(tiny_dir / "qwen3-vl-base")]
    assert cfg["num_compression_tokens"] == 32 and cfg["mm_hidden_size"] == 64
    with safe_open(str(tiny_dir / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
        assert f.get_slice("model.vision_tower_aux_list.0.compression_tokens").get_shape() == [1, 32, 64]
    for key in (
        "model.embed_tokens.weight",
        "model.norm.weight",
        "lm_head.weight",
        "model.mm_projector.0.weight",
        "model.mm_projector.2.weight",
        "model.vision_tower_aux_list.0.vlm.model.visual.patch_embed.proj.weight",
        "model.vision_tower_aux_list.0.vlm.model.language_model.embed_tokens.weight",
    ):
        assert key in keys
    assert not any(".vlm.lm_head" in k for k in keys)  # the compressor carries no LM head
    base = tiny_dir / "qwen3-vl-base"
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "video_preprocessor_config.json",
        "preprocessor_config.json",
        "chat_template.jinja",
    ):
        assert (base / name).is_file()
    with safe_open(str(base / "model.safetensors"), "pt") as f:
        assert "lm_head.weight" in set(f.keys())


def test_same_seed_writes_identical_files_and_another_seed_other_weights(
    tiny_dir: Path, tmp_path: Path
) -> None:
    assert main(["model", "tiny", str(tmp_path / "again"), "--seed", "0"]) == 0
    assert main(["model", "tiny", str(tmp_path / "other"), "--seed", "1"]) == 0
    for name in ("model.safetensors", "tokenizer.json", "qwen3-vl-base/model.safetensors"):
        assert _sha(tmp_path / "again" / name) == _sha(tiny_dir / name)
    assert _sha(tmp_path / "other" / "model.safetensors") != _sha(tiny_dir / "model.safetensors")


def test_save_then_load_gives_identical_outputs(tiny_model: TempoModel, tmp_path: Path) -> None:
    saved = tiny_model.save(tmp_path / "copy")
    again = TempoModel.load(saved)
    segs = [make_segment(0), make_segment(1)]
    s1, m1 = tiny_model.compress(segs, "dog")
    s2, m2 = again.compress(segs, "dog")
    assert np.array_equal(s1, s2) and torch.equal(m1, m2)
    memory = [(2.0, m1[0, :5]), (6.0, m1[1, :9])]
    assert again.answer("What?", memory, max_new_tokens=8) == tiny_model.answer(
        "What?", memory, max_new_tokens=8
    )


def test_shapes_disagreeing_with_config_are_refused(tiny_dir: Path, tmp_path: Path) -> None:
    bad = _copy_checkpoint(tiny_dir, tmp_path / "bad")
    _edit_config(bad, num_compression_tokens=16)
    with pytest.raises(CheckpointError) as err:
        TempoModel.load(bad)
    message = str(err.value)
    assert "compression_tokens" in message and "(1, 32, 64)" in message and "(1, 16, 64)" in message
    assert "\n" not in message


def test_llm_width_disagreeing_with_weights_is_refused(tiny_dir: Path, tmp_path: Path) -> None:
    bad = _copy_checkpoint(tiny_dir, tmp_path / "bad")
    _edit_config(bad, intermediate_size=96)
    with pytest.raises(CheckpointError, match=r"mlp.*has shape"):
        TempoModel.load(bad)


def test_missing_weights_are_named(tiny_dir: Path, tmp_path: Path) -> None:
    bad = _copy_checkpoint(tiny_dir, tmp_path / "bad")
    (bad / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="has no weights"):
        TempoModel.load(bad)


def test_a_directory_that_is_not_a_tempo_checkpoint_is_refused(tiny_dir: Path) -> None:
    with pytest.raises(CheckpointError, match="not a Tempo checkpoint"):
        TempoModel.load(tiny_dir / "qwen3-vl-base")


def test_hub_id_not_on_disk_is_never_downloaded() -> None:
    with pytest.raises(ModelNotAvailableError) as err:
        TempoModel.load("Vision-CAIR/Tempo-6B-not-here")
    assert "cannot be downloaded here" in str(err.value) and "--model" in str(err.value)


def test_missing_base_svlm_says_where_to_put_it(tiny_dir: Path, tmp_path: Path) -> None:
    bad = _copy_checkpoint(tiny_dir, tmp_path / "nobase")
    _edit_config(bad, mm_vision_tower_aux_list=["Qwen/Qwen3-VL-2B-Instruct-not-here"])
    with pytest.raises(ModelNotAvailableError, match="beside the checkpoint"):
        TempoModel.load(bad)


def test_base_svlm_beside_the_checkpoint_is_found_after_a_move(tiny_dir: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(tiny_dir, moved)
    _edit_config(moved, mm_vision_tower_aux_list=["/nowhere/qwen3-vl-base"])
    model = TempoModel.load(moved)
    assert model.base_dir == (moved / "qwen3-vl-base").resolve()


def test_loading_reads_config_json_once(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[Path] = []
    read_text = Path.read_text

    def counting(self: Path, *args: object, **kwargs: object) -> str:
        if self.name == "config.json" and self.parent == tiny_dir.resolve():
            reads.append(self)
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting)
    TempoModel.load(tiny_dir)
    assert len(reads) == 1  # one TempoConfig, handed to TempoForCausalLM.from_pretrained


def test_a_mangled_tempo_key_is_one_clear_error(tiny_dir: Path, tmp_path: Path) -> None:
    bad = _copy_checkpoint(tiny_dir, tmp_path / "bad")
    _edit_config(bad, num_compression_tokens="many")
    with pytest.raises(CheckpointError, match="lacks or mangles the Tempo key"):
        TempoModel.load(bad)
