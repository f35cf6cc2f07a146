"""SegmentIndex: FAISS search over stored embeddings, filters, snapshots, IVF, retention."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from tempo.memory import RedisMemoryStore, SegmentIndex, UnknownStreamError
from tempo.memory.retention import trim_oldest


def _ingest(store: RedisMemoryStore, records, name: str, n: int, seed: int = 0) -> None:
    store.create_stream(name, records.FILE_SOURCE, records.SETTINGS)
    for lo in range(store.next_index(name), n, 256):
        store.put_segments([records.make_record(name, i, seed=seed) for i in range(lo, min(lo + 256, n))])


def _query(records, name: str, index: int, seed: int = 0, noise: float = 0.05) -> np.ndarray:
    """A query close to one segment's embedding."""
    rng = np.random.default_rng(1234 + index)
    return records.make_record(name, index, seed=seed).embedding + noise * rng.normal(size=records.EMB)


def test_search_finds_the_segment_a_query_describes(store, records, tmp_path: Path) -> None:
    _ingest(store, records, "cam", 200)
    index = SegmentIndex.open(store, tmp_path)
    hits = index.search(_query(records, "cam", 123), k=5)
    assert hits[0].stream == "cam" and hits[0].index == 123
    assert (hits[0].start, hits[0].end) == (492.0, 496.0)
    assert hits[0].score > 0.95 and all(a.score >= b.score for a, b in itertools.pairwise(hits))
    assert index.kind("cam") == "flat"


def test_new_segments_are_indexed_on_sync(store, records, tmp_path: Path) -> None:
    _ingest(store, records, "cam", 50)
    index = SegmentIndex.open(store, tmp_path)
    _ingest(store, records, "cam", 80)
    assert index.sync() == 30
    assert index.search(_query(records, "cam", 70), k=1)[0].index == 70
    assert index.sync() == 0


def test_stream_filter_only_returns_that_streams_segments(store, records, tmp_path: Path) -> None:
    _ingest(store, records, "a", 100, seed=1)
    _ingest(store, records, "b", 100, seed=2)
    index = SegmentIndex.open(store, tmp_path)
    q = _query(records, "a", 42, seed=1)
    assert index.search(q, k=1)[0].stream == "a"
    hits = index.search(q, k=10, streams=["b"])
    assert len(hits) == 10 and {h.stream for h in hits} == {"b"}


def test_time_filter_only_returns_overlapping_segments_and_is_exact(store, records, tmp_path: Path) -> None:
    _ingest(store, records, "cam", 300)
    index = SegmentIndex.open(store, tmp_path)
    q = _query(records, "cam", 250)
    hits = index.search(q, k=5, time_range=(100.0, 200.0))  # segments 25..49
    assert {h.index for h in hits} <= set(range(25, 50)) and len(hits) == 5
    # Exact: the best of that window by brute force over the stored vectors.
    vecs = np.stack([store.get_segment("cam", i).embedding for i in range(25, 50)])
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q)
    assert hits[0].index == 25 + int(np.argmax(vecs @ qn))
    assert index.search(q, k=3, time_range=(5000.0, 6000.0)) == []


def test_unknown_stream_filter_lists_known_streams(store, records, tmp_path: Path) -> None:
    _ingest(store, records, "cam", 5)
    index = SegmentIndex.open(store, tmp_path)
    with pytest.raises(UnknownStreamError, match="known streams: cam"):
        index.search(_query(records, "cam", 1), streams=["garage"])


def test_timeline_lists_indexed_segments_in_order(store, records, tmp_path: Path) -> None:
    _ingest(store, records, "cam", 20)
    timeline = SegmentIndex.open(store, tmp_path).timeline("cam", (10.0, 30.0))
    assert timeline.indices.tolist() == [2, 3, 4, 5, 6, 7]
    assert timeline.starts.tolist() == [8.0, 12.0, 16.0, 20.0, 24.0, 28.0]


def _results(index: SegmentIndex, records) -> list:
    out = []
    for name, i in [("a", 3), ("a", 150), ("b", 77), ("b", 199)]:
        q = _query(records, name, i, seed={"a": 1, "b": 2}[name], noise=0.3)
        out.append(index.search(q, k=8))
        out.append(index.search(q, k=4, streams=[name], time_range=(40.0, 400.0)))
    return out


@pytest.mark.parametrize("damage", ["deleted", "corrupted", "truncated"])
def test_damaged_snapshot_is_rebuilt_from_redis_with_identical_results(
    store, records, tmp_path: Path, damage: str
) -> None:
    _ingest(store, records, "a", 200, seed=1)
    _ingest(store, records, "b", 200, seed=2)
    index = SegmentIndex.open(store, tmp_path)
    before = _results(index, records)
    snapshot = index.save()
    assert snapshot is not None
    faiss_file = next(snapshot.glob("*.faiss"))
    if damage == "deleted":
        for f in (tmp_path / "index").rglob("*"):
            if f.is_file():
                f.unlink()
    elif damage == "corrupted":
        data = bytearray(faiss_file.read_bytes())
        data[len(data) // 2] ^= 0xFF
        faiss_file.write_bytes(bytes(data))
    else:
        faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    rebuilt = SegmentIndex.open(store, tmp_path)
    assert len(rebuilt) == 400
    assert _results(rebuilt, records) == before


def test_snapshot_is_loaded_and_caught_up_with_newer_segments(store, records, tmp_path: Path) -> None:
    _ingest(store, records, "cam", 100)
    SegmentIndex.open(store, tmp_path).save()
    _ingest(store, records, "cam", 130)
    index = SegmentIndex.open(store, tmp_path, sync=False)
    assert len(index) == 100  # from the snapshot
    assert index.sync() == 30
    fresh = SegmentIndex(store)
    fresh.sync()
    q = _query(records, "cam", 120, noise=0.3)
    assert index.search(q, k=10) == fresh.search(q, k=10)


def test_snapshot_of_another_memory_is_ignored(store, records, tmp_path: Path, redis_url: str) -> None:
    _ingest(store, records, "cam", 30)
    SegmentIndex.open(store, tmp_path).save()
    store.client.flushall()
    other = RedisMemoryStore.connect(redis_url)
    _ingest(other, records, "cam", 10, seed=5)
    index = SegmentIndex.open(other, tmp_path)
    assert len(index) == 10
    assert index.search(_query(records, "cam", 7, seed=5), k=1)[0].index == 7


def test_ivf_past_the_threshold_returns_the_same_top_hit_as_exact(store, records, tmp_path: Path) -> None:
    """Clear data: 40 scenes, each segment its scene's vector plus small noise; queries near scenes."""
    rng = np.random.default_rng(7)
    scenes = records.unit(rng.normal(size=(40, records.EMB)))
    n = 3000
    store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
    batch = []
    for i in range(n):
        r = records.make_record("cam", i)
        emb = records.unit(scenes[(i // 75) % 40] + 0.15 * rng.normal(size=records.EMB))
        batch.append(type(r)(**{**r.__dict__, "embedding": emb}))
    for lo in range(0, n, 500):
        store.put_segments(batch[lo : lo + 500])
    exact = SegmentIndex(store, exact_limit=10**9)
    exact.sync()
    approx = SegmentIndex.open(store, tmp_path, exact_limit=1000, nprobe=4)
    assert (exact.kind("cam"), approx.kind("cam")) == ("flat", "ivf")
    for i in range(0, n, 150):
        q = batch[i].embedding
        assert approx.search(q, k=1)[0].index == exact.search(q, k=1)[0].index == i
    # A filtered IVF search is exact (every list scanned for a selective filter).
    q = scenes[3]
    assert approx.search(q, k=5, time_range=(0.0, 2000.0)) == exact.search(q, k=5, time_range=(0.0, 2000.0))
    # Rebuilt from Redis (centroids are stored there): identical results.
    approx.save()
    for f in (tmp_path / "index").rglob("*.faiss"):
        f.unlink()
    rebuilt = SegmentIndex.open(store, tmp_path, exact_limit=1000, nprobe=4)
    assert rebuilt.kind("cam") == "ivf"
    for i in range(0, n, 300):
        assert rebuilt.search(batch[i].embedding, k=10) == approx.search(batch[i].embedding, k=10)


def test_past_the_pq_limit_the_index_is_ivf_pq_and_still_finds_the_needle(store, records, tmp_path: Path) -> None:
    """Random segments (the hardest case for PQ: no clusters) and one needle; the needle query is the
    needle's embedding plus noise, far from every other segment."""
    n, needle = 12_000, 7_777
    rng = np.random.default_rng(3)
    store.create_stream("cam", records.FILE_SOURCE, records.SETTINGS)
    batch = []
    for i in range(n):
        r = records.make_record("cam", i)
        emb = records.unit(rng.normal(size=records.EMB))
        batch.append(type(r)(**{**r.__dict__, "embedding": emb}))
    for lo in range(0, n, 2000):
        store.put_segments(batch[lo : lo + 2000])
    exact = SegmentIndex(store, exact_limit=10**9, pq_limit=10**9)
    exact.sync()
    # Below the PQ limit: IVF-Flat; past it: IVF-PQ, trained once and kept in Redis.
    assert SegmentIndex(store, exact_limit=1000, pq_limit=n + 1).kind("cam") == "ivf"
    index = SegmentIndex.open(store, tmp_path, exact_limit=1000, pq_limit=10_000, nprobe=8)
    assert (exact.kind("cam"), index.kind("cam")) == ("flat", "ivfpq")
    assert store.ivf_centroids("cam").pq.shape == (records.EMB // 8, 256, 8)
    q = batch[needle].embedding + 0.1 * records.unit(rng.normal(size=records.EMB))
    hit = index.search(q, k=1)[0]
    assert hit.index == needle and (hit.start, hit.end) == (4.0 * needle, 4.0 * needle + 4)
    flat_hits = exact.search(q, k=5)
    pq_hits = index.search(q, k=5)
    # Re-ranked by the exact cosine of the stored embeddings: the flat index's scores.
    assert [h.index for h in pq_hits][:1] == [h.index for h in flat_hits][:1]
    assert pq_hits[0].score == pytest.approx(flat_hits[0].score, abs=1e-5)
    assert all(a.score >= b.score for a, b in itertools.pairwise(pq_hits))
    # Filtered by time, the needle is found, and nothing outside the range is.
    hits = index.search(q, k=3, time_range=(4.0 * (needle - 50), 4.0 * (needle + 50)))
    assert hits[0].index == needle and all(needle - 51 <= h.index <= needle + 50 for h in hits)
    # Rebuilt from Redis (codebook and centroids stored there): identical results.
    index.save()
    for f in (tmp_path / "index").rglob("*.faiss"):
        f.unlink()
    rebuilt = SegmentIndex.open(store, tmp_path, exact_limit=1000, pq_limit=10_000, nprobe=8)
    assert rebuilt.kind("cam") == "ivfpq"
    assert rebuilt.search(q, k=10) == index.search(q, k=10)
    # New segments are encoded with the same codebook and found.
    _ingest(store, records, "cam", n + 10)
    assert rebuilt.sync() == 10 and rebuilt.kind("cam") == "ivfpq"
    assert rebuilt.search(_query(records, "cam", n + 4, noise=0.02), k=1)[0].index == n + 4


def test_segments_removed_by_retention_leave_the_index(store, records, tmp_path: Path) -> None:
    _ingest(store, records, "cam", 100)
    index = SegmentIndex.open(store, tmp_path)
    assert index.search(_query(records, "cam", 10), k=1)[0].index == 10
    trim_oldest(store, "cam", 40)
    index.sync()
    assert len(index) == 60
    hits = index.search(_query(records, "cam", 10), k=100)
    assert min(h.index for h in hits) == 40 and len(hits) == 60


def test_a_deleted_and_recreated_stream_is_reindexed(store, records, tmp_path: Path) -> None:
    _ingest(store, records, "cam", 50)
    index = SegmentIndex.open(store, tmp_path)
    store.delete_stream("cam")
    _ingest(store, records, "cam", 20, seed=9)
    index.sync()
    assert len(index) == 20
    assert index.search(_query(records, "cam", 15, seed=9), k=1)[0].index == 15
