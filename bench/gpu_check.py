"""The first GPU's checks: every GPU path once against the CPU result, then throughput, in one table.

    python bench/gpu_check.py [--dry-run] [--json]      (bench/gpu_check.sh installs and runs it)

Correctness, each against the CPU (tolerances in the table):
- compressor: the tiny checkpoint in bfloat16 on the device vs float32 on the CPU, same segments and
  question: relevance max |Δ| ≤ 0.05, memory tokens relative RMS Δ ≤ 5 % (bfloat16 keeps ~3 digits);
- flash-attention 2 vs SDPA: the real-size compressor (same seed) in bfloat16, relative RMS Δ of
  the memory tokens ≤ 5 %, relevance max |Δ| ≤ 0.05;
- FAISS on the GPU vs the CPU (exact inner product, 20 000 × 1 536): top-10 overlap ≥ 0.99;
- NVDEC + torch resize (`--decode gpu`) vs the exact CPU path (swscale + PIL bicubic), once per GPU
  decoder the machine has (FFmpeg's CUDA hwaccel; PyNvVideoCodec, the `nvdec` extra), per sampled
  frame: mean |Δ| ≤ 2 levels, 99th percentile ≤ 12 (not bit-exact by design, README), and the
  sampled frames' times equal to the CPU path's (both read pts × time base); a decoder the machine
  lacks is a "skipped (reason)" row. On the CPU (`--dry-run`) the torch conversion runs on the CPU
  instead of NVDEC. Its effect on the tiny model: relevance max |Δ| and memory tokens relative RMS Δ,
  compressing PIL vs torch frames.
Throughput: the real-size compressor (Qwen3-VL-2B dimensions, random weights: bench/compressor.py)
in bfloat16, segments/s at batch 1/8/32 with SDPA and with flash-attention (target ≥ 50 on one H100:
200 cameras at one segment per 4 s); decoded frames/s of each GPU decoder (FFmpeg's NVDEC; PyNvVideoCodec
through streaming/nvcodec.py, its device copy included) vs the CPU decoder for 720p and 1080p H.264 and
HEVC. `--dry-run` runs what exists without CUDA (tiny model, CPU, small sizes) so CI keeps it working.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

ROWS: list[dict[str, Any]] = []


def row(check: str, value: str, tolerance: str = "", ok: bool | None = None) -> None:
    ROWS.append({"check": check, "value": value, "tolerance": tolerance,
                 "result": "" if ok is None else ("pass" if ok else "FAIL")})
    print(f"  {check:<44}{value:<34}{tolerance:<22}{ROWS[-1]['result']}", file=sys.stderr, flush=True)


def guarded(name: str, step: Callable[[], None]) -> None:
    """Run one check; an exception becomes a FAIL row (the other checks still run)."""
    try:
        step()
    except Exception as exc:  # reported as a FAIL row, never hidden
        row(name, f"error: {type(exc).__name__}: {str(exc)[:60]}", ok=False)


def segments_from(frames: list[np.ndarray], window: int = 8) -> list[Any]:
    from tempo.streaming.segment import Segment, SourceInfo

    src = SourceInfo(uri="bench://gpu-check", kind="file", live=False)
    out = []
    for i in range(0, len(frames) - window + 1, window):
        times = np.arange(i, i + window) / 2.0
        out.append(Segment("gpu-check", i // window, float(times[0]), float(times[-1]) + 0.5, times,
                           np.stack(frames[i:i + window]), src, 2.0, first_frame_index=i))
    return out


def model_delta(a: tuple[np.ndarray, torch.Tensor], b: tuple[np.ndarray, torch.Tensor]) -> tuple[float, float]:
    """(relevance max |Δ|, memory tokens relative RMS Δ) between two compress results."""
    (s0, m0), (s1, m1) = a, b
    delta = (m1.float() - m0.float())
    return float(np.abs(s1 - s0).max()), float(delta.pow(2).mean().sqrt() / m0.float().pow(2).mean().sqrt())


def write_clip(folder: Path, codec: str, size: tuple[int, int], seconds: float) -> Path:
    from tempo.streaming.synthetic import write_test_video

    name = f"{codec}_{size[1]}p.mkv"
    if codec == "h264":
        return write_test_video(folder / name, duration=seconds, fps=30.0, size=size, bframes=2, keyint=60,
                                texture=True, preset="ultrafast")
    path = folder / name  # HEVC: PyAV's libx265, textured moving pattern
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx265", rate=30, options={"preset": "ultrafast", "x265-params": "log-level=none"})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(int(seconds * 30)):
            frame = av.VideoFrame.from_ndarray(np.roll(base, 4 * i, axis=1), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


GPU_LABELS = {"gpu": "FFmpeg NVDEC", "gpu-nvcodec": "PyNvVideoCodec"}


def gpu_decoder_status() -> list[tuple[str, str | None]]:
    """(decoder, None or why it cannot run here) for each GPU decoder, in `--decode gpu`'s order."""
    from tempo.streaming import gpu, nvcodec

    probes = {"gpu": gpu.hwaccel_unavailable_reason, "gpu-nvcodec": nvcodec.nvcodec_unavailable_reason}
    return [(name, probes[name]()) for name in gpu.GPU_DECODERS]


@contextlib.contextmanager
def only_decoder(name: str) -> Iterator[None]:
    """`--decode gpu` tries only `name` while inside (to check each GPU decoder on the same clip)."""
    from tempo.streaming import gpu

    saved, gpu.GPU_DECODERS = gpu.GPU_DECODERS, (name,)
    try:
        yield
    finally:
        gpu.GPU_DECODERS = saved


def decode_fps(path: Path, decoder: str) -> float:
    """Frames/s decoding the whole clip: "cpu" (FFmpeg, threads), "gpu" (FFmpeg's CUDA hwaccel) or
    "gpu-nvcodec" (PyNvVideoCodec through streaming/nvcodec.py: NVDEC plus the device copy of each frame)."""
    from tempo.streaming.decode import IngestStats
    from tempo.streaming.gpu import cuda_hwaccel
    from tempo.streaming.nvcodec import NvdecFile

    started, frames = time.perf_counter(), 0
    if decoder == "gpu-nvcodec":
        with av.open(str(path)) as container:
            for _t, _frame in NvdecFile(str(path), container.streams.video[0]).open().frames(IngestStats()):
                frames += 1
    else:
        with av.open(str(path), hwaccel=cuda_hwaccel() if decoder == "gpu" else None) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_type = "AUTO"
            for _frame in container.decode(stream):
                frames += 1
    if decoder != "cpu":
        torch.cuda.synchronize()
    return frames / (time.perf_counter() - started)


def check_decode(folder: Path, dry_run: bool, tiny: Any) -> None:
    """Each GPU decoder (or, dry, the torch conversion on the CPU) vs the exact CPU path, and its model effect."""
    from tempo.streaming import SamplingConfig, iter_segments
    from tempo.streaming.convert import FrameConverter
    from tempo.streaming.gpu import TorchFrameConverter

    clip = write_clip(folder, "h264", (640, 360) if dry_run else (1280, 720), 8.0)
    cpu_segments = list(iter_segments(str(clip), config=SamplingConfig(decode="cpu")))
    exact = [f for s in cpu_segments for f in s.frames]
    times = np.concatenate([s.timestamps for s in cpu_segments])
    tolerance = "mean ≤ 2, p99 ≤ 12, same times"
    approx: list[np.ndarray] | None = None
    compared = exact
    if dry_run:
        size = FrameConverter((512, 288)).size
        with av.open(str(clip)) as container:
            frames = list(container.decode(video=0))[::15][: len(exact)]
        approx = [TorchFrameConverter(size, device="cpu")(f) for f in frames]
        compared = [FrameConverter(size)(f) for f in frames]
        mean, p99, top = pixel_delta(compared, approx)
        row("decode: torch conversion on CPU vs PIL", f"mean |Δ| {mean:.2f}, p99 {p99:.0f}, max {top}",
            "mean ≤ 2, p99 ≤ 12", mean <= 2 and p99 <= 12)
    for name, reason in gpu_decoder_status():
        label = f"decode: {GPU_LABELS[name]} vs CPU path"
        if reason is not None or dry_run:
            row(label, f"skipped ({reason or 'dry run'})", tolerance)
            continue
        with only_decoder(name):
            stream = iter_segments(str(clip), config=SamplingConfig(decode="gpu"))
            segments = list(stream)
        frames_gpu = [f for s in segments for f in s.frames]
        if stream.stats.decoder != name or len(frames_gpu) != len(exact):
            row(label, f"decoded by {stream.stats.decoder}, {len(frames_gpu)} of {len(exact)} frames", tolerance, False)
            continue
        same_times = np.array_equal(np.concatenate([s.timestamps for s in segments]), times)
        mean, p99, top = pixel_delta(exact, frames_gpu)
        row(label, f"mean |Δ| {mean:.2f}, p99 {p99:.0f}, max {top}" + ("" if same_times else ", times differ"),
            tolerance, mean <= 2 and p99 <= 12 and same_times)
        approx = approx if approx is not None else frames_gpu
    if approx is None:
        row("decode: effect on the tiny model", "skipped (no GPU decoder ran)", "reported")
        return
    question = "Is there a moving pattern?"
    before = tiny.compress(segments_from(compared), question)
    rel, rms = model_delta(before, tiny.compress(segments_from(approx), question))
    row("decode: effect on the tiny model", f"relevance max |Δ| {rel:.4f}, tokens {100 * rms:.2f} %", "reported")


def pixel_delta(exact: list[np.ndarray], approx: list[np.ndarray]) -> tuple[float, float, int]:
    """(mean, 99th percentile, max) of |Δ| in grey levels between two lists of RGB frames."""
    diff = np.abs(np.stack(exact).astype(int) - np.stack(approx).astype(int))
    return float(diff.mean()), float(np.percentile(diff, 99)), int(diff.max())


def check_compressor(tiny_dir: Path, device: str) -> None:
    from tempo.models import TempoModel

    segments = segments_from([np.random.default_rng(i).integers(0, 256, (288, 512, 3), dtype=np.uint8)
                              for i in range(16)])
    cpu = TempoModel.load(tiny_dir, device="cpu", dtype="float32")
    dev = TempoModel.load(tiny_dir, device=device, dtype="bfloat16")
    rel, rms = model_delta(cpu.compress(segments, "What happens?"), dev.compress(segments, "What happens?"))
    row(f"compressor: tiny bf16 on {device} vs fp32 CPU", f"relevance {rel:.4f}, tokens {100 * rms:.2f} %",
        "≤ 0.05, ≤ 5 %", rel <= 0.05 and rms <= 0.05)


def check_faiss(device: str) -> None:
    import faiss

    if device != "cuda" or not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
        row("faiss: GPU vs CPU", "skipped (faiss without GPU support)", "top-10 overlap ≥ 0.99")
        return
    rng = np.random.default_rng(0)
    base = rng.standard_normal((20_000, 1536)).astype(np.float32)
    queries = rng.standard_normal((100, 1536)).astype(np.float32)
    cpu = faiss.IndexFlatIP(1536)
    cpu.add(base)
    gpu = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, cpu)
    _, a = cpu.search(queries, 10)
    _, b = gpu.search(queries, 10)
    overlap = float(np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a, b, strict=True)]))
    row("faiss: GPU vs CPU (flat IP, 20k × 1536)", f"top-10 overlap {overlap:.4f}", "≥ 0.99", overlap >= 0.99)


def throughput(dry_run: bool, device: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from compressor import measure, random_segments, real_size_model
    from tempo.models.device import flash_attn_imports

    attns = ["sdpa"] + (["flash_attention_2"] if device == "cuda" and flash_attn_imports() else [])
    if device == "cuda" and "flash_attention_2" not in attns:
        row("compressor: flash-attention", "skipped (flash_attn does not import)", "")
    batches = (1, 8) if dry_run else (1, 8, 32)
    segments = random_segments(8 if dry_run else 64, 512, 288)
    outputs = {}
    for attn in attns:
        if dry_run:
            from tempo.models import TempoModel
            from tempo.models.tiny import write_tiny_checkpoint

            model = TempoModel.load(write_tiny_checkpoint(Path(tempfile.mkdtemp()) / "tiny", seed=0), device="cpu")
            label = "tiny, CPU"
        else:
            model = real_size_model(device, "bfloat16", attn=attn)
            label = "real size, bf16"
        for batch in batches:
            rate = measure(model, segments, batch, runs=1 if dry_run else 3)
            target = "" if dry_run else "≥ 50 seg/s"
            row(f"compressor ({label}, {attn}) batch {batch}", f"{rate:.1f} segments/s", target,
                None if dry_run or batch != 32 else rate >= 50)
        outputs[attn] = model.compress(segments[:8], "What happens?", batch_size=8)
        del model
    if len(outputs) == 2:
        rel, rms = model_delta(outputs["sdpa"], outputs["flash_attention_2"])
        row("compressor: flash-attention vs SDPA", f"relevance {rel:.4f}, tokens {100 * rms:.2f} %",
            "≤ 0.05, ≤ 5 %", rel <= 0.05 and rms <= 0.05)


def decode_throughput(folder: Path, dry_run: bool, device: str) -> None:
    sizes = {"720p": (1280, 720), "1080p": (1920, 1080)} if not dry_run else {"180p": (320, 180)}
    status = gpu_decoder_status()
    for codec in ("h264", "hevc"):
        for name, size in sizes.items():
            clip = write_clip(folder, codec, size, 2.0 if dry_run else 10.0)
            cpu = decode_fps(clip, "cpu")
            parts = [f"CPU {cpu:.0f} fps"]
            for decoder, reason in status:
                label = GPU_LABELS[decoder]
                if device != "cuda" or reason is not None:
                    parts.append(f"{label} skipped ({reason or 'dry run'})")
                    continue
                try:
                    fps = decode_fps(clip, decoder)
                    parts.append(f"{label} {fps:.0f} fps ({fps / cpu:.1f}×)")
                except Exception as exc:  # one decoder failing on one clip is a FAIL row, the rest still run
                    row(f"decode {codec} {name} ({label})", f"error: {type(exc).__name__}: {str(exc)[:60]}", ok=False)
            row(f"decode {codec} {name}", ", ".join(parts), "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU only: tiny model, small sizes (CI)")
    parser.add_argument("--json", action="store_true", help="print the table as JSON on stdout")
    args = parser.parse_args(argv)
    from tempo.models.tiny import write_tiny_checkpoint

    device = "cuda" if torch.cuda.is_available() and not args.dry_run else "cpu"
    if device == "cpu" and not args.dry_run:
        parser.error("no CUDA device is visible: use --dry-run to run the CPU paths")
    card = torch.cuda.get_device_name(0) if device == "cuda" else "CPU (dry run)"
    print(f"gpu_check on {card}  (torch {torch.__version__}, PyAV {av.__version__})", file=sys.stderr)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="tempo-gpu-check-") as tmp:
        folder = Path(tmp)
        tiny_dir = write_tiny_checkpoint(folder / "tiny", seed=0)
        from tempo.models import TempoModel
        from tempo.models.processor import SegmentVideoProcessor, VideoProcessorConfig

        tiny = TempoModel.load(tiny_dir, device="cpu", dtype="float32")
        tiny.processor = SegmentVideoProcessor(VideoProcessorConfig())  # the released input size (512×256)
        guarded("compressor: bf16 vs fp32", lambda: check_compressor(tiny_dir, device))
        guarded("faiss", lambda: check_faiss(device))
        guarded("decode: GPU path vs CPU", lambda: check_decode(folder, args.dry_run, tiny))
        guarded("compressor throughput", lambda: throughput(args.dry_run, device))
        guarded("decode throughput", lambda: decode_throughput(folder, args.dry_run, device))
    failed = [r for r in ROWS if r["result"] == "FAIL"]
    if args.json:
        print(json.dumps({"card": card, "rows": ROWS, "failed": len(failed)}))
    else:
        print(f"\n{card}")
        print(f"{'check':<52}{'value':<44}{'tolerance / target':<22}result")
        for r in ROWS:
            print(f"{r['check']:<52}{r['value']:<44}{r['tolerance']:<22}{r['result']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
