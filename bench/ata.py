"""Adaptive Token Allocation cost for n = 10², 10⁴, 10⁶ segments (target: linear, ≤ 1 µs/segment at 10⁶).

    python bench/ata.py [--runs 7] [--json]

Two regimes per n: the ideal allocation fits the budget (B large) and the budget binds (B = 8192,
so the extra budget is spread by weight with largest remainders; at 10⁶ segments the floor drops to
one token). Scores are uniform random in [0, 1]. We report the median of `--runs` runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from tempo.models.ata import allocate_tokens

SIZES = (10**2, 10**4, 10**6)
M = 128
TARGET_US = 1.0


def time_allocation(n: int, budget: int, runs: int, seed: int = 0) -> float:
    """Median seconds of one `allocate_tokens` call over `runs` runs (after one warm-up)."""
    scores = np.random.default_rng(seed).random(n)
    allocate_tokens(scores, tokens_per_segment=M, budget=budget)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        allocate_tokens(scores, tokens_per_segment=M, budget=budget)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rows = []
    for n in SIZES:
        for regime, budget in (("fits", n * M), ("budget-bound", 8192)):
            seconds = time_allocation(n, budget, args.runs)
            rows.append(
                {"n": n, "regime": regime, "budget": budget, "ms": seconds * 1e3, "us_per_segment": seconds / n * 1e6}
            )
    worst_at_1e6 = max(r["us_per_segment"] for r in rows if r["n"] == 10**6)
    verdict = {
        "target_us_per_segment_at_1e6": TARGET_US,
        "worst_us_per_segment_at_1e6": worst_at_1e6,
        "meets_target": worst_at_1e6 <= TARGET_US,
    }
    if args.json:
        print(json.dumps({"rows": rows, **verdict}, indent=2))
        return 0
    print(f"{'n':>9}  {'regime':<13} {'budget':>9}  {'time':>10}  {'µs/segment':>10}")
    for r in rows:
        print(f"{r['n']:>9}  {r['regime']:<13} {r['budget']:>9}  {r['ms']:>8.3f} ms  {r['us_per_segment']:>10.4f}")
    print(
        f"at 10⁶ segments: {worst_at_1e6:.3f} µs/segment (target ≤ {TARGET_US} µs): "
        f"{'met' if verdict['meets_target'] else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
