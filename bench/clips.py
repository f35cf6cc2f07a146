"""Clip latency of `tempo serve`: time to the first byte and to the last byte of a clip of a 10-minute
window (the console's player asks for up to 600 s), on a cold cache, and the server's peak memory.

It builds a memory (private redis-server, the tiny checkpoint, a generated video of `--duration`
seconds), starts `tempo serve`, then fetches `--clips` different 600 s windows one after another. The
claim checked: the first byte of each clip arrives within 1 s (the clip is fragmented MP4 streamed as
it is encoded, tempo.tools.clip_render), whatever the time to the whole clip. Exit code 1 when not.

    .venv/bin/python bench/clips.py [--duration 900] [--clips 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from serve import build_memory, start_server  # the same memory and server as bench/serve.py

WINDOW = 600.0  # seconds of stream per clip
FIRST_BYTE_S = 1.0


def fetch(base: str, start: float) -> tuple[float, float, int]:
    """(seconds to the first body byte, seconds to the last, bytes) of one clip."""
    t0 = time.perf_counter()
    first, size = None, 0
    params = {"start": start, "end": start + WINDOW}
    with httpx.stream("GET", f"{base}/v1/streams/bench/clip", params=params, timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            if first is None and chunk:
                first = time.perf_counter() - t0
            size += len(chunk)
    return float(first or 0.0), time.perf_counter() - t0, size


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):  # peak resident set
            return int(line.split()[1])
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=900.0, help="seconds of generated video (> 600)")
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tempo-bench-clips-") as tmp:
        redis_proc, env = build_memory(Path(tmp), args.duration)
        server = start_server(env, 8)
        try:
            rows = []
            for k in range(args.clips):
                start = (args.duration - WINDOW) * k / max(1, args.clips - 1)
                first, whole, size = fetch(server.base, start)
                rows.append({"start": round(start, 1), "first_byte_s": round(first, 3), "whole_s": round(whole, 3),
                             "bytes": size, "ratio_whole_to_first": round(whole / first, 1) if first else None})
            peak = rss_kib(server.proc.pid)
        finally:
            server.stop()
            redis_proc.terminate()
    ok = all(r["first_byte_s"] <= FIRST_BYTE_S for r in rows)
    if args.json:
        print(json.dumps({"window_s": WINDOW, "clips": rows, "server_peak_rss_kib": peak, "ok": ok}))
    else:
        for r in rows:
            print(f"clip {r['start']:>7.1f}+{WINDOW:g} s: first byte {r['first_byte_s']:.3f} s, whole "
                  f"{r['whole_s']:.2f} s ({r['bytes'] / 1e6:.1f} MB), whole/first {r['ratio_whole_to_first']}×")
        print(f"server peak RSS {peak / 1024:.0f} MiB; first byte ≤ {FIRST_BYTE_S:g} s: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
