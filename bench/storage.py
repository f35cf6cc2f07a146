"""Storage per video-hour, by part, for a live source at default settings (target ≤ 64 MiB).

A live source keeps, per 4-s segment: the head of its generic memory tokens (K = 16 of M = 128,
D = 2048, int8 + float16 scale + 8 float16 outliers per token), its SigLIP-base embedding (E = 768, float16), metadata
JSON and a proxy clip of the 8 frames the compressor was fed (H.264 at the compressor's input size,
512×256 for a 16:9 source with the release's chain; CRF 30, 28 KiB cap: memory.proxy). The frames here are
synthetic but camera-like (a textured static scene with fixed fine detail, slow light changes,
sensor noise, a few objects moving across; the scene changes every 15 minutes), encoded for real.
Measured on a private redis-server configured like the embedded default (AOF, appendfsync always):
payload bytes by part, Redis memory (INFO used_memory delta and MEMORY USAGE of the keys) and the
AOF on disk; then again after the retention compaction tier (token heads cut to 4 tokens, what
segments older than `compact_after` keep). Also prints the commit rate (what storage adds to
ingest) and the token quantisation error.

    .venv/bin/python bench/storage.py [--hours 1] [--crf 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tempo.bench.proxy import released_processor
from tempo.memory import EmbeddedRedis, RedisMemoryStore, SegmentRecord, StreamSettings
from tempo.memory.codec import decode_tokens, encode_tokens
from tempo.memory.proxy import ProxySettings, encode_proxy, proxy_info
from tempo.memory.retention import compact_oldest
from tqdm import tqdm

MIB = 1 << 20


def _upsample(grid: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear upsampling of a (gh, gw, C) grid to (h, w, C)."""
    gh, gw = grid.shape[:2]
    y = np.linspace(0, gh - 1, h)
    x = np.linspace(0, gw - 1, w)
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    y1, x1 = np.minimum(y0 + 1, gh - 1), np.minimum(x0 + 1, gw - 1)
    fy, fx = (y - y0)[:, None, None], (x - x0)[None, :, None]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x1] * fx
    bottom = grid[y1][:, x0] * (1 - fx) + grid[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


class CameraScene:
    """A fixed camera: static textured background, moving objects, light drift, sensor noise."""

    def __init__(self, seed: int, h: int = 288, w: int = 512) -> None:
        rng = np.random.default_rng(seed)
        self.h, self.w, self.rng = h, w, rng
        base = (
            _upsample(rng.uniform(40, 200, (6, 10, 3)), h, w)
            + _upsample(rng.normal(0, 25, (24, 42, 3)), h, w)
            + _upsample(rng.normal(0, 12, (96, 170, 3)), h, w)
        )
        base += rng.normal(0, 6, (h, w, 1))  # fixed fine texture (foliage, asphalt): costs bits once
        self.background = base.astype(np.float32)
        self.objects = [
            {
                "y": rng.uniform(0.2, 0.9) * h,
                "x": rng.uniform(0, w),
                "vx": rng.uniform(-40, 40),  # px per second
                "ry": rng.uniform(10, 40),
                "rx": rng.uniform(8, 30),
                "color": rng.uniform(0, 255, 3),
            }
            for _ in range(3)
        ]
        self.yy, self.xx = np.mgrid[0:h, 0:w]

    def frame(self, t: float) -> np.ndarray:
        light = 1.0 + 0.08 * np.sin(2 * np.pi * t / 600.0)
        img = self.background * light
        for o in self.objects:
            x = (o["x"] + o["vx"] * t) % (self.w + 80) - 40
            mask = ((self.yy - o["y"]) / o["ry"]) ** 2 + ((self.xx - x) / o["rx"]) ** 2 <= 1.0
            img[mask] = o["color"]
        img = img + self.rng.normal(0, 2.0, (self.h, self.w, 1))  # sensor noise, new every frame
        return np.clip(img, 0, 255).astype(np.uint8)


def quantisation_error(d: int = 2048, k: int = 16, seed: int = 0) -> dict[str, float]:
    """Relative RMS error and worst cosine of int8 tokens on Gaussian and heavy-tailed tokens."""
    rng = np.random.default_rng(seed)
    out = {}
    gaussian = rng.normal(size=(k, d))
    heavy = rng.standard_t(3, size=(k, d))
    heavy[:, rng.choice(d, 4, replace=False)] *= 30  # a few outlier channels, as LLM states have
    for name, x in (("gaussian", gaussian), ("heavy_tailed_outliers", heavy)):
        x = x.astype(np.float32)
        y = decode_tokens(encode_tokens(x), d)
        rel = float(np.sqrt(((y - x) ** 2).mean() / (x**2).mean()))
        cos = float(((x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)).min())
        out[f"{name}_rel_rms"] = rel
        out[f"{name}_min_cosine"] = cos
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=float, default=1.0, help="video hours to store (default 1)")
    parser.add_argument("--stored-tokens", type=int, default=16, help="K, token head kept per segment")
    parser.add_argument("--token-dim", type=int, default=2048)
    parser.add_argument("--embedding-dim", type=int, default=768)
    parser.add_argument("--crf", type=int, default=ProxySettings.crf, help="proxy quality (default: the product's)")
    parser.add_argument("--proxy-cap", type=int, default=ProxySettings.max_bytes, help="proxy bytes per segment")
    parser.add_argument("--batch", type=int, default=16, help="segments per commit round trip")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    seconds, window, fps = 4.0, 8, 2.0
    n = round(args.hours * 3600 / seconds)
    proxy_settings = ProxySettings(crf=args.crf, max_bytes=args.proxy_cap)
    # What the compressor is fed for a 16:9 camera (the released model's processor budget).
    processor = released_processor()
    settings = StreamSettings(
        model_id="Vision-CAIR/Tempo-6B",
        embedder_id="google/siglip-base-patch16-224",
        embedding_dim=args.embedding_dim,
        token_dim=args.token_dim,
        stored_tokens=args.stored_tokens,
    )
    rng = np.random.default_rng(0)
    home = Path(tempfile.mkdtemp(prefix="tempo-bench-storage-"))
    server = EmbeddedRedis(home)
    store = RedisMemoryStore.connect(server.ensure_running())
    try:
        used_before = int(store.client.info("memory")["used_memory"])
        source = {"uri": "rtsp://bench/camera", "kind": "network", "live": True}
        store.create_stream("camera", source, settings)
        wall0 = 1_800_000_000.0
        scene = CameraScene(seed=0)
        encode_s = commit_s = 0.0
        crfs: list[int] = []
        pending: list[SegmentRecord] = []
        for i in tqdm(range(n), desc="segments", unit="seg", file=sys.stderr):
            if i % 225 == 0:  # a new scene every 15 minutes
                scene = CameraScene(seed=i)
            times = i * seconds + np.arange(window) / fps
            frames = np.stack([scene.frame(t) for t in times])  # (8, 288, 512, 3)
            t0 = time.perf_counter()
            proxy = encode_proxy(frames, proxy_settings, processor=processor)
            encode_s += time.perf_counter() - t0
            crfs.append(proxy_info(proxy).crf)
            emb = rng.normal(size=args.embedding_dim)
            pending.append(
                SegmentRecord(
                    stream="camera",
                    index=i,
                    start=float(times[0]),
                    end=float(times[0] + seconds),
                    timestamps=times,
                    frame_size=(288, 512),
                    first_frame_index=i * window,
                    wallclock_start=wall0 + times[0],
                    tokens=rng.normal(size=(args.stored_tokens, args.token_dim)).astype(np.float32),
                    embedding=(emb / np.linalg.norm(emb)).astype(np.float32),
                    proxy=proxy,
                )
            )
            if len(pending) == args.batch or i == n - 1:
                t0 = time.perf_counter()
                store.put_segments(pending)
                commit_s += time.perf_counter() - t0
                pending = []
        info = store.stream_info("camera")
        used_after = int(store.client.info("memory")["used_memory"])
        keys = list(store.client.scan_iter(match="tempo:*", count=1000))
        pipe = store.client.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key, samples=0)
        memory_usage = sum(int(x or 0) for x in pipe.execute())
        aof_bytes = sum(p.stat().st_size for p in (home / "redis" / "appendonlydir").glob("*"))
        # The retention compaction tier (RetentionPolicy.compact_after): heads cut to 4 tokens.
        compact_oldest(store, "camera", n, 4)
        compacted = store.stream_info("camera").bytes
        pipe = store.client.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key, samples=0)
        compacted_usage = sum(int(x or 0) for x in pipe.execute())
    finally:
        server.stop()

    hours = n * seconds / 3600
    part = info.bytes
    report = {
        "segments": n,
        "video_hours": hours,
        "settings": {
            "stored_tokens": args.stored_tokens,
            "token_dim": args.token_dim,
            "embedding_dim": args.embedding_dim,
            "proxy_crf": args.crf,
            "proxy_max_bytes": args.proxy_cap,
            "proxy_frame_size": [proxy_info(proxy).height, proxy_info(proxy).width],
        },
        "mib_per_video_hour": {
            "tokens": part.tokens / MIB / hours,
            "embedding": part.embedding / MIB / hours,
            "proxy": part.proxy / MIB / hours,
            "metadata": part.metadata / MIB / hours,
            "payload_total": part.total / MIB / hours,
            "redis_memory_usage_keys": memory_usage / MIB / hours,
            "redis_used_memory_delta": (used_after - used_before) / MIB / hours,
            "aof_on_disk": aof_bytes / MIB / hours,
            "compacted_payload_total": compacted.total / MIB / hours,
            "compacted_redis_memory_usage_keys": compacted_usage / MIB / hours,
        },
        "bytes_per_segment": {
            "tokens": part.tokens / n,
            "embedding": part.embedding / n,
            "proxy": part.proxy / n,
            "metadata": part.metadata / n,
        },
        "target_mib_per_video_hour": 64,
        "proxy_encode_ms_per_segment": 1000 * encode_s / n,
        "proxy_segments_re_encoded_for_the_cap": int(sum(c != args.crf for c in crfs)),
        "commit_ms_per_segment": 1000 * commit_s / n,
        "commit_batch": args.batch,
        "quantisation": quantisation_error(args.token_dim, args.stored_tokens),
    }
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    per_hour = report["mib_per_video_hour"]
    print(f"storage for {hours:g} video-hour(s) of a live source ({n} segments of {seconds:g} s)")
    for key in ("tokens", "embedding", "proxy", "metadata", "payload_total"):
        per_segment = report["bytes_per_segment"].get(key, part.total / n)
        print(f"  {key:<36}{per_hour[key]:8.2f} MiB/h   ({per_segment:9.0f} B/seg)")
    for key in (
        "redis_memory_usage_keys",
        "redis_used_memory_delta",
        "aof_on_disk",
        "compacted_payload_total",
        "compacted_redis_memory_usage_keys",
    ):
        print(f"  {key:<36}{per_hour[key]:8.2f} MiB/h")
    verdict = "meets" if per_hour["redis_memory_usage_keys"] <= 64 else "MISSES"
    print(f"  target ≤ 64 MiB/h: {verdict} (Redis MEMORY USAGE of all keys)")
    h, w = report["settings"]["proxy_frame_size"]
    print(f"  proxies: {w}x{h} frames (the compressor's input), CRF {args.crf}, cap {args.proxy_cap} B; "
          f"{report['proxy_segments_re_encoded_for_the_cap']} of {n} segments re-encoded coarser for the cap")
    print(f"  proxy encode {report['proxy_encode_ms_per_segment']:.1f} ms/seg (CPU, ingest thread); "
          f"commit {report['commit_ms_per_segment']:.2f} ms/seg in batches of {args.batch} (fsync always)")
    q = report["quantisation"]
    print(f"  int8 tokens: rel. RMS error {100 * q['gaussian_rel_rms']:.2f} % (Gaussian), "
          f"{100 * q['heavy_tailed_outliers_rel_rms']:.2f} % (heavy-tailed + outlier channels); "
          f"min cosine {q['gaussian_min_cosine']:.5f} / {q['heavy_tailed_outliers_min_cosine']:.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
