"""FAISS index kinds on one large stream: recall@k against the flat (exact) index, bytes per vector,
search time.

One stream of n synthetic segments with SigLIP-base-sized embeddings (E = 768, float16 as stored),
clustered by scene as camera footage is (a scene lasts 225 segments = 15 minutes; each segment its
scene's vector plus noise), written through the real commit path into a real Redis. The same memory
is indexed three ways by `tempo.memory.SegmentIndex`: flat (exact), IVF-Flat and IVF-PQ (the kinds a
stream passes through as it grows: `exact_limit`, `pq_limit`). Queries are segments' embeddings
plus noise ("find the moment this describes"); recall@k = |top-k ∩ flat top-k| / k, averaged.
IVF-PQ re-ranks its candidates (`rerank`× k: 10 by default, and 4 for comparison) by the exact
cosine of the stored embeddings (one Redis round trip, included in its search time). Redis runs
without AOF (a read benchmark).

    .venv/bin/python bench/index.py [--segments 20000] [--queries 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from tempo.memory import RedisMemoryStore, SegmentIndex, SegmentRecord, StreamSettings
from tempo.memory.embedded import spawn_redis_server

E = 768
KS = (1, 10)


def load(store: RedisMemoryStore, n: int, seed: int = 0) -> np.ndarray:
    """Write n segments; returns their embeddings (n, E) float32 as stored (float16 values)."""
    rng = np.random.default_rng(seed)
    scenes = rng.normal(size=(max(4, n // 225), E)).astype(np.float32)
    settings = StreamSettings(model_id="bench", embedder_id="bench", embedding_dim=E, token_dim=8, stored_tokens=1)
    store.create_stream("camera", {"uri": "/videos/camera.mp4", "kind": "file", "live": False}, settings)
    out = np.zeros((n, E), np.float32)
    tokens = np.zeros((1, 8), np.float32)
    for lo in range(0, n, 2000):
        batch = []
        for i in range(lo, min(n, lo + 2000)):
            v = scenes[(i // 225) % len(scenes)] + 0.6 * rng.normal(size=E)
            v = (v / np.linalg.norm(v)).astype(np.float16).astype(np.float32)
            out[i] = v
            batch.append(SegmentRecord(stream="camera", index=i, start=4.0 * i, end=4.0 * i + 4,
                                       timestamps=4.0 * i + np.arange(8) / 2.0, frame_size=(288, 512),
                                       first_frame_index=8 * i, tokens=tokens, embedding=v))
        store.put_segments(batch)
    return out


def measure(index: SegmentIndex, queries: np.ndarray, truth: list[list[int]] | None) -> dict[str, Any]:
    st = index._get("camera")
    row: dict[str, Any] = {"kind": index.kind("camera"),
                           "bytes_per_vector": round(faiss.serialize_index(st.index).nbytes / st.count, 1)}
    times, found = [], []
    for q in queries:
        t = time.perf_counter()
        hits = index.search(q, k=max(KS))
        times.append(time.perf_counter() - t)
        found.append([h.index for h in hits])
    row["search_ms_p50"] = round(float(np.median(times)) * 1e3, 3)
    if truth is not None:
        for k in KS:
            row[f"recall@{k}"] = round(float(np.mean([len(set(f[:k]) & set(t[:k])) / k
                                                      for f, t in zip(found, truth, strict=True)])), 4)
    row["_found"] = found
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segments", type=int, default=20_000, help="segments in the stream")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    n = args.segments
    faiss.omp_set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = spawn_redis_server(Path(tmp), appendonly=False)
        try:
            store = RedisMemoryStore.connect(url)
            vectors = load(store, n)
            rng = np.random.default_rng(1)
            picks = rng.integers(0, n, size=args.queries)
            queries = vectors[picks] + 0.3 * rng.normal(size=(args.queries, E)).astype(np.float32) / np.sqrt(E)
            kinds = {"flat": dict(exact_limit=10**9, pq_limit=10**9),
                     "ivf": dict(exact_limit=min(n, 50_000) // 2, pq_limit=10**9),
                     "ivfpq": dict(exact_limit=min(n, 50_000) // 2, pq_limit=n // 2),
                     "ivfpq-rerank4": dict(exact_limit=min(n, 50_000) // 2, pq_limit=n // 2, rerank=4)}
            rows: dict[str, Any] = {}
            truth = None
            for name, options in kinds.items():
                if not name.startswith("ivfpq-"):
                    store.client.delete(store.keys.ivf("camera"))  # each kind trains its own
                t = time.perf_counter()
                index = SegmentIndex(store, **options)
                index.sync()
                build = time.perf_counter() - t
                rows[name] = {"index": name, **measure(index, queries, truth)}
                rows[name]["build_seconds"] = round(build, 2)
                if truth is None:
                    truth = rows[name]["_found"]
                    for k in KS:
                        rows[name][f"recall@{k}"] = 1.0
            for row in rows.values():
                row.pop("_found")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    result = {"segments": n, "queries": args.queries, "dim": E, "kinds": rows}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{n} segments, E = {E}, {args.queries} queries")
    cols = ["index", "kind", "bytes_per_vector", *(f"recall@{k}" for k in KS), "search_ms_p50", "build_seconds"]
    print("  ".join(f"{c:>16s}" for c in cols))
    for row in rows.values():
        print("  ".join(f"{row[c]!s:>16s}" for c in cols))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
