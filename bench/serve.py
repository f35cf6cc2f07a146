"""`tempo serve` under load: requests/s and p50/p95 latency of search and clip with 32 concurrent
clients on loopback, and whether questions running on the model slow search down.

It builds a memory (private redis-server, the tiny checkpoint, a generated video), starts
`tempo serve` on 127.0.0.1 (an ephemeral port), then runs, with `--clients` concurrent clients and a
bounded number of requests per phase:
  1. search (POST /v1/search) alone;
  2. clip (GET /v1/streams/s/clip, random 8 s windows) alone;
  3. search again while questions (POST /v1/streams/s/ask, long answers) keep the model busy.
The claim checked: search p95 during questions ≤ 2 × search p95 alone (retrieval never waits
behind the model). Exit code 1 when it does not hold.

    .venv/bin/python bench/serve.py [--duration 120] [--clients 32] [--requests 640]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from tempo.tools.errors import ServerStartError
from tempo.tools.launch import ServerProcess

QUERIES = ["a square", "a moving shape", "something bright", "the left side", "a colour change", "motion"]


def build_memory(root: Path, duration: float) -> tuple[subprocess.Popen, dict[str, str]]:
    from tempo.memory.embedded import spawn_redis_server
    from tempo.models.tiny import write_tiny_checkpoint
    from tempo.service import TempoService
    from tempo.streaming.synthetic import write_test_video

    proc, url = spawn_redis_server(root, appendonly=False)
    model_dir = write_tiny_checkpoint(root / "tiny")
    video = root / "bench.mp4"
    write_test_video(video, duration=duration, fps=30, size=(320, 192))
    TempoService(model=str(model_dir), redis_url=url, home=root / "home").ingest(str(video), "bench", progress=False)
    env = {**os.environ, "TEMPO_HOME": str(root / "home"), "TEMPO_REDIS_URL": url, "TEMPO_MODEL": str(model_dir)}
    return proc, env


def start_server(env: dict[str, str], max_new_tokens: int) -> ServerProcess:
    try:
        return ServerProcess(
            ["serve", "--max-new-tokens", str(max_new_tokens), "--max-queue", "64"], env=env, timeout=180
        )
    except ServerStartError as exc:
        raise SystemExit(str(exc)) from None


async def load(base: str, clients: int, requests: int, make_request) -> tuple[float, np.ndarray]:
    """Run `requests` requests from `clients` concurrent clients; (requests/s, latencies in seconds)."""
    latencies: list[float] = []
    remaining = requests
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:

        async def worker(rng: random.Random) -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                response = await make_request(client, rng)
                while response.status_code == 429:  # renders are bounded: wait as told, the wait counts
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                    response = await make_request(client, rng)
                latencies.append(time.perf_counter() - t0)
                if response.status_code >= 400:
                    raise SystemExit(f"{response.request.url}: {response.status_code} {response.text[:200]}")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(random.Random(i)) for i in range(clients)))
        wall = time.perf_counter() - t0
    return len(latencies) / wall, np.array(latencies)


async def search(client: httpx.AsyncClient, rng: random.Random) -> httpx.Response:
    return await client.post("/v1/search", json={"query": rng.choice(QUERIES), "streams": ["bench"], "top_k": 5})


def clip_request(duration: float):
    windows = int(duration // 4) - 1

    async def clip(client: httpx.AsyncClient, rng: random.Random) -> httpx.Response:
        start = 4 * rng.randrange(windows)
        return await client.get("/v1/streams/bench/clip", params={"start": start, "end": start + 8})

    return clip


async def asks_in_background(base: str, stop: asyncio.Event, count: list[int]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        i = 0
        while not stop.is_set():
            i += 1
            response = await client.post("/v1/streams/bench/ask", json={"question": f"What happens, part {i}?"})
            if response.status_code != 200:
                raise SystemExit(f"ask: {response.status_code} {response.text[:200]}")
            count[0] += 1


async def run(base: str, args: argparse.Namespace) -> dict[str, tuple[float, np.ndarray]]:
    out = {}
    await load(base, args.clients, args.clients, search)  # warm-up: first embeddings, connections
    out["search"] = await load(base, args.clients, args.requests, search)
    out["clip"] = await load(base, args.clients, args.requests, clip_request(args.duration))
    stop, asked = asyncio.Event(), [0]
    background = asyncio.ensure_future(asks_in_background(base, stop, asked))
    await asyncio.sleep(1.0)  # the first question is on the model
    out["search during asks"] = await load(base, args.clients, args.requests, search)
    stop.set()
    await background
    out["asks"] = (float(asked[0]), np.array([]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of generated video in memory")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--requests", type=int, default=640, help="requests per phase (bounded load)")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="answer length of the background questions")
    args = parser.parse_args()
    if not (1 <= args.clients <= 256 and 1 <= args.requests <= 100_000 and 16 <= args.duration <= 36_000):
        parser.error("--clients 1..256, --requests 1..100000, --duration 16..36000")
    with tempfile.TemporaryDirectory(prefix="tempo-bench-serve-") as tmp:
        redis_proc, env = build_memory(Path(tmp), args.duration)
        server = start_server(env, args.max_new_tokens)
        try:
            results = asyncio.run(run(server.base, args))
        finally:
            server.stop()
            redis_proc.terminate()
            redis_proc.wait(timeout=10)
    print(f"tempo serve on loopback: {args.clients} clients, {args.requests} requests per phase, "
          f"{args.duration:g} s of video")
    print(f"{'phase':<22}{'req/s':>10}{'p50 ms':>10}{'p95 ms':>10}")
    for name in ("search", "clip", "search during asks"):
        rate, lat = results[name]
        print(f"{name:<22}{rate:>10.1f}{np.percentile(lat, 50) * 1e3:>10.1f}{np.percentile(lat, 95) * 1e3:>10.1f}")
    ratio = np.percentile(results["search during asks"][1], 95) / np.percentile(results["search"][1], 95)
    print(f"questions answered meanwhile: {int(results['asks'][0])}")
    verdict = "holds" if ratio <= 2.0 else "does NOT hold"
    print(f"search p95 during questions / alone = {ratio:.2f} (claim ≤ 2.0: {verdict})")
    return 0 if ratio <= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
