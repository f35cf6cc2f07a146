"""The appendable BM25 (memory/bm25.py): any history of appends and front drops scores exactly as a
full re-index of the alive documents, and as bm25s itself (the library whose formula it follows)."""

from __future__ import annotations

import bm25s
import numpy as np
import pytest
from tempo.memory.bm25 import AppendableBm25


def _corpus(rng: np.random.Generator, n: int, vocab: int) -> list[list[str]]:
    # Zipf word frequencies as in speech; a few empty documents (only stopwords) among them.
    return [[f"w{int(r)}" for r in np.minimum(rng.zipf(1.4, int(rng.integers(0, 14))), vocab)] for _ in range(n)]


def _rebuilt(docs: list[list[str]]) -> AppendableBm25:
    full = AppendableBm25()
    full.append(docs)
    return full


@pytest.mark.parametrize("seed", range(6))
def test_appends_and_drops_score_exactly_as_a_full_reindex(seed: int) -> None:
    rng = np.random.default_rng(seed)
    docs = _corpus(rng, 600, 80)
    grown = AppendableBm25()
    first = 0
    for _ in range(25):
        lo = grown.end
        grown.append(docs[lo: lo + int(rng.integers(1, 40))])
        if rng.random() < 0.4:  # retention removes the oldest documents
            first = min(grown.end, first + int(rng.integers(0, 30)))
            grown.drop_before(first)
        if rng.random() < 0.2:
            grown.compact()
        alive = docs[first: grown.end]
        query = [f"w{int(r)}" for r in rng.integers(1, 40, size=int(rng.integers(1, 5)))]
        assert grown.size == len(alive)
        assert np.array_equal(grown.scores(query), _rebuilt(alive).scores(query))


@pytest.mark.parametrize("seed", range(4))
def test_scores_equal_bm25s_over_the_same_documents(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    docs = _corpus(rng, 300, 60)
    grown = AppendableBm25()
    for lo in range(0, 300, 37):
        grown.append(docs[lo: lo + 37])
    grown.drop_before(50)
    alive = docs[50:]
    reference = bm25s.BM25()  # bm25s' defaults: Lucene idf, k1 1.5, b 0.75
    reference.index(bm25s.tokenization.Tokenized(
        ids=[[vocab_id(w) for w in d] for d in alive], vocab={f"w{i}": i for i in range(61)}), show_progress=False)
    for _ in range(20):
        query = sorted({f"w{int(r)}" for r in rng.integers(1, 30, size=3)} & {w for d in alive for w in d})
        if not query:
            continue
        want = np.asarray(reference.get_scores(query), dtype=np.float64)
        np.testing.assert_allclose(grown.scores(query), want, rtol=2e-6, atol=1e-6)  # bm25s keeps float32


def vocab_id(word: str) -> int:
    return int(word[1:])


def test_an_unknown_word_scores_nothing_and_a_dropped_word_is_not_known() -> None:
    index = AppendableBm25()
    index.append([["blue", "elephant"], ["red", "kite"]])
    assert index.scores(["giraffe"]).tolist() == [0.0, 0.0]
    assert index.known("blue")
    index.drop_before(1)
    assert not index.known("blue") and index.known("kite")
    assert index.scores(["blue"]).tolist() == [0.0]
