"""The store's out-of-order commit (land_segments), used by the work queue's workers: real Redis."""

from __future__ import annotations

import sys

from tempo.memory import RedisMemoryStore, codec
from tempo.memory.records import StorageBytes
from tempo.memory.store_types import CommitStatus

_factory = sys.modules["memory_records_factory"]  # loaded by tests/memory/conftest.py
FILE_SOURCE, SETTINGS, make_record = _factory.FILE_SOURCE, _factory.SETTINGS, _factory.make_record


def _store(redis_url: str) -> RedisMemoryStore:
    store = RedisMemoryStore.connect(redis_url)
    store.create_stream("cam", FILE_SOURCE, SETTINGS)
    return store


def test_segments_landing_out_of_order_advance_committed_only_over_contiguous_indices(redis_url: str) -> None:
    store = _store(redis_url)
    assert store.land_segments([make_record("cam", 2), make_record("cam", 1)])[0].committed == -1
    assert store.stream_info("cam").committed == -1  # 0 is missing: nothing is "committed" yet
    results = store.land_segments([make_record("cam", 0)])
    assert results[0].status is CommitStatus.COMMITTED and results[0].committed == 2
    info = store.stream_info("cam")
    assert (info.committed, info.start, info.end) == (2, 0.0, 12.0)
    got = store.get_segments("cam", [0, 1, 2])
    assert [r.index for r in got if r is not None] == [0, 1, 2]
    assert got[1] is not None
    stored = store.client.get(store.keys.tokens("cam", 1))
    assert stored == codec.encode_tokens(make_record("cam", 1).tokens)
    assert store.client.hlen(store.keys.landed("cam")) == 0
    assert store.landed_through("cam") == 2


def test_landing_twice_is_a_duplicate_and_first_write_wins(redis_url: str) -> None:
    store = _store(redis_url)
    store.land_segments([make_record("cam", 1)])
    again = store.land_segments([make_record("cam", 1, seed=9)])
    assert again[0].status is CommitStatus.DUPLICATE
    store.land_segments([make_record("cam", 0)])
    assert store.land_segments([make_record("cam", 0, seed=9)])[0].status is CommitStatus.DUPLICATE
    assert store.client.get(store.keys.tokens("cam", 1)) == codec.encode_tokens(make_record("cam", 1).tokens)
    # Counted once: the same byte counts as an in-order commit of the two (metadata holds the commit
    # time, whose printed length varies, so it is checked against what is stored).
    mine, ref = store.stream_info("cam").bytes, _bytes_of_two(redis_url)
    assert (mine.tokens, mine.embedding, mine.proxy) == (ref.tokens, ref.embedding, ref.proxy)
    assert mine.metadata == sum(store.client.hstrlen(store.keys.segment("cam", i), "m") for i in (0, 1))


def _bytes_of_two(redis_url: str) -> StorageBytes:
    other = RedisMemoryStore.connect(redis_url, prefix="ref")
    other.create_stream("cam", FILE_SOURCE, SETTINGS)
    other.put_segments([make_record("cam", 0), make_record("cam", 1)])
    return other.stream_info("cam").bytes


def test_a_skipped_job_takes_no_index_and_is_a_gap_in_time(redis_url: str) -> None:
    store = _store(redis_url)
    store.land_segments([make_record("cam", 0), make_record("cam", 2)])
    assert store.stream_info("cam").committed == 0
    store.land_segments([], skipped=[make_record("cam", 1)])
    info = store.stream_info("cam")
    # Job 2 became segment 1: indices stay contiguous, the lost 4 s is a gap.
    assert (info.committed, info.start, info.end) == (1, 0.0, 12.0)
    assert store.landed_through("cam") == 2
    assert store.client.zrange(store.keys.gaps("cam"), 0, -1) == [b"4.0 8.0"]
    assert store.get_segment("cam", 1).start == 8.0
    assert store.client.get(store.keys.tokens("cam", 1)) == codec.encode_tokens(make_record("cam", 2).tokens)
    assert store.client.keys("tempo:s:{cam}:w*") == []


def test_landing_is_refused_while_another_writer_holds_the_stream(redis_url: str) -> None:
    store = _store(redis_url)
    store.client.set(store.keys.writer("cam"), "someone-else")
    assert store.land_segments([make_record("cam", 0)], lease="mine")[0].status is CommitStatus.NOT_WRITER
    assert store.land_segments([make_record("cam", 0)], lease="someone-else")[0].status is CommitStatus.COMMITTED


def test_deleting_a_stream_removes_segments_still_waiting_for_their_predecessors(redis_url: str) -> None:
    store = _store(redis_url)
    store.land_segments([make_record("cam", 3)])
    assert store.client.exists(store.keys.staged("cam", 3))
    store.delete_stream("cam")
    assert store.client.keys("tempo:s:{cam}:*") == []
