"""RedisMemoryStore on a real Redis: commits, resume, reads, sizes, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tempo.memory import (
    CommitStatus,
    InvalidStreamNameError,
    MemoryUnavailableError,
    OutOfOrderCommitError,
    RedisMemoryStore,
    StreamSettingsMismatchError,
    UnknownStreamError,
)
from tempo.memory.codec import token_record_bytes
from tempo.memory.retention import trim_oldest


def _fill(store: RedisMemoryStore, records, name: str = "cam", n: int = 10) -> None:
    store.create_stream(name, records.FILE_SOURCE, records.SETTINGS)
    results = store.put_segments([records.make_record(name, i) for i in range(n)])
    assert [r.status for r in results] == [CommitStatus.COMMITTED] * n


def test_new_stream_is_empty_and_resumes_at_zero(store, records) -> None:
    info = store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
    assert (info.segments, info.committed, info.next_index, info.start, info.end) == (0, -1, 0, None, None)
    assert store.next_index("cam") == 0


def test_committed_segment_reads_back_with_all_its_parts(store, records) -> None:
    _fill(store, records, n=3)
    written = records.make_record("cam", 1)
    got = store.get_segment("cam", 1)
    assert (got.index, got.start, got.end) == (1, 4.0, 8.0)
    assert (got.frame_size, got.first_frame_index) == ((64, 96), 8)
    np.testing.assert_allclose(got.timestamps, written.timestamps)
    np.testing.assert_allclose(got.tokens, written.tokens, atol=np.abs(written.tokens).max() / 127)
    np.testing.assert_allclose(got.embedding, written.embedding, atol=1e-3)
    assert got.file_ref == written.file_ref and got.proxy is None
    assert got.committed_at is not None


def test_re_putting_committed_segments_is_a_no_op(store, records) -> None:
    _fill(store, records, n=5)
    before = store.stream_info("cam")
    again = store.put_segments([records.make_record("cam", i, seed=99) for i in range(5)])
    assert [r.status for r in again] == [CommitStatus.DUPLICATE] * 5
    after = store.stream_info("cam")
    assert (after.committed, after.bytes) == (before.committed, before.bytes)
    # First write wins: the stored embedding is still the seed-0 one.
    np.testing.assert_allclose(
        store.get_segment("cam", 2).embedding, records.make_record("cam", 2).embedding, atol=1e-3
    )


def test_resume_position_is_after_the_last_committed_segment(store, records) -> None:
    _fill(store, records, n=7)
    assert store.next_index("cam") == 7
    store.put_segment(records.make_record("cam", 7))
    assert store.next_index("cam") == 8


def test_out_of_order_commit_is_refused_and_writes_nothing(store, records) -> None:
    _fill(store, records, n=3)
    with pytest.raises(OutOfOrderCommitError, match="cannot be committed before segment 3"):
        store.put_segment(records.make_record("cam", 5))
    results = store.put_segments([records.make_record("cam", i) for i in (5, 6)])
    assert [r.status for r in results] == [CommitStatus.OUT_OF_ORDER] * 2
    assert store.next_index("cam") == 3
    assert store.get_segments("cam", [5, 6]) == [None, None]


def test_a_batch_must_hold_consecutive_segments(store, records) -> None:
    _fill(store, records, n=3)
    with pytest.raises(OutOfOrderCommitError, match="not consecutive; nothing was committed"):
        store.put_segments([records.make_record("cam", i) for i in (3, 5, 4)])
    assert store.next_index("cam") == 3


def test_a_segment_refused_by_redis_leaves_no_trace(store, records, admin, server_of) -> None:
    """All-or-nothing: Redis out of memory rejects the whole per-segment script before it runs."""
    _fill(store, records, n=2)
    before = store.stream_info("cam")
    server = server_of(store.keys.info("cam"))  # the shard holding the stream, on a cluster
    used = int(server.info("memory")["used_memory"])
    server.config_set("maxmemory", used + 64 * 1024)
    big = records.make_record("cam", 2)
    big = type(big)(**{**big.__dict__, "file_ref": None, "proxy": b"x" * (4 << 20)})
    try:
        with pytest.raises(MemoryUnavailableError, match="out of memory"):
            store.put_segment(big)
    finally:
        server.config_set("maxmemory", 0)
    assert store.stream_info("cam") == before
    assert admin.exists(store.keys.segment("cam", 2), store.keys.tokens("cam", 2)) == 0
    assert admin.zscore(store.keys.times("cam"), 2) is None
    store.put_segment(records.make_record("cam", 2))  # and the memory carries on
    assert store.next_index("cam") == 3


def test_resuming_with_other_settings_is_refused_with_the_difference(store, records) -> None:
    store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
    other = type(records.SETTINGS)(**{**records.SETTINGS.to_dict(), "sample_fps": 1.0})
    with pytest.raises(StreamSettingsMismatchError, match=r"sample_fps 2\.0 \(now 1\.0\)"):
        store.create_stream("cam", records.FILE_SOURCE, other)


def test_unknown_stream_lists_the_known_ones(store, records) -> None:
    _fill(store, records, "front-door", n=1)
    _fill(store, records, "yard", n=1)
    with pytest.raises(UnknownStreamError) as exc:
        store.stream_info("garage")
    assert str(exc.value) == "unknown stream 'garage'; known streams: front-door, yard"


def test_unknown_stream_with_an_empty_memory_says_so(store) -> None:
    with pytest.raises(UnknownStreamError, match="known streams: none yet"):
        store.get_segments("garage", [0])


def test_stream_names_are_restricted(store, records) -> None:
    with pytest.raises(InvalidStreamNameError):
        store.create_stream("a b}", records.FILE_SOURCE, records.SETTINGS)


def test_time_range_returns_the_overlapping_segments_in_order(store, records) -> None:
    _fill(store, records, n=10)  # segment i covers [4i, 4i + 4)
    assert store.indices_in_time_range("cam", 5.0, 13.0) == [1, 2, 3]
    assert store.indices_in_time_range("cam", 4.0, 8.0) == [1]
    assert store.indices_in_time_range("cam", 100.0, 200.0) == []
    assert [r.index for r in store.segments_in_time_range("cam", 0.0, 8.0)] == [0, 1]


def test_iterating_a_stream_yields_every_segment_in_order(store, records) -> None:
    _fill(store, records, n=10)
    assert [r.index for r in store.iter_segments("cam", batch=3, tokens=False)] == list(range(10))
    assert [r.index for r in store.iter_segments("cam", 7)] == [7, 8, 9]


def test_token_heads_fetch_only_the_first_k_tokens(store, records) -> None:
    _fill(store, records, n=4)
    tokens, present = store.token_heads("cam", [0, 2, 3, 9], 2, records.DIM)
    assert present.tolist() == [True, True, True, False]  # 9 does not exist
    assert tokens.shape == (4, 2, records.DIM)
    np.testing.assert_array_equal(tokens[1], store.get_segment("cam", 2).tokens[:2])
    assert not tokens[3].any()


def test_token_heads_of_several_streams_in_one_call_match_each_streams_own(store, records) -> None:
    names = ["cam", "yard", "lobby"]  # spread over the shards on a cluster
    for n, name in zip((4, 3, 5), names, strict=True):
        _fill(store, records, name, n=n)
    asks = [("cam", [0, 3, 9], 2), ("yard", [], 1), ("lobby", [4, 1], 3)]
    got = store.token_heads_many([(name, idx, k, records.DIM) for name, idx, k in asks])
    for (name, idx, k), (tokens, present) in zip(asks, got, strict=True):
        want, want_present = store.token_heads(name, idx, k, records.DIM)
        np.testing.assert_array_equal(tokens, want)
        np.testing.assert_array_equal(present, want_present)
    assert got[0][1].tolist() == [True, True, False] and got[1][0].shape == (0, 1, records.DIM)


def test_stream_infos_read_the_asked_headers_and_name_a_missing_one(store, records) -> None:
    for name in ("cam", "yard"):
        _fill(store, records, name, n=2)
    infos = store.stream_infos(["yard", "cam", "yard"])
    assert list(infos) == ["yard", "cam"] and infos["cam"] == store.stream_info("cam")
    with pytest.raises(UnknownStreamError, match="nope"):
        store.stream_infos(["cam", "nope"])


def test_bytes_are_accounted_by_part(store, records) -> None:
    _fill(store, records, n=10)
    used = store.bytes_used("cam")
    assert used.tokens == 10 * records.SETTINGS.stored_tokens * token_record_bytes(records.DIM)
    assert used.embedding == 10 * records.EMB * 2
    assert used.proxy > 0 and used.metadata > 0
    assert used.total == used.tokens + used.embedding + used.proxy + used.metadata


def test_live_segments_keep_a_proxy_clip(store, records) -> None:
    from tempo.memory.proxy import decode_proxy, encode_proxy

    frames = np.random.default_rng(0).integers(0, 255, (8, 64, 96, 3), dtype=np.uint8)
    live = records.make_record("cam", 0, wallclock=1.7e9)
    live = type(live)(**{**live.__dict__, "file_ref": None, "proxy": encode_proxy(frames)})
    store.create_stream("cam", {"uri": "rtsp://cam", "kind": "network", "live": True}, records.SETTINGS)
    store.put_segment(live)
    got = store.get_segment("cam", 0)
    assert got.file_ref is None and got.wallclock_start == pytest.approx(1.7e9)
    assert decode_proxy(got.proxy).shape == (8, 64, 96, 3)
    assert store.bytes_used("cam").proxy == len(live.proxy)


def test_list_streams_reports_segments_time_and_bytes(store, records) -> None:
    _fill(store, records, "a", n=3)
    _fill(store, records, "b", n=5)
    summaries = [s.summary() for s in store.list_streams()]
    assert [(s["name"], s["segments"], s["start"], s["end"]) for s in summaries] == [
        ("a", 3, 0.0, 12.0),
        ("b", 5, 0.0, 20.0),
    ]
    assert all(s["bytes"] > 0 for s in summaries)


def test_trimming_removes_the_oldest_segments_and_their_bytes(store, records) -> None:
    _fill(store, records, n=10)
    total = store.bytes_used("cam").total
    assert trim_oldest(store, "cam", 4) == 4
    info = store.stream_info("cam")
    assert (info.first, info.committed, info.segments, info.start) == (4, 9, 6, 16.0)
    assert info.bytes.total == pytest.approx(total * 0.6, rel=0.02)
    assert store.get_segments("cam", [3, 4])[0] is None
    # A re-put of a trimmed segment stays trimmed.
    assert store.put_segment(records.make_record("cam", 2)).status is CommitStatus.DUPLICATE


def test_deleting_a_stream_removes_every_key(store, records, admin) -> None:
    _fill(store, records, n=5)
    assert list(admin.scan_iter("tempo:s:*"))  # SCAN reaches every shard of a cluster
    store.delete_stream("cam")
    assert store.stream_names() == []
    assert list(admin.scan_iter("tempo:s:*")) == []


def test_anchor_cache_serves_repeats_from_memory_and_matches_redis(store, records) -> None:
    from tempo.memory.anchors import AnchorCache

    _fill(store, records, n=20)
    cache = AnchorCache(store, dtype=np.float32)
    first, present = cache.get("cam", [3, 4, 30], 2)
    assert present.tolist() == [True, True, False] and cache.misses == 3
    np.testing.assert_array_equal(first[0], store.get_segment("cam", 3).tokens[:2])
    again, _ = cache.get("cam", [4, 3], 2)
    assert cache.hits == 2
    np.testing.assert_array_equal(again[1], first[0])


def test_anchor_cache_never_serves_a_re_created_stream_the_old_stream_s_anchors(store, records) -> None:
    from tempo.memory.anchors import AnchorCache

    _fill(store, records, n=4)
    cache = AnchorCache(store, dtype=np.float32)  # one long-running process (a server) keeps it
    old, _ = cache.get("cam", [1, 2], 2)
    store.delete_stream("cam")
    store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
    store.put_segments([records.make_record("cam", i, seed=9) for i in range(4)])
    new, present = cache.get(store.stream_info("cam"), [1, 2], 2)
    by_name, _ = cache.get("cam", [1, 2], 2)
    assert present.all() and not np.array_equal(new, old)
    np.testing.assert_array_equal(new[0], store.get_segment("cam", 1).tokens[:2])
    np.testing.assert_array_equal(by_name, new)


def test_anchor_cache_stays_within_its_byte_bound(store, records) -> None:
    from tempo.memory.anchors import AnchorCache

    _fill(store, records, n=20)
    one = 2 * records.DIM * 2  # bytes of one segment's 2 anchors as float16 (the default)
    cache = AnchorCache(store, max_bytes=5 * one)
    tokens, _ = cache.get("cam", range(20), 2)
    assert tokens.dtype == np.float16 and cache.bytes <= 5 * one
    np.testing.assert_allclose(tokens[19], store.get_segment("cam", 19).tokens[:2], rtol=1e-3, atol=1e-3)


def test_two_writers_creating_one_stream_at_once_get_the_same_stream(store, records, redis_url) -> None:
    import threading

    infos = []
    barrier = threading.Barrier(4)

    def create() -> None:
        other = RedisMemoryStore.connect(redis_url)
        barrier.wait()
        infos.append(other.create_stream("cam", records.FILE_SOURCE, records.SETTINGS))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(infos) == 4 and len({i.number for i in infos}) == 1
    assert store.stream_names() == ["cam"]


def test_a_segment_outside_the_retained_range_is_one_sentence(store, records) -> None:
    from tempo.memory import SegmentNotFoundError

    _fill(store, records, n=3)
    with pytest.raises(SegmentNotFoundError) as exc:
        store.get_segment("cam", 7)
    assert str(exc.value) == "stream 'cam' holds segments 0..2, not 7"


def test_a_creation_that_stopped_before_its_directory_entry_is_adopted(store, records) -> None:
    # The header exists (a creator died right after the header script) but the directory does not list it.
    number = int(store.client.incr(store.keys.stream_seq()))
    header = [json.dumps(records.FILE_SOURCE.to_dict()), json.dumps(records.SETTINGS.to_dict()), "{}", "1.0"]
    store._create(keys=[store.keys.info("cam")], args=[number, *header])
    assert store.stream_names() == []
    with pytest.raises(UnknownStreamError):
        store.stream_info("cam")
    info = store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
    assert info.number == number and store.stream_names() == ["cam"]


def test_a_header_left_by_a_deletion_that_stopped_half_way_is_replaced_whole(store, records) -> None:
    _fill(store, records, n=4)
    old = store.stream_info("cam")
    store.client.hset(store.keys.info("cam"), "compact_next", 3)
    # delete_stream's first two steps, then a crash: the header stays, unmarked and unlisted.
    store.client.hdel(store.keys.info("cam"), "listed")
    store.client.hdel(store.keys.streams(), "cam")
    info = store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
    assert info.number > old.number and (info.committed, info.first, info.segments) == (-1, 0, 0)
    assert store.client.hget(store.keys.info("cam"), "compact_next") is None
    store.put_segment(records.make_record("cam", 0))
    assert store.get_segment("cam", 0).start == 0.0


def test_a_stream_written_before_the_listed_mark_keeps_working(store, records) -> None:
    # Headers made by the older creation script have no `listed` field; the directory lists them.
    _fill(store, records, n=3)
    number = store.stream_info("cam").number
    store.client.hdel(store.keys.info("cam"), "listed")
    info = store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)  # resume
    assert (info.number, info.committed) == (number, 2)
    store.put_segment(records.make_record("cam", 3))
    store.delete_stream("cam")
    assert store.stream_names() == []
