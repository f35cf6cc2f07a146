"""Renditions priced as a remote answerer's server pays for them (issue 23): every frame an image,
resized by the server's Qwen3-VL image processor, wrapped in two special tokens. The cost model is
checked against transformers' own smart_resize and image processor (the PIL backend `transformers
serve` runs here); test_transformers_serve.py checks it against a real server's prompt count."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from tempo.engine.open_recall import price_renditions
from tempo.engine.recall import AllocationPlan
from tempo.engine.renditions import fit_anchors, plan_renditions
from tempo.models.errors import CheckpointError
from tempo.models.qwen3vl_family import IMAGE_TOKENS_UNIT, TOKENS_UNIT, Qwen3VLFamily
from tempo.models.qwen3vl_tiny import write_tiny_qwen3vl
from tempo.models.remote_answer import RemoteAnswerer
from tempo.models.renditions import ImagePricing, pick_rendition, render_clip, rendition_cost, rendition_ladder
from tempo.streaming.synthetic import write_test_video
from tempo.tools.cli import main
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil, smart_resize

from .conftest import make_segment

QWEN3VL = ImagePricing()  # Qwen3-VL's released preprocessor_config.json: 65536..16777216 px, patch 16, merge 2
BOUNDS = [(65536, 16777216), (2048, 32768), (56 * 56, 28 * 28 * 1280), (32 * 32, 32 * 32 * 4), (0, 10**9)]
SIDES = [1, 7, 16, 31, 32, 33, 47, 48, 63, 64, 96, 100, 160, 255, 256, 288, 511, 512, 720, 1080, 1920, 4000]


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_qwen3vl(tmp_path_factory.mktemp("pricing") / "qwen3vl", seed=0, embedder=False)


def test_the_size_is_transformers_smart_resize_for_many_sizes_and_bounds() -> None:
    for (lo, hi), h, w in itertools.product(BOUNDS, SIDES, SIDES):
        if max(h, w) / min(h, w) > 200:
            with pytest.raises(ValueError, match="aspect ratio"):
                ImagePricing(min_pixels=lo, max_pixels=hi).size(h, w)
            continue
        expected = smart_resize(h, w, factor=32, min_pixels=lo, max_pixels=hi)
        assert ImagePricing(min_pixels=lo, max_pixels=hi).size(h, w) == expected, (lo, hi, h, w)


def test_image_tokens_equal_the_image_processors_own_count() -> None:
    """(H'/32)(W'/32) pads from the processor's image_grid_thw, plus <|vision_start|> and <|vision_end|>."""
    rng = np.random.default_rng(0)
    for lo, hi in BOUNDS[:4]:
        proc = Qwen2VLImageProcessorPil(patch_size=16, merge_size=2, size={"shortest_edge": lo, "longest_edge": hi})
        sizes = [(32, 32), (32, 64), (64, 32), (96, 160), (256, 512), (288, 512), (720, 1280), (33, 47)]
        images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
        grids = proc(images=images, return_tensors="np")["image_grid_thw"]
        for (h, w), grid in zip(sizes, grids, strict=True):
            assert grid[0] == 1  # every image is a temporal patch of its own
            assert ImagePricing(min_pixels=lo, max_pixels=hi).image_tokens(h, w) == int(grid.prod()) // 4 + 2


def test_pricing_is_read_from_the_checkpoint_as_transformers_reads_it(qwen_dir: Path, tmp_path: Path) -> None:
    proc = Qwen2VLImageProcessorPil.from_pretrained(qwen_dir)
    pricing = ImagePricing.from_dir(qwen_dir)
    assert (pricing.min_pixels, pricing.max_pixels) == (proc.size["shortest_edge"], proc.size["longest_edge"])
    assert pricing.factor == proc.patch_size * proc.merge_size == 32
    # The legacy top-level keys override `size`, as transformers' processor does.
    raw = json.loads((qwen_dir / "preprocessor_config.json").read_text())
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({**raw, "min_pixels": 4096, "max_pixels": 65536}))
    legacy = Qwen2VLImageProcessorPil.from_pretrained(tmp_path)
    pricing = ImagePricing.from_dir(tmp_path)
    assert (pricing.min_pixels, pricing.max_pixels) == (legacy.size["shortest_edge"], legacy.size["longest_edge"])
    assert (pricing.min_pixels, pricing.max_pixels) == (4096, 65536)


def test_video_and_image_costs_of_the_same_rendition() -> None:
    assert rendition_cost(8, 256, 512) == 4 * 8 * 16  # a video: temporal patches of two frames
    assert rendition_cost(8, 256, 512, images=QWEN3VL) == 8 * (8 * 16 + 2)  # eight images, each wrapped
    assert rendition_cost(1, 32, 64, images=QWEN3VL) == 6 * 12 + 2  # scaled up past 65536 px: 192 × 384


def test_image_ladder_sizes_are_kept_by_the_server_and_never_exceed_the_allocation() -> None:
    for pricing in (QWEN3VL, ImagePricing(min_pixels=2048, max_pixels=32768), ImagePricing(max_pixels=128 * 32 * 32)):
        ladder = rendition_ladder(8, 256, 512, images=pricing)
        assert {r.frames for r in ladder} == set(range(1, 9))  # every frame costs: every count is offered
        for r in ladder:
            assert pricing.size(r.height, r.width) == (r.height, r.width)  # sent as the server reads it
            assert r.tokens == r.frames * pricing.image_tokens(r.height, r.width)
        assert len({(r.frames, r.tokens) for r in ladder}) == len(ladder)  # one (the largest) per cost
        for k in range(0, ladder[-1].tokens + 50, 13):
            r = pick_rendition(k, ladder)
            assert (r is None) == (k < ladder[0].tokens)
            if r is not None:
                assert r.tokens <= k and not [x for x in ladder if r.tokens < x.tokens <= k]
    smallest = rendition_ladder(8, 256, 512, images=QWEN3VL)[0]
    assert (smallest.frames, smallest.height, smallest.width, smallest.tokens) == (1, 192, 384, 74)  # the minimum


def test_ata_over_image_ladders_stays_within_the_budget() -> None:
    rng = np.random.default_rng(1)
    ladders = [rendition_ladder(8, 256, 512, images=QWEN3VL) for _ in range(12)]
    for budget in (50, 66, 200, 700, 1500, 8192, 20000):
        scores = rng.random(12).astype(np.float32)
        _, picked = plan_renditions(scores, ladders, budget=budget, min_tokens=0)
        assert sum(r.tokens for r in picked if r is not None) <= budget


def test_a_remote_answerer_prices_renditions_as_images(qwen_dir: Path) -> None:
    fam = Qwen3VLFamily.load(qwen_dir)
    seg = make_segment(0, frames=4, size=(96, 160))
    frames = fam.processor.compressor_frames(seg.frames)
    assert fam.tokens_unit == TOKENS_UNIT and fam.image_pricing is None
    assert fam.rendition_ladder(frames) == rendition_ladder(*frames.shape[:3])
    fam.remote = RemoteAnswerer("http://127.0.0.1:9/v1", "m")
    assert fam.tokens_unit == IMAGE_TOKENS_UNIT and fam.image_pricing == ImagePricing.from_dir(qwen_dir)
    ladder = fam.rendition_ladder(frames)
    assert ladder == rendition_ladder(*frames.shape[:3], images=ImagePricing.from_dir(qwen_dir))
    for r in ladder:  # the rendered frames are the sizes priced
        assert render_clip(0, frames, seg.timestamps, r).frames.shape == (r.frames, r.height, r.width, 3)
    fam.remote = RemoteAnswerer("http://127.0.0.1:9/v1", "m", pricing=QWEN3VL)  # a server's own processor
    assert fam.image_pricing == QWEN3VL and fam.rendition_ladder(frames)[0].tokens >= 65536 // 32**2 + 2


def test_memory_mode_anchors_and_candidates_stay_within_the_budget(qwen_dir: Path) -> None:
    """Memory mode gives every anchor its smallest rendition: priced as images (66+ tokens each for
    Qwen3-VL) the anchors are thinned on a power-of-two grid to half the budget, and counted as dropped."""
    fam = Qwen3VLFamily.load(qwen_dir)
    fam.remote = RemoteAnswerer("http://127.0.0.1:9/v1", "m", pricing=QWEN3VL)
    n = 24
    segments = [make_segment(i, frames=4, size=(64, 96)) for i in range(n)]
    candidate = np.zeros(n, dtype=bool)
    candidate[[3, 10, 17]] = True
    plan = AllocationPlan(
        indices=np.arange(n, dtype=np.int64),
        starts=np.array([s.start for s in segments]),
        ends=np.array([s.end for s in segments]),
        relevance=np.where(candidate, [0.1 * (i % 7) for i in range(n)], np.nan),
        counts=np.zeros(n, dtype=np.int64),
        candidate=candidate,
    )
    smallest = fam.rendition_ladder(fam.processor.compressor_frames(segments[0].frames))[0].tokens
    for budget in (100, 400, 1000, 4000):
        rungs = [fam.rendition_ladder(fam.processor.compressor_frames(s.frames)) for s in segments]
        priced = price_renditions(rungs, plan, budget=budget, min_tokens=4)
        assert int(priced.counts.sum()) <= budget
        kept = [i for i in np.flatnonzero(~candidate) if priced.renditions[i] is not None]
        assert smallest * len(kept) <= budget // 2
        assert priced.anchors_dropped == n - 3 - len(kept)
        for i, r in enumerate(priced.renditions):
            assert r is None or priced.counts[i] == r.tokens


def test_fit_anchors_thins_on_a_power_of_two_grid() -> None:
    idx, cost = np.arange(8), np.full(8, 10)
    assert fit_anchors(idx, cost, 160).all()  # 80 tokens fit in half of 160
    assert np.flatnonzero(fit_anchors(idx, cost, 80)).tolist() == [0, 2, 4, 6]  # stride 2: 40 ≤ 40
    assert np.flatnonzero(fit_anchors(idx, cost, 20)).tolist() == [0]  # stride 8
    assert not fit_anchors(idx, cost, 10).any()  # not even one fits in 5
    assert fit_anchors(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 0).shape == (0,)


@pytest.mark.parametrize(
    ("config", "says"),
    [
        (None, "the file is missing"),
        ("{not json", "Expecting property name"),
        ({"size": {"shortest_edge": "big", "longest_edge": 9}}, "must be integers"),
        ({"size": {"shortest_edge": 4096, "longest_edge": 1024}}, "no image fits: 4096..1024 pixels"),
    ],
)
def test_a_checkpoint_that_cannot_price_images_is_refused_in_one_sentence(
    qwen_dir: Path, tmp_path: Path, capsys, config: object, says: str
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in qwen_dir.iterdir():
        if f.name != "preprocessor_config.json":
            (bad / f.name).symlink_to(f)
    if config is not None:
        text = config if isinstance(config, str) else json.dumps(config)
        (bad / "preprocessor_config.json").write_text(text)
    with pytest.raises(CheckpointError, match=says):
        ImagePricing.from_dir(bad)
    video = write_test_video(tmp_path / "v.mp4", duration=2.0, fps=4.0, size=(64, 64))
    args = [
        "ask",
        str(video),
        "Q?",
        "--model",
        str(bad),
        "--answer-url",
        "http://127.0.0.1:9/v1",
        "--answer-model",
        "m",
    ]
    assert main(args) != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and says in err  # before any model loads
