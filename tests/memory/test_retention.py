"""Retention by age and size, in small batches, on a thread beside ingest."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from tempo.memory import RetentionPolicy, RetentionWorker, SegmentIndex, enforce_retention
from tempo.memory.retention import compact_position, trim_oldest


def test_size_limit_drops_the_oldest_segments_until_under_it(store, records) -> None:
    store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
    store.put_segments([records.make_record("cam", i) for i in range(100)])
    per_segment = store.bytes_used("cam").total / 100
    limit = int(per_segment * 30.5)
    removed = enforce_retention(store, "cam", policy=RetentionPolicy(max_bytes=limit), batch=8)
    info = store.stream_info("cam")
    assert info.bytes.total <= limit
    assert removed == 70 and info.first == 70 and info.committed == 99


def test_age_limit_drops_segments_captured_before_the_horizon(store, records) -> None:
    now = 1_800_000_000.0
    store.create_stream("cam", {"uri": "rtsp://x", "kind": "network", "live": True}, records.SETTINGS)
    # Segment i was captured at now - 400 + 4i seconds: 0..49 are older than 200 s, 50..99 newer.
    store.put_segments([records.make_record("cam", i, wallclock=now - 400.0) for i in range(100)])
    removed = enforce_retention(store, "cam", policy=RetentionPolicy(max_age=200.0), now=now, batch=16)
    assert removed == 50 and store.stream_info("cam").first == 50


def test_stream_policy_is_used_and_unlimited_keeps_everything(store, records) -> None:
    store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
    store.put_segments([records.make_record("cam", i) for i in range(20)])
    assert enforce_retention(store, "cam") == 0
    store.set_retention("cam", RetentionPolicy(max_bytes=1))
    assert enforce_retention(store, "cam") == 20
    info = store.stream_info("cam")
    assert (info.segments, info.bytes.total, info.start, info.end) == (0, 0, None, None)
    store.put_segment(records.make_record("cam", 20))  # ingest carries on after a full trim
    assert store.stream_info("cam").segments == 1


def test_worker_enforces_retention_while_ingest_commits(store, records, tmp_path: Path) -> None:
    store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS, RetentionPolicy(max_bytes=1))
    per_segment = None
    done = threading.Event()
    committed: list[int] = []

    def ingest() -> None:
        for i in range(300):
            committed.append(store.put_segment(records.make_record("cam", i)).committed)
        done.set()

    writer = threading.Thread(target=ingest)
    with RetentionWorker(store, interval=0.01, batch=16) as worker:
        writer.start()
        writer.join(timeout=60)
        time.sleep(0.2)
    assert done.is_set() and committed == list(range(300))  # ingest never failed or waited
    assert worker.removed >= 290
    per_segment = store.stream_info("cam").segments
    assert per_segment <= 10
    index = SegmentIndex.open(store, tmp_path)
    assert len(index) == store.stream_info("cam").segments  # the index followed


def test_compaction_shrinks_old_token_heads_and_keeps_them_usable(store, records, tmp_path: Path) -> None:
    from tempo.memory.codec import token_record_bytes

    now = 1_800_000_000.0
    store.create_stream("cam", {"uri": "rtsp://x", "kind": "network", "live": True}, records.SETTINGS)
    store.put_segments([records.make_record("cam", i, wallclock=now - 400.0) for i in range(100)])
    before = store.bytes_used("cam")
    policy = RetentionPolicy(compact_after=200.0, compact_tokens=1)
    assert enforce_retention(store, "cam", policy=policy, now=now, batch=16) == 0  # nothing removed
    assert compact_position(store, "cam") == 50
    width = token_record_bytes(records.DIM)
    after = store.bytes_used("cam")
    assert before.tokens - after.tokens == 50 * (records.SETTINGS.stored_tokens - 1) * width
    assert (after.embedding, after.proxy, after.metadata) == (before.embedding, before.proxy, before.metadata)
    old, new = store.get_segment("cam", 10), store.get_segment("cam", 70)
    assert old.tokens.shape == (1, records.DIM) and new.tokens.shape == (records.SETTINGS.stored_tokens, records.DIM)
    np.testing.assert_allclose(old.tokens[0], records.make_record("cam", 10).tokens[0], atol=0.05)
    assert store.token_heads("cam", [10, 70], 1, records.DIM)[1].tolist() == [True, True]
    # Running again changes nothing; trimming a compacted segment keeps the byte count exact.
    enforce_retention(store, "cam", policy=policy, now=now)
    assert store.bytes_used("cam") == after
    trim_oldest(store, "cam", 100)
    assert store.bytes_used("cam").total == 0


def test_memory_gc_applies_every_stream_policy_now(store, records, redis_url, monkeypatch, capsys) -> None:
    import json

    from tempo.tools.cli import main

    monkeypatch.setenv("TEMPO_REDIS_URL", redis_url)
    for name in ("kept", "trimmed"):
        store.create_stream(name, records.FILE_SOURCE, records.SETTINGS)
        store.put_segments([records.make_record(name, i) for i in range(12)])
    limit = int(store.bytes_used("trimmed").total / 12 * 4.5)  # room for 4 segments
    store.set_retention("trimmed", RetentionPolicy(max_bytes=limit))
    assert main(["memory", "gc", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {
        "streams": [{"name": "trimmed", "removed": 8, "segments": 4, "bytes": store.bytes_used("trimmed").total,
                     "cold_bytes": 0}]
    }
    assert store.stream_info("kept").segments == 12 and store.stream_info("trimmed").first == 8
    assert main(["memory", "gc", "--stream", "nope"]) == 2
    assert capsys.readouterr().err.startswith("tempo: error: unknown stream 'nope'")


def test_long_running_mcp_server_enforces_retention(store, records, redis_url) -> None:
    import os
    import subprocess
    import sys

    store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS, RetentionPolicy(max_bytes=1))
    store.put_segments([records.make_record("cam", i) for i in range(10)])
    env = {**os.environ, "TEMPO_REDIS_URL": redis_url}
    server = subprocess.Popen(
        [sys.executable, "-m", "tempo.tools.mcp_server"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while store.stream_info("cam").segments and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.2)
        assert store.stream_info("cam").segments == 0  # no tool call needed: the server runs it
    finally:
        server.terminate()
        server.wait(timeout=10)
