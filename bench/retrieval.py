"""Answer-time latency from memory, excluding model compute, at 1 hour, 24 hours and 30 days.

Per question, on one stream of 4-s segments (900 / 21,600 / 648,000 segments):
  1. FAISS: sync probe (is Redis ahead of the index?) + top-K search (K = 16) + temporal neighbours;
  2. Redis: the candidates' metadata and recompress references (proxy clips for ≤ 24 h);
  3. anchors: every other segment, thinned (beyond B/(2m) of them) to a power-of-two grid of
     segment indices so the visual part fits the LLM context and the same anchors come back
     question after question (and as a live stream grows); then ATA (`allocate_tokens`, M = 128,
     B = 8192, m = 4) over that timeline, candidates with relevance scores (random here: they come
     from the query-aware pass, which is model compute), anchors at score 0;
  4. Redis: the anchors' first k stored tokens (GETRANGE), through the in-process AnchorCache;
  5. assembly: time tags and the (tokens, D) float16 visual sequence in time order.
Timed cold (empty anchor cache) and warm (later questions), and without any cache.

The records are synthetic but real-sized (int8 token heads of D = 2048, float16 SigLIP-base
embeddings of E = 768 clustered by scene, metadata JSON) and written through the real commit
path. To fit the 30-day case in this machine's memory its token head is K = 4 instead of 16
(anchors read k = m = 4, GETRANGE moves only those bytes, so latency is unchanged).
The Redis here runs without AOF (a read benchmark; bulk loading 648k segments with fsync is slow).

    .venv/bin/python bench/retrieval.py [--scales 1h,24h,30d] [--questions 40] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import redis
from tempo.memory import AnchorCache, RedisMemoryStore, SegmentIndex, SegmentRecord, StreamSettings
from tempo.memory.embedded import redis_server_binary
from tempo.memory.records import FileReference
from tempo.models.ata import allocate_tokens
from tqdm import tqdm

SCALES = {"1h": 900, "24h": 21_600, "30d": 648_000}
SECONDS, WINDOW, FPS = 4.0, 8, 2.0
M, BUDGET, MIN_TOKENS, TOP_K, D, E = 128, 8192, 4, 16, 2048, 768


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    sock = workdir / "redis.sock"
    proc = subprocess.Popen(
        [redis_server_binary(), "--port", "0", "--unixsocket", str(sock), "--dir", str(workdir),
         "--appendonly", "no", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    url = f"unix://{sock}"
    for _ in range(200):
        try:
            if redis.Redis.from_url(url).ping():
                return proc, url
        except (redis.ConnectionError, FileNotFoundError):
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def load(store: RedisMemoryStore, n: int, stored_tokens: int, with_proxy: bool, seed: int = 0) -> np.ndarray:
    """Write n synthetic segments; returns the scene centroids (for making queries)."""
    rng = np.random.default_rng(seed)
    n_scenes = max(4, n // 225)  # a scene lasts 15 minutes on average
    scenes = rng.normal(size=(n_scenes, E)).astype(np.float32)
    scenes /= np.linalg.norm(scenes, axis=1, keepdims=True)
    settings = StreamSettings(
        model_id="Vision-CAIR/Tempo-6B", embedder_id="google/siglip-base-patch16-224",
        embedding_dim=E, token_dim=D, stored_tokens=stored_tokens,
    )
    store.create_stream("camera", {"uri": "/videos/camera.mp4", "kind": "file", "live": False}, settings)
    tokens = rng.normal(size=(64, stored_tokens, D)).astype(np.float32)  # reused: content is irrelevant here
    proxy = rng.bytes(8_900) if with_proxy else None  # the measured size of a 256-px CRF-32 proxy clip
    batch = 2000
    for lo in tqdm(range(0, n, batch), desc=f"load {n} segments", unit="batch", file=sys.stderr):
        hi = min(lo + batch, n)
        scene_of = (np.arange(lo, hi) // 225) % n_scenes
        embs = scenes[scene_of] + 0.35 * rng.normal(size=(hi - lo, E)).astype(np.float32) / np.sqrt(E) * 8
        records = []
        for j, i in enumerate(range(lo, hi)):
            start = i * SECONDS
            records.append(SegmentRecord(
                stream="camera", index=i, start=start, end=start + SECONDS,
                timestamps=start + np.arange(WINDOW) / FPS, frame_size=(288, 512),
                first_frame_index=i * WINDOW, tokens=tokens[i % 64], embedding=embs[j],
                file_ref=None if with_proxy else FileReference("/videos/camera.mp4", start, start + SECONDS),
                proxy=proxy,
            ))
        store.put_segments(records)
    return scenes


def answer_path(
    store: RedisMemoryStore, index: SegmentIndex, cache: AnchorCache | None, query: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, float]:
    """One question's retrieval → allocation → assembly; returns per-stage milliseconds."""
    t = [time.perf_counter()]
    index.sync()
    hits = index.search(query, TOP_K, streams=["camera"])
    timeline = index.timeline("camera")
    n = len(timeline.indices)
    first = int(timeline.indices[0])
    rows = np.array([h.index - first for h in hits])
    cand_rows = np.unique(np.clip(np.concatenate([rows - 1, rows, rows + 1]), 0, n - 1))  # + neighbours
    t.append(time.perf_counter())
    cand_idx = timeline.indices[cand_rows]
    cand_records = store.get_segments("camera", cand_idx.tolist(), tokens=False, embedding=False)
    assert all(r is not None for r in cand_records)
    t.append(time.perf_counter())
    # Anchors: every non-candidate, thinned when there are more than fit half the budget at m
    # tokens each, to a grid aligned on absolute segment indices with a power-of-two stride: the
    # chosen anchors stay the same from question to question and as a live stream grows (the
    # stride changes only when the stream doubles), so the anchor cache keeps hitting.
    is_cand = np.zeros(n, bool)
    is_cand[cand_rows] = True
    anchor_rows = np.flatnonzero(~is_cand)
    max_anchors = BUDGET // (2 * MIN_TOKENS)
    if len(anchor_rows) > max_anchors:
        stride = 1 << int(np.ceil(np.log2(len(anchor_rows) / max_anchors)))
        anchor_rows = anchor_rows[timeline.indices[anchor_rows] % stride == 0]
    rows = np.sort(np.concatenate([anchor_rows, cand_rows]))  # the timeline the LLM sees
    scores = np.zeros(len(rows))
    scores[is_cand[rows]] = rng.uniform(0.05, 1.0, int(is_cand[rows].sum()))  # query-aware relevance
    counts = allocate_tokens(scores, tokens_per_segment=M, budget=BUDGET, min_tokens=MIN_TOKENS)
    m = int(counts[~is_cand[rows]].min()) if len(anchor_rows) else MIN_TOKENS
    t.append(time.perf_counter())
    k = m
    if cache is not None:
        anchor_tokens, present = cache.get("camera", timeline.indices[anchor_rows], k)
    else:
        anchor_tokens, present = store.token_heads("camera", timeline.indices[anchor_rows].tolist(), k, D)
    assert present.all()
    t.append(time.perf_counter())
    # Assembly: rows in time order; each contributes a time tag and its kept tokens, written in
    # place into one (tokens, D) float16 array (the LLM's compute precision).
    cand_here = is_cand[rows]
    kept = np.where(cand_here, counts, k)  # (r,)
    offsets = np.concatenate([[0], np.cumsum(kept)])  # (r + 1,)
    visual = np.empty((int(offsets[-1]), D), np.float16)
    a_pos = np.searchsorted(rows, anchor_rows)  # where each anchor sits in time order
    a_dst = (offsets[a_pos][:, None] + np.arange(k)[None, :]).reshape(-1)  # (anchors·k,)
    visual[a_dst] = anchor_tokens.reshape(-1, D)
    for pos in np.flatnonzero(cand_here):
        # A candidate's head-truncated query-aware tokens (model output; zeros stand in here).
        visual[offsets[pos] : offsets[pos + 1]] = 0
    centre = (timeline.first_frame_index[rows] + WINDOW / 2) / FPS
    tags = [f"<{c:.1f} seconds>" for c in centre.tolist()]
    assert len(tags) == len(rows)
    t.append(time.perf_counter())
    names = ("faiss", "candidates_redis", "allocate", "anchors_redis", "assemble")
    out = {name: 1000 * (b - a) for name, a, b in zip(names, t[:-1], t[1:], strict=True)}
    out["total"] = 1000 * (t[-1] - t[0])
    out["anchors"] = float(len(anchor_rows))
    out["visual_tokens"] = float(len(visual))
    return out


def run_scale(name: str, n: int, questions: int) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix=f"tempo-bench-retrieval-{name}-"))
    proc, url = start_redis(workdir)
    try:
        store = RedisMemoryStore.connect(url)
        stored_tokens = 4 if n > 100_000 else 16
        t0 = time.perf_counter()
        scenes = load(store, n, stored_tokens, with_proxy=n <= 100_000)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        index = SegmentIndex.open(store, workdir / "home")
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        index.save()
        save_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        index = SegmentIndex.open(store, workdir / "home")
        reopen_s = time.perf_counter() - t0
        rng = np.random.default_rng(1)
        queries = scenes[rng.integers(0, len(scenes), questions)] + 0.02 * rng.normal(size=(questions, E))
        cache = AnchorCache(store)
        runs = {"cold": [], "warm": [], "no_cache": []}
        runs["cold"].append(answer_path(store, index, cache, queries[0], rng))
        for q in queries[1:]:
            runs["warm"].append(answer_path(store, index, cache, q, rng))
        for q in queries[1:]:
            runs["no_cache"].append(answer_path(store, index, None, q, rng))
        used = int(store.client.info("memory")["used_memory"])
    finally:
        proc.terminate()
        proc.wait()

    def stats(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
        return {
            key: {"p50": float(np.percentile([r[key] for r in rows], 50)),
                  "p95": float(np.percentile([r[key] for r in rows], 95))}
            for key in rows[0]
        }

    return {
        "scale": name,
        "segments": n,
        "index_kind": index.kind("camera"),
        "stored_tokens": stored_tokens,
        "load_s": load_s,
        "index_build_s": build_s,
        "snapshot_save_s": save_s,
        "snapshot_open_s": reopen_s,
        "redis_used_mib": used / (1 << 20),
        "cold_ms": runs["cold"][0],
        "warm": stats(runs["warm"]),
        "no_cache": stats(runs["no_cache"]),
    }


def describe(result: dict, target: float | None) -> str:
    warm, nc, cold = result["warm"], result["no_cache"], result["cold_ms"]
    stage_names = ("faiss", "candidates_redis", "allocate", "anchors_redis", "assemble")
    stages = ", ".join(f"{k} {warm[k]['p50']:.2f}" for k in stage_names)
    head = f"{result['scale']:>4} {result['segments']:>7} segments ({result['index_kind']}, "
    head += f"K={result['stored_tokens']}): p50 {warm['total']['p50']:.1f} ms "
    head += f"(p95 {warm['total']['p95']:.1f}) warm, {nc['total']['p50']:.1f} ms without anchor cache, "
    head += f"first question {cold['total']:.1f} ms"
    if target is not None:
        verdict = "meets" if warm["total"]["p50"] <= target else "MISSES"
        head += f"; target p50 ≤ {target:.0f} ms: {verdict}"
    lines = [
        head,
        f"     warm p50 by stage (ms): {stages}; anchors {warm['anchors']['p50']:.0f}, "
        f"visual tokens {warm['visual_tokens']['p50']:.0f}",
        f"     without cache: anchors_redis p50 {nc['anchors_redis']['p50']:.2f} ms; "
        f"load {result['load_s']:.0f} s, index build {result['index_build_s']:.1f} s, "
        f"snapshot save {result['snapshot_save_s']:.1f} s / open {result['snapshot_open_s']:.1f} s, "
        f"Redis {result['redis_used_mib']:.0f} MiB",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", default="1h,24h,30d")
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    targets = {"24h": 20.0, "30d": 100.0}
    results = []
    for name in args.scales.split(","):
        result = run_scale(name, SCALES[name], args.questions)
        results.append(result)
        if not args.json:
            print(describe(result, targets.get(name)), flush=True)
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
