"""The open-weights family (issue 23): a Qwen3-VL router + answerer behind Tempo's ATA, in Qwen3-VL
visual tokens. Real tiny checkpoints (the factory's, and one written directly by transformers at
another toy size), real generated video, the real CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from tempo.engine.renditions import plan_renditions
from tempo.engine.result import TimelineRow, TurnResult
from tempo.models.checkpoint import CheckpointError
from tempo.models.family import ModelFamily
from tempo.models.qwen3vl_family import FAMILY, Qwen3VLFamily, checkpoint_family, load_model_family
from tempo.models.qwen3vl_tiny import write_tiny_qwen3vl
from tempo.models.renditions import (
    clip_inputs,
    pick_rendition,
    render_clip,
    rendition_cost,
    rendition_ladder,
)
from tempo.models.tiny import (
    _write_generation_config,
    _write_processor_files,
    _write_tokenizer_files,
    build_tiny_tokenizer,
)
from tempo.streaming.synthetic import write_test_video
from tempo.tools.cli import main
from transformers import AutoModelForImageTextToText, Qwen3VLConfig, Qwen3VLForConditionalGeneration

from .conftest import make_segment


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_qwen3vl(tmp_path_factory.mktemp("qwen") / "qwen3-vl-tiny", seed=0)


@pytest.fixture(scope="module")
def qwen(qwen_dir: Path) -> Qwen3VLFamily:
    return Qwen3VLFamily.load(qwen_dir, device="cpu")


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_video(tmp_path_factory.mktemp("video") / "clip.mp4", duration=21.0, fps=10.0, size=(160, 96))


def test_the_tiny_factory_writes_the_released_qwen3vl_layout_that_auto_classes_load(qwen_dir: Path) -> None:
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "preprocessor_config.json",
        "video_preprocessor_config.json",
        "generation_config.json",
    ):
        assert (qwen_dir / name).is_file(), name
    assert json.loads((qwen_dir / "config.json").read_text())["model_type"] == "qwen3_vl"
    assert checkpoint_family(qwen_dir) == FAMILY
    net = AutoModelForImageTextToText.from_pretrained(qwen_dir)
    assert isinstance(net, Qwen3VLForConditionalGeneration)


def test_rendition_ladder_prices_in_qwen3vl_tokens_and_never_exceeds_the_allocation() -> None:
    ladder = rendition_ladder(8, 256, 512)
    assert ladder[-1].tokens == rendition_cost(8, 256, 512) == 4 * 8 * 16  # (F/2)(H/32)(W/32)
    assert ladder[0].frames == 1 and ladder[0].tokens == 2  # one frame on a one-token-high grid
    for k in range(0, 600, 7):
        r = pick_rendition(k, ladder)
        if k < ladder[0].tokens:
            assert r is None
        else:
            assert r is not None and r.tokens <= k and r.tokens == rendition_cost(r.frames, r.height, r.width)
            assert not [x for x in ladder if r.tokens < x.tokens <= k]  # the costliest that fits


def test_rendition_cost_equals_the_models_own_visual_token_count(qwen: Qwen3VLFamily) -> None:
    seg = make_segment(0, size=(96, 160))
    frames = qwen.processor.compressor_frames(seg.frames)
    for r in rendition_ladder(frames.shape[0], frames.shape[1], frames.shape[2]):
        clip = render_clip(0, frames, seg.timestamps, r)
        patches, grid, prompt = clip_inputs(qwen.processor, clip)
        with torch.inference_mode():
            feats = qwen.network.model.get_video_features(
                qwen.processor.normalize(patches), torch.tensor([grid]), return_dict=True
            )
        assert sum(int(f.shape[0]) for f in feats.pooler_output) == r.tokens  # the vision tower's own count
        assert prompt.count("<|video_pad|>") == r.tokens


def test_ask_json_in_qwen3vl_tokens_with_renditions_and_stream_time_tags(
    qwen_dir: Path, qwen: Qwen3VLFamily, video: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "ask",
            str(video),
            "What is shown?",
            "--model",
            str(qwen_dir),
            "--budget",
            "40",
            "--json",
            "--max-new-tokens",
            "4",
            "--sampling",
            "stream",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == TurnResult.__required_keys__
    assert (out["family"], out["tokens_unit"]) == ("qwen3-vl", "qwen3-vl visual tokens")
    rows = out["segments"]
    assert all(set(r) == TimelineRow.__required_keys__ for r in rows)
    assert out["tokens"] == sum(r["tokens"] for r in rows) <= 40
    for r in rows:
        rd = r["rendition"]
        assert rd is not None and r["tokens"] == rendition_cost(rd["frames"], rd["height"], rd["width"])

    # The prompt's time tags are the kept frames' stream times (mean of each temporal pair).
    from tempo.streaming import SamplingConfig, iter_segments

    segs = list(iter_segments(str(video), config=SamplingConfig(sampling="stream")))
    clips = []
    for seg, row in zip(segs, rows, strict=True):
        frames = qwen.processor.compressor_frames(seg.frames)
        ladder = rendition_ladder(frames.shape[0], frames.shape[1], frames.shape[2])
        rend = next(x for x in ladder if x.to_dict() == row["rendition"])
        clips.append(render_clip(seg.index, frames, seg.timestamps, rend))
    text = qwen.tokenizer.decode(
        qwen.build_inputs("What is shown?", clips)["input_ids"][0].tolist(), skip_special_tokens=False
    )
    tags = [float(t) for t in re.findall(r"<(\d+\.\d) seconds>", text)]
    expected = []
    for clip in clips:
        times = list(clip.frame_times) + ([clip.frame_times[-1]] if len(clip.frame_times) % 2 else [])
        expected += [round((times[i] + times[i + 1]) / 2, 1) for i in range(0, len(times), 2)]
        assert set(clip.frame_times) <= set(segs[clip.index].timestamps.tolist())  # real stream times
    assert tags == pytest.approx(expected, abs=0.051)
    assert tags == sorted(tags)  # kept segments in time order


def test_router_scores_rules_in_the_same_forward_as_separate_passes(qwen: Qwen3VLFamily) -> None:
    assert isinstance(qwen, ModelFamily)  # the seam the engine calls
    segs = [make_segment(i) for i in range(3)]
    both = qwen.score_segments(segs, ["a red car", "a person walking"])
    alone = qwen.score_segments(segs, ["a person walking"])
    assert both.shape == (3, 2) and np.all((both > 0) & (both < 1))
    np.testing.assert_allclose(both[:, 1], alone[:, 0], atol=1e-4)
    scores, memory = qwen.compress(segs, "a red car")
    np.testing.assert_allclose(scores, both[:, 0], atol=1e-6)
    assert memory.shape == (3, 0, qwen.memory_dim)


def test_plan_drops_segments_given_less_than_the_smallest_rendition() -> None:
    ladders = [rendition_ladder(8, 256, 512)] * 5
    counts, rends = plan_renditions(np.array([0.1, 0.9, 0.2, 0.5, 0.3]), ladders, budget=6, min_tokens=4)
    assert sum(r.tokens for r in rends if r is not None) <= 6
    assert any(r is None for r in rends)
    assert all(r is None or r.tokens <= k for r, k in zip(rends, counts, strict=True))


def test_a_qwen3vl_directory_written_by_transformers_at_another_size_loads_and_answers(tmp_path: Path) -> None:
    tok = build_tiny_tokenizer()
    ids = {
        n: tok.token_to_id(t)
        for n, t in (
            ("image_token_id", "<|image_pad|>"),
            ("video_token_id", "<|video_pad|>"),
            ("vision_start_token_id", "<|vision_start|>"),
            ("vision_end_token_id", "<|vision_end|>"),
        )
    }
    config = Qwen3VLConfig(
        text_config={
            "vocab_size": tok.get_vocab_size(),
            "hidden_size": 96,
            "intermediate_size": 160,
            "num_hidden_layers": 3,
            "num_attention_heads": 6,
            "num_key_value_heads": 3,
            "head_dim": 16,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1e6,
                "mrope_section": [2, 3, 3],
                "mrope_interleaved": True,
            },
            "tie_word_embeddings": True,
        },
        vision_config={
            "depth": 1,
            "hidden_size": 48,
            "intermediate_size": 96,
            "num_heads": 3,
            "out_hidden_size": 96,
            "num_position_embeddings": 16,
            "deepstack_visual_indexes": [0],
        },
        tie_word_embeddings=True,
        **ids,
    )
    torch.manual_seed(1)
    Qwen3VLForConditionalGeneration(config).save_pretrained(tmp_path)
    _write_tokenizer_files(tok, tmp_path)
    _write_processor_files(tmp_path)
    _write_generation_config(tok, tmp_path)
    fam = load_model_family(tmp_path, device="cpu")
    assert isinstance(fam, Qwen3VLFamily) and fam.memory_dim == 96
    segs = [make_segment(i) for i in range(2)]
    assert fam.score_segments(segs, ["q"]).shape == (2, 1)
    frames = fam.processor.compressor_frames(segs[0].frames)
    clip = render_clip(0, frames, segs[0].timestamps, rendition_ladder(*frames.shape[:3])[-1])
    pieces: list[str] = []
    text = fam.answer_clips("What?", [clip], max_new_tokens=3, on_text=pieces.append)
    assert "".join(pieces) == text


def test_router_must_be_qwen3vl_and_tempo_takes_no_router(qwen_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "tempo_qwen"}))
    with pytest.raises(CheckpointError, match="not a Qwen3-VL checkpoint"):
        Qwen3VLFamily.load(qwen_dir, router=tmp_path, device="cpu")
    with pytest.raises(CheckpointError, match="--router is for Qwen3-VL"):
        load_model_family(tmp_path, router=qwen_dir)


def _ask_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["ask", *argv, "--json", "--budget", "40", "--max-new-tokens", "4"]) == 0
    return json.loads(capsys.readouterr().out)


def test_memory_mode_equals_reference_mode_for_at_most_k_segments(
    qwen_dir: Path, video: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    opts = ["--model", str(qwen_dir)]
    assert main(["ingest", str(video), "--stream", "open-mem", *opts, "--redis-url", redis_url]) == 0
    capsys.readouterr()
    memory = _ask_json(
        capsys, "--stream", "open-mem", "What is shown?", *opts, "--redis-url", redis_url, "--top-k", "50"
    )
    reference = _ask_json(capsys, str(video), "What is shown?", *opts, "--sampling", "stream")
    assert (memory["family"], memory["tokens_unit"]) == ("qwen3-vl", "qwen3-vl visual tokens")
    keys = ("index", "start", "end", "tokens", "kind", "rendition")
    assert [{k: r[k] for k in keys} for r in memory["segments"]] == [
        {k: r[k] for k in keys} for r in reference["segments"]
    ]
    assert [r["relevance"] for r in memory["segments"]] == pytest.approx(
        [r["relevance"] for r in reference["segments"]], abs=1e-4
    )
    assert memory["answer"] == reference["answer"] and memory["tokens"] == reference["tokens"] <= 40


def test_a_stream_written_by_one_family_is_refused_by_the_other_in_one_sentence(
    qwen_dir: Path, tiny_dir: Path, video: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "ingest",
                str(video),
                "--stream",
                "open-tempo",
                "--model",
                str(tiny_dir),
                "--redis-url",
                redis_url,
                "--max-segments",
                "2",
            ]
        )
        == 0
    )
    capsys.readouterr()
    rc = main(["ask", "--stream", "open-tempo", "What?", "--model", str(qwen_dir), "--redis-url", redis_url])
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]  # (before it: transformers' weight-loading bar)
    assert rc != 0 and "Traceback" not in err and last.startswith("tempo: error: stream 'open-tempo'")
    assert "ingested by the tempo family and this model is qwen3-vl" in last


def test_monitoring_rules_are_scored_by_the_qwen3vl_router_at_ingest(
    qwen_dir: Path, video: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--redis-url", redis_url]
    assert main(["rules", "add", "open-rules", "a red car appears", "--enter", "0.01", "--exit", "0.005", *db]) == 0
    assert main(["ingest", str(video), "--stream", "open-rules", "--model", str(qwen_dir), *db]) == 0
    capsys.readouterr()
    assert main(["alerts", "open-rules", "--json", *db]) == 0
    alerts = json.loads(capsys.readouterr().out)["alerts"]
    # Every router score is in (0, 1), so a rule entering at 0.01 opens on the first two segments.
    assert alerts and alerts[0]["first_segment"] == 0 and 0.01 <= alerts[0]["peak"] < 1.0


def test_langchain_tools_answer_from_a_qwen3vl_stream(qwen_dir: Path, video: Path, redis_url: str) -> None:
    from tempo.service import TempoService
    from tempo.tools.langchain_tools import tempo_tools

    service = TempoService(model=str(qwen_dir), redis_url=redis_url)
    service.ingest(str(video), "open-tools", progress=False, max_segments=3)
    tools = {t.name: t for t in tempo_tools(service)}
    out = tools["ask_video"].invoke({"question": "What is shown?", "stream": "open-tools"})
    result = json.loads(out) if isinstance(out, str) else out
    assert result["stream"] == "open-tools" and isinstance(result["answer"], str)
    assert all(r["rendition"] is not None for r in result["evidence"])  # rows priced in renditions
    streams = json.loads(tools["list_streams"].invoke({}))["streams"]
    assert {"name": "open-tools", "family": "qwen3-vl"}.items() <= next(
        s for s in streams if s["name"] == "open-tools"
    ).items()
