"""Proxy clips: fidelity to the compressor's input, bytes, and what recompression from them changes.

For each kind of content (FFmpeg sources, 1280×720, written to a file and read back through the
product's own decode + 2 fps sampling), every 8-frame segment's *reference* is what the compressor is
fed at ingest (`memory.proxy.compressor_input` with the released model's processor); each
proxy setting is scored by what the compressor is fed when it recompresses from the proxy:

- legacy (before TPX2): 256-px longer edge, CRF 32, 24 KB cap, scaled back up on decode and
  resized again by the compressor;
- new: the compressor's own frames at CRF c (28 KiB cap), for the default and a few neighbours.

Columns: luma PSNR (Y, BT.601, dB, MSE over the whole clip) and luma SSIM (Gaussian 11×11, σ = 1.5)
against the reference, mean and max bytes per segment, MiB per video-hour (900 segments), and the
CRF clips ended at after the byte cap. Then, on a tiny checkpoint fed the released input size, the
largest difference of memory tokens (max |Δ|, and relative RMS) and of relevance between
compressing the original frames and the proxy's.

    .venv/bin/python bench/proxy.py [--seconds 8] [--crfs 26,28,30,32] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
import torch.nn.functional as F
from tempo.memory.proxy import (
    ProxySettings,
    compressor_input,
    decode_proxy,
    encode_proxy,
    luma,
    luma_psnr,
    proxy_info,
)
from tempo.models.processor import SegmentVideoProcessor, VideoProcessorConfig
from tempo.streaming import SamplingConfig, iter_segments

KIB = 1024
MIB = 1 << 20
SEGMENTS_PER_HOUR = 900  # 4-s segments
# name → FFmpeg lavfi graph (WxH and rate filled in): a test pattern, fine fractal detail, and busy content.
CONTENT = {
    "testsrc2": "testsrc2=size={w}x{h}:rate={r}",
    "mandelbrot": "mandelbrot=size={w}x{h}:rate={r}",
    "noisy_camera": "testsrc2=size={w}x{h}:rate={r},noise=alls=24:allf=t+u",
    "cellauto": "cellauto=size={w}x{h}:rate={r}:rule=30:random_fill_ratio=0.5",
}


def released_processor() -> SegmentVideoProcessor:
    """The released model's Qwen3-VL video processor: patch 16, merge 2, temporal patch 2 (the class
    defaults; the release resizes with its own chain, so no pixel budget of the config plays a part)."""
    return SegmentVideoProcessor(VideoProcessorConfig())


def write_lavfi_video(path: Path, content: str, *, seconds: float, size: tuple[int, int] = (1280, 720),
                      rate: int = 4) -> Path:
    """An FFmpeg-generated clip of `content` (a key of CONTENT), (width, height) = size, H.264 lossless."""
    import imageio_ffmpeg

    graph = CONTENT[content].format(w=size[0], h=size[1], r=rate)
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", graph,
           "-t", f"{seconds:g}", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p",
           str(path)]
    subprocess.run(cmd, check=True)
    return path


def sampled_segments(path: Path) -> list[np.ndarray]:
    """(T, H, W, 3) uint8 frames of every segment, as the product's ingest samples them."""
    with iter_segments(str(path), config=SamplingConfig()) as it:
        return [s.frames for s in it]


def legacy_proxy(frames: np.ndarray) -> bytes:
    """A proxy as made before TPX2 (what streams ingested then hold): 256-px longer edge, CRF 32,
    re-encoded at CRF +4 (up to twice) above 24 000 bytes, TPX1 header."""
    t, height, width, _ = frames.shape
    scale = min(1.0, 256 / max(height, width))
    ph, pw = max(2, round(height * scale / 2) * 2), max(2, round(width * scale / 2) * 2)
    crf = 32
    for attempt in range(3):
        codec = av.CodecContext.create("libx264", "w")
        codec.width, codec.height, codec.pix_fmt = pw, ph, "yuv420p"
        codec.time_base = Fraction(1, 2)
        codec.gop_size = t
        codec.options = {"crf": str(crf), "preset": "medium", "bf": "0", "threads": "1",
                         "x264-params": "log-level=none"}
        payload = bytearray()
        for i in range(t):
            frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
            frame = frame.reformat(width=pw, height=ph, format="yuv420p", interpolation="AREA")
            frame.pts = i
            payload += b"".join(bytes(p) for p in codec.encode(frame))
        payload += b"".join(bytes(p) for p in codec.encode(None))
        clip = b"TPX1" + np.array([t, height, width, ph, pw, crf], "<u2").tobytes() + bytes(payload)
        if len(clip) <= 24_000 or attempt == 2:
            return clip
        crf += 4
    raise AssertionError("unreachable")


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]  # (1, 1, k, k)


def luma_ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004: Gaussian 11×11, σ 1.5, K = 0.01, 0.03, L = 255) of the luma."""
    a = torch.from_numpy(luma(reference))[:, None]  # (T, 1, H, W) float64
    b = torch.from_numpy(luma(test))[:, None]
    w = _gaussian_window()
    mu_a, mu_b = F.conv2d(a, w), F.conv2d(b, w)
    var_a = F.conv2d(a * a, w) - mu_a**2
    var_b = F.conv2d(b * b, w) - mu_b**2
    cov = F.conv2d(a * b, w) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim.mean())


def score(settings_name: str, clips: list[bytes], references: list[np.ndarray],
          processor: SegmentVideoProcessor) -> dict[str, Any]:
    """PSNR/SSIM of what the compressor is fed from each proxy against the reference; bytes; CRFs."""
    seen = [compressor_input(decode_proxy(c), processor) for c in clips]
    sizes = np.array([len(c) for c in clips])
    crfs = [proxy_info(c).crf for c in clips]
    return {
        "setting": settings_name,
        "frame_size": list(seen[0].shape[1:3]),
        "luma_psnr_db": float(np.mean([luma_psnr(r, s) for r, s in zip(references, seen, strict=True)])),
        "luma_psnr_min_db": float(min(luma_psnr(r, s) for r, s in zip(references, seen, strict=True))),
        "luma_ssim": float(np.mean([luma_ssim(r, s) for r, s in zip(references, seen, strict=True)])),
        "bytes_per_segment": float(sizes.mean()),
        "max_bytes_per_segment": int(sizes.max()),
        "mib_per_video_hour": float(sizes.mean() * SEGMENTS_PER_HOUR / MIB),
        "crf_min": int(min(crfs)),
        "crf_max": int(max(crfs)),
    }


def model_effect(segments_by_content: dict[str, list[np.ndarray]], crf: int) -> dict[str, dict[str, float]]:
    """Max |Δ memory tokens|, relative RMS Δ and max |Δ relevance| between compressing a segment's
    original frames and its proxy's (legacy and new), on a tiny checkpoint fed the released input size."""
    from tempo.models import TempoModel
    from tempo.models.tiny import write_tiny_checkpoint
    from tempo.streaming.segment import Segment, SourceInfo

    tmp = tempfile.TemporaryDirectory(prefix="tempo-bench-proxy-")
    model = TempoModel.load(write_tiny_checkpoint(Path(tmp.name) / "tiny", seed=0), device="cpu")
    model.processor = released_processor()  # the released input size, not the tiny default (~64 px)
    source = SourceInfo(uri="rtsp://bench/camera", kind="network", live=True)

    def as_segment(frames: np.ndarray, i: int) -> Segment:
        times = i * 4.0 + np.arange(len(frames)) / 2.0
        return Segment("bench", i, float(times[0]), float(times[0]) + 4.0, times, frames, source, 2.0)

    query = "Is there a red object in the scene?"
    out: dict[str, dict[str, float]] = {}
    for name, originals in segments_by_content.items():
        made = {
            "legacy": [legacy_proxy(f) for f in originals],
            f"new_crf{crf}": [encode_proxy(f, ProxySettings(crf=crf), processor=model.processor) for f in originals],
        }
        base = [as_segment(f, i) for i, f in enumerate(originals)]
        s0, m0 = model.compress(base, query)
        for setting, clips in made.items():
            s1, m1 = model.compress([as_segment(decode_proxy(c), i) for i, c in enumerate(clips)], query)
            delta = (m1 - m0).float()
            out.setdefault(name, {})[f"{setting}_tokens_max_abs"] = float(delta.abs().max())
            out[name][f"{setting}_tokens_rel_rms"] = float(delta.pow(2).mean().sqrt() / m0.float().pow(2).mean().sqrt())
            out[name][f"{setting}_relevance_max_abs"] = float(np.abs(s1 - s0).max())
    tmp.cleanup()
    return out


# Codec × setting sweep (issue 25): each candidate at the finest CRF whose clip fits the byte cap
# (binary search per segment, as a rate control that spends the cap would), against the product's
# default (`encode_proxy`). name → (encoder, decoder, options for a CRF).
SWEEP_CONTENT = ("testsrc2", "mandelbrot", "noisy_camera")
SWEEP: dict[str, tuple[str, str, Any, int]] = {
    "x264 medium (old default)": ("libx264", "h264", lambda q: {
        "crf": str(q), "preset": "medium", "bf": "0", "threads": "1", "x264-params": "log-level=none"}, 51),
    "x264 medium psy/aq off": ("libx264", "h264", lambda q: {
        "crf": str(q), "preset": "medium", "bf": "0", "threads": "1",
        "x264-params": "log-level=none:psy=0:aq-mode=0"}, 51),
    "x264 medium psy/aq off bf3": ("libx264", "h264", lambda q: {
        "crf": str(q), "preset": "medium", "bf": "3", "threads": "1",
        "x264-params": "log-level=none:psy=0:aq-mode=0"}, 51),
    "x264 slower psy/aq off bf3": ("libx264", "h264", lambda q: {
        "crf": str(q), "preset": "slower", "bf": "3", "threads": "1",
        "x264-params": "log-level=none:psy=0:aq-mode=0"}, 51),
    "x265 medium psy-rd/aq off": ("libx265", "hevc", lambda q: {
        "crf": str(q), "preset": "medium",
        "x265-params": "log-level=none:pools=1:frame-threads=1:psy-rd=0:aq-mode=0"}, 51),
    "svt-av1 preset 8": ("libsvtav1", "libdav1d", lambda q: {
        "crf": str(q), "preset": "8", "svtav1-params": "lp=1"}, 63),
}


def _raw_encode(frames: np.ndarray, encoder: str, options: dict[str, str]) -> bytes:
    t, height, width, _ = frames.shape
    codec = av.CodecContext.create(encoder, "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base = Fraction(1, 2)
    codec.gop_size = t
    codec.options = options
    out = bytearray()
    for i in range(t):
        frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        out += b"".join(bytes(p) for p in codec.encode(frame))
    out += b"".join(bytes(p) for p in codec.encode(None))
    return bytes(out)


def _raw_decode(data: bytes, decoder: str) -> tuple[np.ndarray, float]:
    started = time.thread_time()
    codec = av.CodecContext.create(decoder, "r")
    frames = [f.to_ndarray(format="rgb24") for p in [*codec.parse(data), *codec.parse(None), None]
              for f in codec.decode(p)]
    return np.stack(frames), (time.thread_time() - started) * 1e3


def _within_cap(frames: np.ndarray, encoder: str, options: Any, top: int, cap: int) -> tuple[int, bytes, float]:
    """(CRF, clip, CPU ms of all encodes) at the finest CRF that fits `cap`."""
    low, high, best, spent = 0, top, None, 0.0
    while low <= high:
        crf = (low + high) // 2
        started = time.thread_time()
        clip = _raw_encode(frames, encoder, options(crf))
        spent += (time.thread_time() - started) * 1e3
        if len(clip) <= cap:
            best, high = (crf, clip), crf - 1
        else:
            low = crf + 1
    assert best is not None, "nothing fits the cap"
    return best[0], best[1], spent


def codec_sweep(references: dict[str, list[np.ndarray]], cap: int) -> list[dict[str, Any]]:
    """Rows of content × codec/setting: mean luma PSNR, KiB, CRF range, encode and decode CPU ms per segment."""
    rows = []
    for kind, segments in references.items():
        started = time.thread_time()
        clips = [encode_proxy(f) for f in segments]
        default_ms = (time.thread_time() - started) * 1e3 / len(segments)
        decoded = []
        for clip in clips:
            begun = time.thread_time()
            decoded.append((decode_proxy(clip), (time.thread_time() - begun) * 1e3))
        results = [(proxy_info(c).crf, c, default_ms, d) for c, d in zip(clips, decoded, strict=True)]
        rows.append(_sweep_row(kind, "product default (encode_proxy)", segments, results))
        available = av.codecs_available
        for name, (encoder, decoder, options, top) in SWEEP.items():
            if encoder not in available or decoder not in available:
                continue
            results = []
            for frames in segments:
                crf, clip, ms = _within_cap(frames, encoder, options, top, cap)
                results.append((crf, clip, ms, _raw_decode(clip, decoder)))
            rows.append(_sweep_row(kind, name, segments, results))
    return rows


def _sweep_row(kind: str, name: str, segments: list[np.ndarray], results: list[Any]) -> dict[str, Any]:
    psnr = [luma_psnr(f, r[3][0][:, : f.shape[1], : f.shape[2]]) for f, r in zip(segments, results, strict=True)]
    return {"content": kind, "setting": name, "luma_psnr_db": float(np.mean(psnr)), "min_db": float(min(psnr)),
            "kib_per_segment": float(np.mean([len(r[1]) for r in results]) / KIB),
            "crf": f"{min(r[0] for r in results)}-{max(r[0] for r in results)}",
            "encode_ms": float(np.mean([r[2] for r in results])),
            "decode_ms": float(np.mean([r[3][1] for r in results]))}


def print_sweep(rows: list[dict[str, Any]], cap: int) -> None:
    print(f"\ncodec × setting at the finest CRF within {cap / KIB:g} KiB per 8-frame segment "
          "(512×256; CPU ms per segment, all encodes of the search)")
    print(f"  {'content':<13}{'setting':<34}{'Y-PSNR dB':>10}{'min':>7}{'KiB':>7}{'CRF':>8}"
          f"{'encode ms':>11}{'decode ms':>11}")
    for r in rows:
        print(f"  {r['content']:<13}{r['setting']:<34}{r['luma_psnr_db']:>10.2f}{r['min_db']:>7.2f}"
              f"{r['kib_per_segment']:>7.1f}{r['crf']:>8}{r['encode_ms']:>11.0f}{r['decode_ms']:>11.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds of each content (default 8: 2 segments)")
    parser.add_argument("--crfs", default="26,28,30,32", help="CRFs to measure beside the default (comma-separated)")
    parser.add_argument("--content", default=",".join(CONTENT), help="kinds of content: " + ", ".join(CONTENT))
    parser.add_argument("--no-model", action="store_true", help="skip the tiny-checkpoint token/relevance part")
    parser.add_argument("--no-sweep", action="store_true", help="skip the codec × setting sweep")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    default = ProxySettings()
    crfs = sorted({int(c) for c in args.crfs.split(",") if c.strip()} | {default.crf})
    kinds = [k.strip() for k in args.content.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in CONTENT]
    if unknown:
        parser.error(f"unknown content {', '.join(unknown)}; known: {', '.join(CONTENT)}")
    torch.set_num_threads(1)

    processor = released_processor()
    report: dict[str, Any] = {"default": default.to_dict(), "content": {}}
    originals: dict[str, list[np.ndarray]] = {}
    with tempfile.TemporaryDirectory(prefix="tempo-bench-proxy-") as tmp:
        for kind in kinds:
            frames = sampled_segments(write_lavfi_video(Path(tmp) / f"{kind}.mp4", kind, seconds=args.seconds))
            originals[kind] = frames
            references = [compressor_input(f, processor) for f in frames]
            rows = [score("legacy (256 px, CRF 32)", [legacy_proxy(f) for f in frames], references, processor)]
            for crf in crfs:
                clips = [encode_proxy(f, ProxySettings(crf=crf), processor=processor) for f in frames]
                label = f"new CRF {crf}" + (" (default)" if crf == default.crf else "")
                rows.append(score(label, clips, references, processor))
            report["content"][kind] = {"sampled_size": list(frames[0].shape[1:3]), "segments": len(frames),
                                       "rows": rows}
        if not args.no_sweep:
            fed: dict[str, list[np.ndarray]] = {}
            for kind in SWEEP_CONTENT:
                if kind not in originals:
                    video = write_lavfi_video(Path(tmp) / f"{kind}.mp4", kind, seconds=args.seconds)
                    originals[kind] = sampled_segments(video)
                fed[kind] = [compressor_input(f, processor) for f in originals[kind]]
            report["sweep"] = codec_sweep(fed, default.max_bytes or 28 * KIB)
    if not args.no_model:
        report["model_effect"] = model_effect({k: originals[k] for k in kinds}, default.crf)

    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"proxy clips vs the compressor's input frames ({args.seconds:g} s of each content, 720p sources)")
    print(f"  {'content':<13}{'setting':<26}{'size':>9}{'Y-PSNR dB':>11}{'min':>7}{'Y-SSIM':>8}"
          f"{'KiB/seg':>9}{'max':>7}{'MiB/h':>7}{'CRF':>8}")
    for kind, block in report["content"].items():
        for r in block["rows"]:
            size = "x".join(str(v) for v in r["frame_size"][::-1])
            crf = f"{r['crf_min']}" if r["crf_min"] == r["crf_max"] else f"{r['crf_min']}-{r['crf_max']}"
            print(f"  {kind:<13}{r['setting']:<26}{size:>9}{r['luma_psnr_db']:>11.1f}{r['luma_psnr_min_db']:>7.1f}"
                  f"{r['luma_ssim']:>8.4f}{r['bytes_per_segment'] / KIB:>9.1f}"
                  f"{r['max_bytes_per_segment'] / KIB:>7.1f}{r['mib_per_video_hour']:>7.1f}{crf:>8}")
    if "sweep" in report:
        print_sweep(report["sweep"], default.max_bytes or 28 * KIB)
    if "model_effect" in report:
        print(f"  tiny checkpoint at the released input size: original frames vs proxy (default CRF {default.crf})")
        for kind, d in report["model_effect"].items():
            cells = "  ".join(
                f"{s}: tokens max|Δ| {d[f'{s}_tokens_max_abs']:.4f} rel.RMS {100 * d[f'{s}_tokens_rel_rms']:.2f} %, "
                f"relevance max|Δ| {d[f'{s}_relevance_max_abs']:.5f}"
                for s in ("legacy", f"new_crf{default.crf}")
            )
            print(f"    {kind:<13}{cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
