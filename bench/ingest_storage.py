"""What storing costs an ingest: full `ingest` vs the same run without storing, side by side.

Both runs decode the same generated video, run the same model (the tiny checkpoint on CPU unless
--model names a real one) and embedder; only the second also builds the records and commits them to
Redis (a private redis-server configured like the embedded default: unix socket, AOF). They alternate
`--repeats` times in one process and the medians are compared: storage must add ≤ 5 %.

    .venv/bin/python bench/ingest_storage.py [--duration 120] [--repeats 5] [--model DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from tempo.engine.ingest import ingest
from tempo.memory import EmbeddedRedis, RedisMemoryStore
from tempo.models import TempoModel
from tempo.models.embedder import SegmentEmbedder
from tempo.models.tiny import SIGLIP_DIR_NAME, write_tiny_checkpoint
from tempo.streaming.synthetic import write_test_video

TARGET = 1.05  # storing may add at most 5 % to the ingest's wall time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=120.0, help="video seconds (default 120)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each kind, alternated (default 5)")
    parser.add_argument("--model", default=None, help="Tempo checkpoint (default: a tiny random one)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tempo-bench-") as tmp:
        work = Path(tmp)
        model_dir = Path(args.model) if args.model else write_tiny_checkpoint(work / "tiny", seed=0)
        video = write_test_video(
            work / "bench.mp4", duration=args.duration, fps=30.0, size=(640, 360), texture=True
        )
        model = TempoModel.load(model_dir)
        embedder = SegmentEmbedder.from_pretrained(model_dir / SIGLIP_DIR_NAME)
        server = EmbeddedRedis(work)
        server.ensure_running()
        store = RedisMemoryStore(server.client())
        try:
            times: dict[str, list[float]] = {"without_storage": [], "with_storage": []}
            segments = 0
            for run in range(args.repeats):
                for kind in ("without_storage", "with_storage"):
                    t0 = time.perf_counter()
                    report = ingest(
                        str(video),
                        f"bench-{run}",
                        model=model,
                        embedder=embedder,
                        store=store,
                        model_id=str(model_dir),
                        commit=kind == "with_storage",
                        progress=False,
                    )
                    times[kind].append(time.perf_counter() - t0)
                    segments = report.committed
        finally:
            server.stop()

    base = statistics.median(times["without_storage"])
    stored = statistics.median(times["with_storage"])
    ratio = stored / base
    result = {
        "video_seconds": args.duration,
        "segments": segments,
        "median_without_storage_s": round(base, 4),
        "median_with_storage_s": round(stored, 4),
        "ratio": round(ratio, 4),
        "storage_overhead_percent": round((ratio - 1) * 100, 2),
        "target_ratio": TARGET,
        "meets_target": ratio <= TARGET,
        "realtime_with_storage": round(args.duration / stored, 1),
        "model": "tiny random checkpoint (CPU)" if args.model is None else str(args.model),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"ingest of {args.duration:.0f} s ({segments} segments), median of {args.repeats} alternated runs")
        print(f"  without storage  {base:8.3f} s")
        print(f"  with storage     {stored:8.3f} s   ({args.duration / stored:.1f}× realtime)")
        print(
            f"  ratio            {ratio:8.3f}   (storage adds {(ratio - 1) * 100:+.1f} %; "
            f"target ≤ +{(TARGET - 1) * 100:.0f} %: {'met' if ratio <= TARGET else 'NOT met'})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
