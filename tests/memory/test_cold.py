"""The cold tier: token heads and proxy clips of old segments in checksummed shards, read back transparently."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from tempo.memory import RetentionPolicy, enforce_retention
from tempo.memory.cold import (
    HEADER,
    ColdPointer,
    ColdTier,
    ShardStore,
    cold_position,
    move_to_cold,
    mover_lease,
)
from tempo.memory.errors import ColdShardCorruptError, ColdShardMissingError

NOW = 1_800_000_000.0
LIVE = {"uri": "rtsp://cam/1", "kind": "network", "live": True}


def _live_record(records, i: int, seconds: float = 4.0):
    """A live segment (wall clock NOW - 4000 + 4i s) with a proxy clip of its own bytes."""
    record = records.make_record("cam", i, wallclock=NOW - 4000.0, seconds=seconds)
    proxy = np.random.default_rng([7, i]).bytes(5000 + 17 * i)  # > 4 KiB, as real clips are
    return dataclasses.replace(record, file_ref=None, proxy=proxy)


def _raw(store, name: str, n: int) -> list[tuple[bytes | None, bytes | None]]:
    """What Redis itself holds per segment: (token head bytes, proxy bytes)."""
    return [(store.client.get(store.keys.tokens(name, i)), store.client.hget(store.keys.segment(name, i), "p"))
            for i in range(n)]


def _fill(store, records, n: int = 40) -> list[tuple[bytes | None, bytes | None]]:
    store.create_stream("cam", LIVE, records.SETTINGS)
    store.put_segments([_live_record(records, i) for i in range(n)])
    return _raw(store, "cam", n)


def test_moved_segments_read_back_byte_identical_tokens_and_proxies(store, records, tmp_path: Path) -> None:
    before_raw = _fill(store, records)
    before = store.get_segments("cam", range(40))
    heads_before = store.token_heads("cam", list(range(40)), 3, records.DIM)
    bytes_before = store.bytes_used("cam")

    moved = move_to_cold(store, "cam", range(0, 30), str(tmp_path / "cold"))

    assert (moved.moved, moved.skipped) == (30, 0)
    after_raw = _raw(store, "cam", 40)
    assert all(t is None and p is None for t, p in after_raw[:30])  # out of Redis...
    assert after_raw[30:] == before_raw[30:]  # ... and the hot ones untouched
    after = store.get_segments("cam", range(40))
    for b, a, (_tok, prx) in zip(before, after, before_raw, strict=True):
        assert a is not None and b is not None
        assert np.array_equal(a.tokens, b.tokens) and a.proxy == b.proxy == prx
        assert a.meta_json(0) == b.meta_json(0) and np.array_equal(a.embedding, b.embedding)
    # The exact stored bytes live in the shard, each record with its header and checksum.
    pointer = ColdPointer.parse(store.client.hget(store.keys.segment("cam", 5), "c"))
    shard = (tmp_path / "cold" / pointer.shard).read_bytes()
    assert shard[pointer.tok_offset + HEADER.size:][: pointer.tok_length] == before_raw[5][0]
    assert shard[pointer.prx_offset + HEADER.size:][: pointer.prx_length] == before_raw[5][1]
    heads_after = store.token_heads("cam", list(range(40)), 3, records.DIM)
    assert np.array_equal(heads_after[0], heads_before[0]) and heads_after[1].all()
    first_k = store.get_segments("cam", [3], tokens=2)[0]
    assert np.array_equal(first_k.tokens, before[3].tokens[:2])
    # Accounting: b_tok/b_prx are what Redis holds now, the moved bytes are counted as cold.
    moved_bytes = sum(len(t) + len(p) for t, p in before_raw[:30])
    after_bytes = store.bytes_used("cam")
    assert after_bytes.tokens == sum(len(t) for t, _ in before_raw[30:])
    assert after_bytes.proxy == sum(len(p) for _, p in before_raw[30:])
    assert after_bytes.cold == moved.bytes == moved_bytes
    assert after_bytes.total == bytes_before.total - moved_bytes
    # What stays in Redis per cold segment is a compact hash again (the proxy made it a hash table).
    assert store.client.object("encoding", store.keys.segment("cam", 31)) == b"hashtable"
    assert store.client.object("encoding", store.keys.segment("cam", 5)) == b"listpack"


def test_a_second_move_is_a_no_op_and_segments_of_an_hour_share_a_shard(store, records, tmp_path: Path) -> None:
    _fill(store, records, n=1000)  # 4-s segments: 900 per stream-hour
    root = str(tmp_path / "cold")
    assert move_to_cold(store, "cam", range(0, 1000), root).moved == 1000
    again = move_to_cold(store, "cam", range(0, 1000), root)
    assert (again.moved, again.skipped, again.bytes) == (0, 1000, 0)
    assert sorted(p.name for p in (tmp_path / "cold" / "1").iterdir()) == ["000000.tcs", "000001.tcs"]
    assert ColdPointer.parse(store.client.hget(store.keys.segment("cam", 899), "c")).shard.endswith("000000.tcs")
    assert ColdPointer.parse(store.client.hget(store.keys.segment("cam", 900), "c")).shard.endswith("000001.tcs")


def test_a_crash_after_the_shard_write_loses_nothing_and_the_rerun_is_idempotent(
    store, records, tmp_path: Path
) -> None:
    before_raw = _fill(store, records, n=10)
    before = store.get_segments("cam", range(10))
    root = tmp_path / "cold"
    number = store.stream_info("cam").number
    # Step 2 of the protocol ran (the bytes are in the shard, fsynced), step 3 never did.
    ShardStore(str(root)).append(number, 0, [(1, i, t) for i, (t, _) in enumerate(before_raw)])
    orphan = (root / str(number) / "000000.tcs").stat().st_size
    assert _raw(store, "cam", 10) == before_raw  # Redis untouched: every segment still hot
    assert all(r.proxy is not None for r in store.get_segments("cam", range(10)))
    assert move_to_cold(store, "cam", range(10), str(root)).moved == 10
    assert move_to_cold(store, "cam", range(10), str(root)).moved == 0
    after = store.get_segments("cam", range(10))
    assert all(np.array_equal(a.tokens, b.tokens) and a.proxy == b.proxy for a, b in zip(after, before, strict=True))
    # The rerun appended after the orphan bytes, which nothing points to.
    assert min(ColdPointer.parse(store.client.hget(store.keys.segment("cam", i), "c")).tok_offset
               for i in range(10)) >= orphan


MOVER = """
import sys
from tempo.memory import RedisMemoryStore
from tempo.memory.cold import move_to_cold
store = RedisMemoryStore.connect(sys.argv[1])
print("ready", flush=True)
for lo in range(0, 400, 4):
    move_to_cold(store, "cam", range(lo, lo + 4), sys.argv[2])
"""


def test_kill_9_of_a_mover_loses_nothing_and_a_rerun_finishes_the_move(
    store, records, redis_url: str, tmp_path: Path
) -> None:
    before_raw = _fill(store, records, n=400)
    before = store.get_segments("cam", range(400))
    root = str(tmp_path / "cold")
    proc = subprocess.Popen([sys.executable, "-c", MOVER, redis_url, root], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 60
    while store.client.hget(store.keys.info("cam"), "x_tok") in (None, b"0") and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    hot = sum(t is not None for t, _ in _raw(store, "cam", 400))
    assert hot < 400  # it was killed mid-way (some moved) ...
    mid = store.get_segments("cam", range(400))
    assert all(np.array_equal(a.tokens, b.tokens) and a.proxy == b.proxy for a, b in zip(mid, before, strict=True))
    assert move_to_cold(store, "cam", range(400), root).moved == hot  # ... and the rest moves now
    after = store.get_segments("cam", range(400))
    assert all(np.array_equal(a.tokens, b.tokens) and a.proxy == b.proxy for a, b in zip(after, before, strict=True))
    assert store.bytes_used("cam").cold == sum(len(t) + len(p) for t, p in before_raw)
    assert store.bytes_used("cam").tokens == store.bytes_used("cam").proxy == 0


def test_a_corrupt_shard_raises_a_typed_error_not_garbage(store, records, tmp_path: Path) -> None:
    _fill(store, records, n=6)
    move_to_cold(store, "cam", range(6), str(tmp_path / "cold"))
    pointer = ColdPointer.parse(store.client.hget(store.keys.segment("cam", 2), "c"))
    path = tmp_path / "cold" / pointer.shard
    data = bytearray(path.read_bytes())
    data[pointer.tok_offset + HEADER.size + 10] ^= 0x01  # one bit of segment 2's token head
    path.write_bytes(bytes(data))
    with pytest.raises(ColdShardCorruptError, match=r"segment 2 of stream 'cam' .* fails its checksum"):
        store.get_segments("cam", [2])
    with pytest.raises(ColdShardCorruptError):
        store.token_heads("cam", [1, 2, 3], 2, records.DIM)
    assert store.get_segments("cam", [3])[0].proxy is not None  # the other records still read
    path.write_bytes(bytes(data[: pointer.tok_offset + 20]))  # cut short
    with pytest.raises(ColdShardCorruptError, match="cut short"):
        store.get_segments("cam", [4])
    path.unlink()
    with pytest.raises(ColdShardMissingError, match=r"cold-tier shard 1/000000.tcs is missing"):
        store.get_segments("cam", [5], tokens=False)


def test_an_fsspec_memory_url_works_as_the_cold_root(store, records) -> None:
    before_raw = _fill(store, records, n=12)
    before = store.get_segments("cam", range(12))
    root = f"memory://tempo-cold-{uuid.uuid4().hex}"
    assert move_to_cold(store, "cam", range(0, 6), root).moved == 6
    assert move_to_cold(store, "cam", range(6, 12), root).moved == 6  # a second immutable part
    shards = ShardStore(root).shards(store.stream_info("cam").number)
    assert len(shards) == 2 and all(s.startswith("1/000000-") for s in shards)
    after = store.get_segments("cam", range(12))
    assert all(np.array_equal(a.tokens, b.tokens) and a.proxy == b.proxy for a, b in zip(after, before, strict=True))
    assert all(t is None for t, _ in _raw(store, "cam", 12)) and before_raw[0][0] is not None
    store.delete_stream("cam")
    assert ShardStore(root).shards(1) == []


def test_retention_moves_only_segments_past_cold_after_in_bounded_batches(store, records, tmp_path: Path) -> None:
    _fill(store, records, n=100)  # captured NOW-4000+4i: 0..49 older than 3800 s
    policy = RetentionPolicy(cold_after=3800.0, cold_url=str(tmp_path / "cold"))
    store.set_retention("cam", policy)
    enforce_retention(store, "cam", now=NOW, batch=8, max_batches=2)
    assert cold_position(store, "cam") == 16  # bounded: two batches of 8 per pass
    enforce_retention(store, "cam", now=NOW, batch=8)
    raw = _raw(store, "cam", 100)
    assert all(t is None for t, _ in raw[:50]) and all(t is not None for t, _ in raw[50:])
    assert cold_position(store, "cam") == 50
    assert enforce_retention(store, "cam", now=NOW, batch=8) == 0 and cold_position(store, "cam") == 50


def test_trimming_cold_segments_keeps_the_accounting_and_forgets_their_shards(store, records, tmp_path: Path) -> None:
    store.create_stream("cam", LIVE, records.SETTINGS)
    # 15-minute segments, so 4 per stream-hour: 20 segments span 5 shards.
    store.put_segments([_live_record(records, i, seconds=900.0) for i in range(20)])
    move_to_cold(store, "cam", range(20), str(tmp_path / "cold"))
    folder = tmp_path / "cold" / str(store.stream_info("cam").number)
    assert len(list(folder.iterdir())) == 5
    per_segment = store.bytes_used("cam").total / 20
    removed = enforce_retention(store, "cam", policy=RetentionPolicy(max_bytes=int(per_segment * 10.5)))
    info = store.stream_info("cam")
    assert removed == 10 and info.first == 10
    assert info.bytes.cold == sum(ColdPointer.parse(store.client.hget(store.keys.segment("cam", i), "c")).tok_length
                                  + ColdPointer.parse(store.client.hget(store.keys.segment("cam", i), "c")).prx_length
                                  for i in range(10, 20))
    # Segments 8..11 share hour 2; 0..7 (hours 0 and 1) are gone and so are their shards.
    assert sorted(p.name for p in folder.iterdir()) == ["000002.tcs", "000003.tcs", "000004.tcs"]
    assert store.get_segments("cam", [10])[0].proxy is not None
    store.delete_stream("cam")
    assert not folder.exists()


def test_reads_go_through_a_bytes_bounded_lru_cache(store, records, tmp_path: Path) -> None:
    _fill(store, records, n=20)
    move_to_cold(store, "cam", range(20), str(tmp_path / "cold"))
    store.cold = ColdTier(max_bytes=3 * records.SETTINGS.stored_tokens * (records.DIM + 34))
    store.token_heads("cam", [0, 1, 2], 2, records.DIM)
    assert (store.cold.misses, store.cold.hits) == (3, 0)
    store.token_heads("cam", [0, 1, 2], 2, records.DIM)
    assert (store.cold.misses, store.cold.hits) == (3, 3)  # served from memory, no shard read
    store.token_heads("cam", [3], 2, records.DIM)  # a fourth head pushes out the least recent
    assert store.cold.bytes <= store.cold.max_bytes
    store.token_heads("cam", [0], 2, records.DIM)
    assert store.cold.misses == 5


def test_one_mover_per_stream_at_a_time(store, records, tmp_path: Path) -> None:
    _fill(store, records, n=10)
    store.set_retention("cam", RetentionPolicy(cold_after=1.0, cold_url=str(tmp_path / "cold")))
    with mover_lease(store, "cam") as first, mover_lease(store, "cam") as second:
        assert first and not second
        enforce_retention(store, "cam", now=NOW)  # another process's pass: leaves the stream alone
        assert cold_position(store, "cam") == 0
    enforce_retention(store, "cam", now=NOW)  # released: the next pass moves
    assert cold_position(store, "cam") == 10
