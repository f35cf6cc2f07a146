"""Open-weights family cost: router seconds per segment and answer seconds per question (issue 23).

    python bench/open_weights.py [--size tiny|2b|8b] [--repeats 3] [--max-new-tokens 16]
                                 [--device cuda] [--dtype bfloat16] [--json]

Builds a randomly initialised Qwen3-VL with the dimensions of --size (weights do not change compute)
behind the production `Qwen3VLFamily` paths: `score_segments` (the router: processor, vision tower,
LM, Yes/No direction) for one segment of 8 frames at 512×256, and `answer_clips` (the answerer's
prefill plus --max-new-tokens greedy tokens) for one question over that segment at its full rendition
(4 · 8 · 16 = 512 Qwen3-VL visual tokens). On CPU, `--size 2b` is the real-size check (about 9 GB of
RAM in float32); the GPU command for a machine with one H100 is

    python bench/open_weights.py --size 8b --device cuda --dtype bfloat16 --repeats 5 --json

`--anchors` measures instead what a question over a long stream spends on its anchors (every segment
that is not a candidate enters as its smallest rendition, one small frame): a generated file of
--minutes at --source-size and --source-fps is ingested with the tiny Qwen3-VL into a private Redis,
then every segment's anchor is rendered for an all-anchor plan (`engine.open_recall.plan_clips`,
the answer path's own code) from the thumbnails ingest stored, and again with them removed, i.e. read
from the file as the memory did before it stored them; side by side, --repeats times each:

    python bench/open_weights.py --anchors --minutes 30 --source-size 320x180 --source-fps 25 --json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from compressor import QWEN3_VL_2B_TEXT, QWEN3_VL_2B_VISION
from tempo.models.compressor import TempoCompressor
from tempo.models.config import TempoInferenceConfig
from tempo.models.device import attention_implementation, pick_device, pick_dtype
from tempo.models.processor import SegmentVideoProcessor
from tempo.models.qwen3vl_family import Qwen3VLFamily, _Router
from tempo.models.renditions import render_clip, rendition_ladder
from tempo.models.text import TextTokenizer
from tempo.models.tiny import (
    _write_generation_config,
    _write_processor_files,
    _write_tokenizer_files,
    build_tiny_tokenizer,
    tiny_svlm_config,
)
from tempo.streaming.segment import Segment, SourceInfo
from transformers import Qwen3VLForConditionalGeneration

# Qwen/Qwen3-VL-8B-Instruct's architecture (its config.json); only the shapes matter for speed.
QWEN3_VL_8B_TEXT = {
    **QWEN3_VL_2B_TEXT,
    "hidden_size": 4096,
    "intermediate_size": 12288,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "tie_word_embeddings": False,
}
QWEN3_VL_8B_VISION = {
    **QWEN3_VL_2B_VISION,
    "depth": 27,
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "out_hidden_size": 4096,
    "deepstack_visual_indexes": [8, 16, 24],
}
SIZES = {"tiny": ({}, {}), "2b": (QWEN3_VL_2B_TEXT, QWEN3_VL_2B_VISION), "8b": (QWEN3_VL_8B_TEXT, QWEN3_VL_8B_VISION)}


def build_family(size: str, device: str | None, dtype: str | None, directory: Path) -> Qwen3VLFamily:
    """A random Qwen3-VL of `size` behind `Qwen3VLFamily` (tokenizer and processor files in `directory`)."""
    dev, tok = pick_device(device), build_tiny_tokenizer()
    dt = pick_dtype(dtype, dev)
    config = tiny_svlm_config(tok)
    text, vision = SIZES[size]
    for key, value in text.items():
        setattr(config.text_config, key, value)
    for key, value in vision.items():
        setattr(config.vision_config, key, value)
    for cfg in (config, config.text_config, config.vision_config):
        cfg._attn_implementation = attention_implementation(dev)
    _write_tokenizer_files(tok, directory)
    _write_processor_files(directory)
    _write_generation_config(tok, directory)
    if size != "tiny":  # the released processor: transformers' defaults (patch 16, merge 2, no tiny pixel bounds)
        (directory / "preprocessor_config.json").unlink()
        (directory / "video_preprocessor_config.json").write_text(json.dumps({"patch_size": 16, "merge_size": 2}))
    torch.manual_seed(0)
    with torch.device(dev):
        network = Qwen3VLForConditionalGeneration._from_config(config, dtype=dt).eval()
    router = _Router.__new__(_Router)
    router.tokenizer = TextTokenizer.from_dir(directory)
    router.processor = SegmentVideoProcessor.from_dir(directory)
    router.direction = torch.randn(config.text_config.hidden_size, device=dev)
    router.scorer = TempoCompressor.around(network.model, config, num_tokens=0)
    router.dtype, router.device = dt, dev
    return Qwen3VLFamily(
        network,
        model_dir=directory,
        router=router,
        config=TempoInferenceConfig(),
        device=dev,
        dtype=dt,
        router_dir=directory,
    )


def one_segment() -> Segment:
    rng = np.random.default_rng(0)
    return Segment(
        stream_id="bench",
        index=0,
        start=0.0,
        end=4.0,
        timestamps=np.arange(8) / 2.0,
        frames=rng.integers(0, 256, (8, 256, 512, 3), dtype=np.uint8),
        source=SourceInfo(uri="bench://", kind="file", live=False),
        sample_fps=2.0,
    )


def _timed(fn: object, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return out


def anchors(args: argparse.Namespace) -> dict[str, object]:
    """Seconds to render every anchor of a long stream from stored thumbnails vs from the file."""
    import redis
    from tempo.engine.open_recall import anchor_thumbnail, ladders, plan_clips, records_of
    from tempo.engine.recall import AllocationPlan
    from tempo.memory.embedded import spawn_redis_server
    from tempo.memory.replay import load_segments
    from tempo.models.qwen3vl_tiny import write_tiny_qwen3vl
    from tempo.service import TempoService
    from tempo.streaming.synthetic import write_test_video

    width, height = (int(v) for v in args.source_size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        video = work / "long.mp4"
        t0 = time.perf_counter()
        print(f"writing {args.minutes:g} min of {width}x{height} at {args.source_fps:g} fps ...", flush=True)
        write_test_video(video, duration=args.minutes * 60.0, fps=args.source_fps, size=(width, height),
                         texture=True, preset="ultrafast", keyint=int(10 * args.source_fps))
        write_s = time.perf_counter() - t0
        proc, url = spawn_redis_server(work, appendonly=False)
        try:
            service = TempoService(model=str(write_tiny_qwen3vl(work / "qwen", seed=0)), redis_url=url,
                                   home=work / "home", device="cpu")
            t0 = time.perf_counter()
            service.ingest(str(video), "long", progress=True)
            ingest_s = time.perf_counter() - t0
            store, fam = service.store, service.model
            info = store.stream_info("long")
            indices = list(range(info.first, info.committed + 1))
            records = records_of(store, info, indices)
            smallest = [ladder[0] for ladder in ladders(fam, records)]
            n = len(indices)
            plan = AllocationPlan(
                indices=np.asarray(indices, np.int64),
                starts=np.array([r.start for r in records]),
                ends=np.array([r.end for r in records]),
                relevance=np.full(n, np.nan),
                counts=np.array([r.tokens for r in smallest], np.int64),
                candidate=np.zeros(n, bool),
                renditions=tuple(smallest),
            )
            thumbs = store.anchor_thumbnails("long", indices)
            stored = sum(len(t) for t in thumbs if t)
            sample = load_segments(store, info, indices[:16])
            t0 = time.perf_counter()
            for seg in sample:  # what ingest adds per segment to make its thumbnail
                anchor_thumbnail(fam.processor, seg)
            thumb_ms = 1000 * (time.perf_counter() - t0) / len(sample)

            def from_thumbnails() -> None:
                plan_clips(fam, store, info, plan)[0]

            def from_file() -> None:
                plan_clips(fam, store, info, plan)[0]

            fast = _timed(from_thumbnails, args.repeats)
            same = [c.frames for c in plan_clips(fam, store, info, plan)[0]]
            client = redis.Redis.from_url(url)
            for i in indices:
                client.hdel(store.keys.segment("long", i), "a")
            print(f"reading {n} anchors from the file ...", flush=True)
            slow = _timed(from_file, args.repeats)
            equal = all(np.array_equal(a, c.frames) for a, c in zip(same, plan_clips(fam, store, info, plan)[0],
                                                                      strict=True))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return {
        "mode": "anchors",
        "minutes": args.minutes,
        "source": f"{width}x{height} at {args.source_fps:g} fps (h264)",
        "segments": n,
        "anchor_size": f"{smallest[0].width}x{smallest[0].height} (1 frame, {smallest[0].tokens} tokens)",
        "thumbnail_bytes_per_segment": round(stored / max(1, n)),
        "thumbnail_ms_per_segment_at_ingest": round(thumb_ms, 2),
        "thumbnails_s_per_question": round(statistics.median(fast), 4),
        "file_reread_s_per_question": round(statistics.median(slow), 4),
        "ratio": round(statistics.median(slow) / max(1e-9, statistics.median(fast)), 1),
        "same_pixels": equal,
        "write_video_s": round(write_s, 1),
        "ingest_s": round(ingest_s, 1),
        "machine": platform.machine(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny", help="model dimensions (default tiny)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each step after one warm-up")
    parser.add_argument("--max-new-tokens", type=int, default=16, help="answer length (default 16, as evaluation)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    parser.add_argument("--dtype", default=None, help="float32 / bfloat16 (default: bfloat16 on CUDA)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--anchors", action="store_true", help="measure anchors: stored thumbnails vs file re-read")
    parser.add_argument("--minutes", type=float, default=30.0, help="--anchors: length of the generated file")
    parser.add_argument("--source-size", default="320x180", help="--anchors: WxH of the generated file")
    parser.add_argument("--source-fps", type=float, default=25.0, help="--anchors: frame rate of the generated file")
    args = parser.parse_args()
    if args.anchors:
        out = anchors(args)
        print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fam = build_family(args.size, args.device, args.dtype, Path(tmp))
        seg = one_segment()
        frames = fam.processor.compressor_frames(seg.frames)
        full = rendition_ladder(frames.shape[0], frames.shape[1], frames.shape[2], factor=fam.factor)[-1]
        clip = render_clip(0, frames, seg.timestamps, full)

        def route() -> None:
            fam.score_segments([seg], ["What happens?"])

        def answer() -> None:
            fam.answer_clips("What happens?", [clip], max_new_tokens=args.max_new_tokens)

        route(), answer()  # warm-up
        r, a = _timed(route, args.repeats), _timed(answer, args.repeats)
    result = {
        "size": args.size,
        "device": str(fam.device),
        "dtype": str(fam.dtype).removeprefix("torch."),
        "machine": platform.machine(),
        "segment": "8 frames 512x256",
        "answer_visual_tokens": full.tokens,
        "router_s_per_segment": round(statistics.median(r), 4),
        "answer_s_per_question": round(statistics.median(a), 4),
        "max_new_tokens": args.max_new_tokens,
    }
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
