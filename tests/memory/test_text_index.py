"""Cues in memory (real Redis): committed with their segment, kept through compaction and the cold tier,
removed with it by retention; replaced atomically; the keyword index follows the stream."""

from __future__ import annotations

import numpy as np
from tempo.memory import RedisMemoryStore, SegmentRecord, StreamSettings
from tempo.memory.cold import move_to_cold
from tempo.memory.retention import compact_oldest, trim_oldest
from tempo.memory.text_index import KeywordIndex, read_cues, replace_cues
from tempo.streaming.subtitles import Cue

WORDS = ["the blue elephant", "a red kite", "quiet", "the budget deadline", "blue sky"]


def _store(url: str, n: int = 5) -> RedisMemoryStore:
    store = RedisMemoryStore.connect(url)
    store.create_stream("s", {"uri": "/v/s.mp4", "kind": "file", "live": False},
                        StreamSettings(model_id="m", embedder_id="e", embedding_dim=4, token_dim=8, stored_tokens=4))
    records = [SegmentRecord(stream="s", index=i, start=4.0 * i, end=4.0 * i + 4, timestamps=4.0 * i + np.arange(8) / 2,
                             frame_size=(8, 8), tokens=np.ones((4, 8), np.float32), embedding=np.ones(4, np.float32),
                             cues=(Cue(4.0 * i + 1, 4.0 * i + 2, WORDS[i], "srt", "en"),)) for i in range(n)]
    store.put_segments(records)
    return store


def test_cues_are_committed_with_their_segment_and_read_back(redis_url) -> None:
    store = _store(redis_url)
    assert store.get_segment("s", 2, tokens=False, embedding=False, recompress=False).cues == (
        Cue(9.0, 10.0, WORDS[2], "srt", "en"),)
    assert read_cues(store, "s", [0, 4, 99]) == {0: [Cue(1.0, 2.0, WORDS[0], "srt", "en")],
                                                 4: [Cue(17.0, 18.0, WORDS[4], "srt", "en")]}


def test_keyword_index_ranks_by_words_and_follows_retention_and_replacement(redis_url) -> None:
    store = _store(redis_url)
    index = KeywordIndex(store)
    assert [h.index for h in index.search("s", "blue elephant", k=5)] == [0, 4]
    assert [h.index for h in index.search("s", "blue", k=5, time_range=(8.0, 20.0))] == [4]
    trim_oldest(store, "s", 1)  # retention removes segment 0 and its cues with it
    assert read_cues(store, "s", [0]) == {}
    assert [h.index for h in index.search("s", "blue elephant", k=5)] == [4]
    before = int(store.client.hget(store.keys.info("s"), "b_meta"))
    assert replace_cues(store, "s", {3: [Cue(13.0, 14.0, "an orange giraffe", "asr", "en")], 0: []}) == 1
    assert [h.index for h in index.search("s", "giraffe", k=5)] == [3]
    assert index.search("s", "budget", k=5) == []
    assert int(store.client.hget(store.keys.info("s"), "b_meta")) != before  # byte accounting follows


def test_cues_stay_when_tokens_are_compacted_or_moved_to_the_cold_tier(redis_url, tmp_path) -> None:
    store = _store(redis_url)
    compact_oldest(store, "s", 1, 2)
    move_to_cold(store, "s", [2, 3], str(tmp_path / "cold"))
    cues = read_cues(store, "s", range(5))
    assert [c[0].text for _, c in sorted(cues.items())] == WORDS


def test_the_keyword_index_reads_only_new_segments_as_a_stream_grows(redis_url) -> None:
    store = _store(redis_url, n=3)
    index = KeywordIndex(store)
    assert [h.index for h in index.search("s", "elephant", k=5)] == [0]
    built = index._streams["s"]
    store.put_segments([SegmentRecord(stream="s", index=3, start=12.0, end=16.0, timestamps=12.0 + np.arange(8) / 2,
                                      frame_size=(8, 8), embedding=np.ones(4, np.float32))])  # no words
    assert [h.index for h in index.search("s", "elephant", k=5)] == [0]
    assert index._streams["s"] is built and built.bm25.size == 3  # no new text: nothing added
    store.put_segments([SegmentRecord(stream="s", index=4, start=16.0, end=20.0, timestamps=16.0 + np.arange(8) / 2,
                                      frame_size=(8, 8), embedding=np.ones(4, np.float32),
                                      cues=(Cue(17.0, 18.0, "another elephant", "asr", None),))])
    assert sorted(h.index for h in index.search("s", "elephant", k=5)) == [0, 4]
    assert index._streams["s"] is built and built.bm25.size == 4 and built.rebuilt == 0  # appended, not rebuilt


def test_a_grown_keyword_index_answers_exactly_as_one_built_from_scratch(redis_url) -> None:
    rng = np.random.default_rng(7)
    vocab = [f"word{i}" for i in range(40)]
    store = _store(redis_url, n=0)
    grown = KeywordIndex(store)
    n = 0
    for step in range(12):
        records = []
        for i in range(n, n + int(rng.integers(1, 12))):
            words = " ".join(vocab[int(r)] for r in np.minimum(rng.zipf(1.5, 6), 40) - 1)
            cues = (Cue(4.0 * i + 1, 4.0 * i + 3, words, "srt", "en"),) if rng.random() < 0.8 else ()
            records.append(SegmentRecord(stream="s", index=i, start=4.0 * i, end=4.0 * i + 4,
                                         timestamps=4.0 * i + np.arange(8) / 2, frame_size=(8, 8),
                                         tokens=np.ones((4, 8), np.float32), embedding=np.ones(4, np.float32),
                                         cues=cues))
        store.put_segments(records)
        n += len(records)
        if step % 4 == 3:
            trim_oldest(store, "s", int(rng.integers(1, 6)))  # retention, between appends
        query = " ".join(vocab[int(r)] for r in rng.integers(0, 12, size=2))
        assert grown.search("s", query, k=50) == KeywordIndex(store).search("s", query, k=50)
    assert grown._streams["s"].rebuilt == 0
