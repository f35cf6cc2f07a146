"""The cold tier through the CLI: a live stream's token heads and proxies move to shards, answers stay the same."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from tempo.memory import RedisMemoryStore, RetentionPolicy
from tempo.memory.cold import HEADER, ColdPointer
from tempo.streaming.synthetic import write_mpegts

QUESTION = "What moves across the scene?"


def _clear_caches(client: redis.Redis) -> None:
    """Forget cached answers and query-aware passes, so the next ask reads the memory again."""
    for pattern in ("tempo:ac:*", "tempo:qc:*"):
        for key in client.scan_iter(pattern):
            client.delete(key)


def _ask(cli: Callable[..., subprocess.CompletedProcess[str]]) -> dict:
    out = cli("ask", "--stream", "gate", QUESTION, "--top-k", "1", "--max-new-tokens", "6", "--json")
    return json.loads(out.stdout)


def test_answers_from_the_cold_tier_equal_the_answers_from_redis_and_a_corrupt_shard_is_one_sentence(
    tempo_cli: Callable[..., subprocess.CompletedProcess[str]], tempo_env: dict[str, str], redis_url: str,
    tmp_path: Path,
) -> None:
    ts = write_mpegts(tmp_path / "camera.ts", duration=24.0, size=(192, 112))
    with open(ts, "rb") as stdin:  # standard input is a live source: segments keep proxy clips
        proc = subprocess.run([sys.executable, "-m", "tempo.tools.cli", "ingest", "-", "--stream", "gate"],
                              env=tempo_env, stdin=stdin, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    store = RedisMemoryStore.connect(redis_url)
    n = store.stream_info("gate").segments
    assert n >= 5
    hot = store.get_segments("gate", range(n))
    assert all(r.proxy is not None and r.tokens is not None for r in hot)
    before = _ask(tempo_cli)
    assert 0 < len(before["candidates"]) < n  # candidates recompressed from proxies, the rest anchors

    cold = tmp_path / "cold"
    store.set_retention("gate", RetentionPolicy(cold_after=1e-3, cold_url=str(cold)))
    tempo_cli("memory", "gc")
    assert not list(store.client.scan_iter("tempo:s:{gate}:k:*"))  # no token head left in Redis
    assert all(store.client.hget(store.keys.segment("gate", i), "p") is None for i in range(n))
    assert store.stream_info("gate").bytes.cold > 0 and list(cold.rglob("*.tcs"))
    moved = store.get_segments("gate", range(n))
    for a, b in zip(moved, hot, strict=True):
        assert a.proxy == b.proxy and (a.tokens == b.tokens).all()  # byte-identical proxies, same tokens

    _clear_caches(store.client)
    after = _ask(tempo_cli)
    assert after["answer"] == before["answer"] and after["segments"] == before["segments"]
    assert after["cache_hits"] == 0 and after["candidates"] == before["candidates"]

    # Flip one byte of every token head in the shards: the next answer must fail, in one sentence.
    for i in range(n):
        pointer = ColdPointer.parse(store.client.hget(store.keys.segment("gate", i), "c"))
        path = cold / pointer.shard
        data = bytearray(path.read_bytes())
        data[pointer.tok_offset + HEADER.size + 3] ^= 0xFF
        path.write_bytes(bytes(data))
    _clear_caches(store.client)
    failed = tempo_cli("ask", "--stream", "gate", QUESTION, "--top-k", "1", "--max-new-tokens", "6", check=False)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and "fails its checksum (the shard is corrupt)" in lines[0], failed.stderr


@pytest.mark.parametrize("flags", [["--cold-url", "/tmp/x"], ["--cold-after", "3600", "--cold-url", "nosuch://b/x"]])
def test_bad_cold_tier_flags_are_one_sentence(
    tempo_cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path, flags: list[str]
) -> None:
    proc = tempo_cli("ingest", str(tmp_path / "missing.mp4"), "--stream", "s", *flags, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert ("--cold-url needs --cold-after" in proc.stderr) or ("cannot use 'nosuch://b/x'" in proc.stderr)
