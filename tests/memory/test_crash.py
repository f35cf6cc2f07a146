"""Crashes: a writer killed with SIGKILL mid-ingest, and Redis itself killed mid-ingest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tempo.memory import EmbeddedRedis, RedisMemoryStore

WRITER = Path(__file__).with_name("crash_writer.py")
TOTAL = 400


def _start_writer(url: str, stream: str, batch: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), url, stream, str(TOTAL), str(batch)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _acks_until(proc: subprocess.Popen[str], count: int) -> list[int]:
    acks: list[int] = []
    assert proc.stdout is not None
    while len(acks) < count:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"writer ended early: {proc.stderr.read() if proc.stderr else ''}")
        acks.append(int(line))
    return acks


def _assert_exactly(store: RedisMemoryStore, records, stream: str, indices: range) -> None:
    info = store.stream_info(stream)
    assert (info.first, info.committed, info.segments) == (indices.start, indices.stop - 1, len(indices))
    got = list(store.iter_segments(stream, batch=97, tokens=False, recompress=False))
    assert [r.index for r in got] == list(indices)
    for r in got[:: len(got) // 7 or 1]:
        np.testing.assert_allclose(r.embedding, records.make_record(stream, r.index).embedding, atol=1e-3)
    expected_bytes = 0
    for r in store.get_segments(stream, list(indices)):
        assert r is not None and r.tokens is not None and r.embedding is not None and r.file_ref is not None
        expected_bytes += 1
    assert expected_bytes == len(indices)
    keys = store.client.keys(f"tempo:s:{{{stream}}}:[gk]:*")
    assert len(keys) == 2 * len(indices)  # no orphan segment or token key


@pytest.mark.parametrize("batch", [1, 16])
def test_writer_killed_mid_way_then_rerun_gives_exactly_the_full_set(redis_url, records, batch) -> None:
    store = RedisMemoryStore.connect(redis_url)
    proc = _start_writer(redis_url, "cam", batch)
    acks = _acks_until(proc, 120)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed_at = store.next_index("cam")
    assert resumed_at >= acks[-1] + 1  # everything acknowledged is committed
    assert resumed_at < TOTAL
    rerun = _start_writer(redis_url, "cam", batch)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert [int(x) for x in out.split()] == list(range(resumed_at, TOTAL))  # resumed exactly there
    _assert_exactly(store, records, "cam", range(TOTAL))


def test_redis_killed_mid_ingest_keeps_every_acknowledged_segment(tmp_path, records) -> None:
    """The embedded server (AOF, appendfsync always) is SIGKILLed while a writer commits."""
    server = EmbeddedRedis(tmp_path / "home")
    url = server.ensure_running()
    proc = _start_writer(url, "cam", 8)
    acks = _acks_until(proc, 100)
    pid = server.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.stdout is not None
    acks += [int(x) for x in proc.stdout.read().split()]  # acknowledged before the kill
    assert proc.returncode == 3  # the writer saw a one-sentence MemoryUnavailableError
    deadline = time.monotonic() + 10
    while server.is_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        server.ensure_running()  # restart: replays the AOF
        store = RedisMemoryStore.connect(url)
        committed = store.stream_info("cam").committed
        assert committed >= max(acks)
        _assert_exactly(store, records, "cam", range(committed + 1))
        # Ingest resumes and completes.
        rerun = _start_writer(url, "cam", 16)
        _, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        _assert_exactly(store, records, "cam", range(TOTAL))
    finally:
        server.stop()
