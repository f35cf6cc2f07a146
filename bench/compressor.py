"""Compressor throughput in segments per second (query-aware SVLM pass: processor + vision + LM + router).

    python bench/compressor.py [--model DIR] [--segments 64] [--batch-sizes 1,4,8,16] [--size 512x288]
                               [--real-size] [--device cuda] [--dtype bfloat16] [--json]

Default: the tiny checkpoint (written to a temporary folder unless --model is given) on CPU. With
the tiny model the number only shows our per-segment overhead (processor, batching, Python), not
model compute. `--real-size` builds a randomly initialised compressor with the dimensions of
Qwen3-VL-2B (vision 24 × 1024, LM 28 × 2048, M = 128) and the released processor budget; weights do
not change compute, so on one H100 with flash-attention and bfloat16 this is the number to compare
with the target of ≥ 20 segments/s (80× realtime at 2 fps). Segments are 8 random frames of --size
(the sampler's 512-px output for 16:9 video is 512×288).
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
from tempo.models import TempoInferenceConfig, TempoModel
from tempo.models.compressor import build_compressor_inputs
from tempo.models.configuration_tempo import TempoConfig
from tempo.models.device import attention_implementation, pick_device, pick_dtype
from tempo.models.modeling_tempo import TempoForCausalLM
from tempo.models.processor import SegmentVideoProcessor, VideoProcessorConfig
from tempo.models.tempo_family import RelevanceHead
from tempo.models.text import TextTokenizer
from tempo.models.tiny import CHAT_TEMPLATE, TINY_LLM, build_tiny_tokenizer, tiny_svlm_config, write_tiny_checkpoint
from tempo.streaming.segment import Segment, SourceInfo

TARGET_SEGMENTS_PER_S = 20.0  # one H100, real Qwen3-VL-2B size, bfloat16 + flash-attention

# Qwen/Qwen3-VL-2B-Instruct's architecture (its config.json); only the shapes matter for speed.
QWEN3_VL_2B_TEXT = {
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "max_position_embeddings": 262144,
    "rope_parameters": {
        "rope_type": "default",
        "rope_theta": 5000000.0,
        "mrope_section": [24, 20, 20],
        "mrope_interleaved": True,
    },
    "tie_word_embeddings": True,
}
QWEN3_VL_2B_VISION = {
    "depth": 24,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_heads": 16,
    "out_hidden_size": 2048,
    "num_position_embeddings": 2304,
    "deepstack_visual_indexes": [5, 11, 17],
    "patch_size": 16,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
}
# The released checkpoint's video processor: transformers' Qwen3-VL defaults (patch 16, temporal
# patch 2, merge 2, mean and std 0.5). Its pixel bounds play no part: the release does not let the
# processor resize (the frames come from `compressor_frames`), so the config no longer carries them.
RELEASED_PROCESSOR = VideoProcessorConfig()


def random_segments(n: int, width: int, height: int, frames: int = 8, fps: float = 2.0) -> list[Segment]:
    rng = np.random.default_rng(0)
    src = SourceInfo(uri="bench://random", kind="file", live=False)
    out = []
    for i in range(n):
        start = i * frames / fps
        out.append(
            Segment(
                stream_id="bench",
                index=i,
                start=start,
                end=start + frames / fps,
                timestamps=start + np.arange(frames) / fps,
                frames=rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8),
                source=src,
                sample_fps=fps,
                first_frame_index=i * frames,
            )
        )
    return out


def real_size_model(device: str | None, dtype: str | None, *, attn: str | None = None) -> TempoModel:
    """A random compressor of Qwen3-VL-2B size behind the production `TempoModel.compress` path
    (`attn`: "sdpa" or "flash_attention_2"; default: flash-attention on CUDA when it imports)."""
    dev = pick_device(device)
    dt = pick_dtype(dtype, dev)
    tok = build_tiny_tokenizer()  # token ids only; the vocabulary size of the embedding is the real one
    svlm_config = tiny_svlm_config(tok)
    for key, value in QWEN3_VL_2B_TEXT.items():
        setattr(svlm_config.text_config, key, value)
    for key, value in QWEN3_VL_2B_VISION.items():
        setattr(svlm_config.vision_config, key, value)
    attn = attn or attention_implementation(dev)
    for cfg in (svlm_config, svlm_config.text_config, svlm_config.vision_config):
        cfg._attn_implementation = attn
    config = TempoConfig.from_dict(
        {
            **TINY_LLM,
            "vocab_size": tok.get_vocab_size(),
            "mm_vision_tower_aux_list": ["random"],
            "num_compression_tokens": 128,
            "mm_hidden_size": QWEN3_VL_2B_TEXT["hidden_size"],
        }
    )
    config.svlm_config = svlm_config
    config._attn_implementation = attn
    torch.manual_seed(0)
    with torch.device(dev):  # as load: built in the target dtype, rotary buffers stay float32
        network = TempoForCausalLM._from_config(config, dtype=dt)
    network.eval()
    text = TextTokenizer(tok, chat_template=CHAT_TEMPLATE)  # the Qwen3-VL template the tiny checkpoints ship
    relevance = RelevanceHead(
        yes_id=text.token_id("Yes"), no_id=text.token_id("No"), direction=torch.randn(QWEN3_VL_2B_TEXT["hidden_size"])
    )
    return TempoModel(
        network,
        tokenizer=text,
        svlm_tokenizer=text,
        processor=SegmentVideoProcessor(RELEASED_PROCESSOR),
        relevance=relevance,
        model_dir=Path("."),
        base_dir=Path("."),
        config=TempoInferenceConfig(),
        device=dev,
        dtype=dt,
    )


def measure(model: TempoModel, segments: list[Segment], batch_size: int, runs: int) -> float:
    """Median segments/s of `model.compress` over all segments (one warm-up pass first)."""
    model.compress(segments[:batch_size], "What happens?", batch_size=batch_size)
    rates = []
    for _ in range(runs):
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model.compress(segments, "What happens in this video?", batch_size=batch_size)
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(len(segments) / (time.perf_counter() - t0))
    return statistics.median(rates)


def measure_preprocessing(model: TempoModel, segments: list[Segment], runs: int) -> float:
    """Median segments/s of the CPU side alone (processor + prompt + tokenizer + padding)."""
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        build_compressor_inputs(segments, "What happens in this video?", processor=model.processor,
                                tokenizer=model.svlm_tokenizer, num_memory_tokens=model.num_memory_tokens)
        rates.append(len(segments) / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="checkpoint directory (default: a fresh tiny checkpoint)")
    parser.add_argument("--real-size", action="store_true", help="random compressor of Qwen3-VL-2B size")
    parser.add_argument("--segments", type=int, default=64)
    parser.add_argument("--batch-sizes", default="1,4,8,16")
    parser.add_argument("--size", default="512x288", help="frame WIDTHxHEIGHT (default 512x288)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    width, height = (int(x) for x in args.size.lower().split("x"))
    if args.real_size:
        model, label = real_size_model(args.device, args.dtype), "random Qwen3-VL-2B-size compressor"
    else:
        path = args.model
        if path is None:
            path = write_tiny_checkpoint(Path(tempfile.mkdtemp(prefix="tempo-bench-")) / "tiny")
        model = TempoModel.load(path, device=args.device, dtype=args.dtype)
        label = f"checkpoint {path}"
    segments = random_segments(args.segments, width, height)
    device = (
        torch.cuda.get_device_name(model.device)
        if model.device.type == "cuda"
        else (f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)")
    )
    rows = [
        {"batch_size": bs, "segments_per_s": measure(model, segments, bs, args.runs)}
        for bs in (int(b) for b in args.batch_sizes.split(","))
    ]
    best = max(r["segments_per_s"] for r in rows)
    preprocessing = measure_preprocessing(model, segments, args.runs)
    fps = 2.0
    report = {
        "model": label,
        "device": device,
        "dtype": str(model.dtype).removeprefix("torch."),
        "attention": model.network.compressor.config._attn_implementation,
        "frame_size": [width, height],
        "segments": args.segments,
        "rows": rows,
        "best_segments_per_s": best,
        "realtime_factor_at_2fps": best * 8 / fps,
        "note": (
            "GPU target (>= 20 segments/s, real size, one H100, bf16 + flash-attention) applies to "
            "--real-size on CUDA only; this run is not that configuration."
            if not (args.real_size and model.device.type == "cuda")
            else f"target {TARGET_SEGMENTS_PER_S} segments/s: {'met' if best >= TARGET_SEGMENTS_PER_S else 'NOT met'}"
        ),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{label} on {device}, {report['dtype']}, attention {report['attention']}, frames {width}×{height}")
    for r in rows:
        print(f"  batch {r['batch_size']:>3}: {r['segments_per_s']:8.2f} segments/s")
    print(f"best {best:.2f} segments/s = {report['realtime_factor_at_2fps']:.1f}× realtime at 2 fps")
    print(f"CPU preprocessing alone (processor, prompt, tokenizer): {preprocessing:.1f} segments/s")
    print(report["note"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
