"""Run every benchmark under bench/ in turn (what `make bench` runs) and print each one's report.

Each benchmark measures its comparisons side by side within its own run (ratios), so a shared, noisy
machine slows both sides alike. The 30-day retrieval case needs ~8 GiB of Redis and several minutes:
it runs only with --full.

    .venv/bin/python bench/run_all.py [--full] [--only ata,ingest,...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name → (script, arguments for the default run, arguments with --full)
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "ata": ("ata.py", [], []),
    "ingest": ("ingest.py", ["--runs", "3"], ["--runs", "5"]),
    "compressor": ("compressor.py", ["--segments", "32", "--batch-sizes", "1,8"], []),
    "embedder_preprocess": ("embedder_preprocess.py", ["--runs", "3"], ["--runs", "7"]),
    "ingest_storage": ("ingest_storage.py", ["--duration", "60", "--repeats", "3"], []),
    "storage": ("storage.py", ["--hours", "0.25"], ["--hours", "1"]),
    "proxy": ("proxy.py", ["--seconds", "4", "--crfs", "27,33"], ["--seconds", "16"]),
    "retrieval": ("retrieval.py", ["--scales", "1h,24h", "--questions", "30", "--cold"],
                  ["--scales", "1h,24h,30d", "--cold"]),
    "conversation": ("conversation.py", ["--hours", "6"], ["--hours", "24"]),
    "needle": ("needle.py", ["--duration", "120", "--needles", "3"], ["--duration", "3600", "--needles", "6"]),
    "serve": ("serve.py", ["--duration", "60", "--requests", "320"], ["--duration", "600", "--requests", "3200"]),
    "index": ("index.py", ["--segments", "20000", "--queries", "100"], ["--segments", "200000"]),
    "scale": ("scale.py", ["--segments", "16", "--overhead-segments", "16"], ["--segments", "48", "--ram-hours", "25"]),
    "monitoring": ("monitoring.py", ["--ingest-seconds", "60", "--live-seconds", "30"], ["--ingest-seconds", "240"]),
    "text_track": ("text_track.py", ["--hours", "24", "--questions", "100"], ["--questions", "400"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="full sizes (30 days of memory, 24 h conversations)")
    parser.add_argument("--only", default=None, help="comma-separated names: " + ", ".join(BENCHMARKS))
    args = parser.parse_args()
    names = list(BENCHMARKS) if args.only is None else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    failed = []
    for name in names:
        script, default_args, full_args = BENCHMARKS[name]
        argv = [sys.executable, str(HERE / script), *(full_args if args.full else default_args)]
        print(f"\n===== {name}: {' '.join(argv[1:])}", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call(argv)
        print(f"===== {name}: exit {code} after {time.perf_counter() - t0:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
