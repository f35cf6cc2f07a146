"""BM25 that grows by appending: an in-memory inverted index whose statistics are read at search time.

bm25s (the keyword index's tokenizer and the reference for the scores) precomputes every document's
term scores when it indexes, so each new document changes every score (N, df, the mean length) and
the whole corpus must be indexed again: about 6 s at 24 h of cues, on every append. Here a document
appended costs only its own postings (term -> [document, term frequency]); N, each term's df and the
mean document length are computed when a question is scored, from the documents alive at that moment.
So the scores equal those of a full re-index of the same documents, for any history of appends and
front drops (tests/memory/test_bm25.py checks both: equality with a rebuild, and with bm25s itself).

Scoring is bm25s' default, the Lucene variant (Kamphuis et al., ECIR 2020), with k1 = 1.5, b = 0.75:

    idf(t)    = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
    score(d)  = Σ over query words t (repeats count again) of
                idf(t) · tf(t, d) / (tf(t, d) + k1 · (1 - b + b · |d| / avgdl))

Documents are positions 0, 1, 2, ... in the order they were appended; `drop_before(p)` forgets the
documents before position p (retention removes a stream's oldest segments), and `compact()` frees
their memory without changing any score.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Sequence

import numpy as np

K1 = 1.5  # bm25s' default term-frequency saturation
B = 0.75  # bm25s' default length normalisation


class AppendableBm25:
    """BM25 over documents given as token lists, appended in order; scores over the alive documents."""

    def __init__(self, *, k1: float = K1, b: float = B) -> None:
        self.k1, self.b = float(k1), float(b)
        self._term_ids: dict[str, int] = {}
        self._docs: list[array] = []  # per term: positions of the documents holding it, ascending
        self._tfs: list[array] = []  # per term: its frequency in each of those documents
        self._lengths = array("q")  # per document: its number of tokens
        self._cumulative = array("q", [0])  # prefix sums of the lengths (for the alive mean, exact)
        self._first = 0  # position of the first alive document
        self._offset = 0  # position of self._lengths[0] (documents freed by compact())

    @property
    def size(self) -> int:
        """Number of alive documents."""
        return self._offset + len(self._lengths) - self._first

    @property
    def first(self) -> int:
        """Position of the first alive document."""
        return self._first

    @property
    def end(self) -> int:
        """Position the next appended document gets."""
        return self._offset + len(self._lengths)

    def append(self, documents: Sequence[Sequence[str]]) -> None:
        """Add documents (each a list of tokens) after the existing ones: cost proportional to their tokens."""
        for tokens in documents:
            position = self.end
            for term, tf in Counter(tokens).items():
                t = self._term_ids.get(term)
                if t is None:
                    t = self._term_ids[term] = len(self._docs)
                    self._docs.append(array("q"))
                    self._tfs.append(array("q"))
                self._docs[t].append(position)
                self._tfs[t].append(tf)
            self._lengths.append(len(tokens))
            self._cumulative.append(self._cumulative[-1] + len(tokens))

    def drop_before(self, position: int) -> None:
        """Forget the documents before `position` (they stop counting in N, df and the mean length)."""
        self._first = min(max(self._first, int(position)), self.end)

    def known(self, term: str) -> bool:
        """Whether an alive document holds `term`."""
        t = self._term_ids.get(term)
        return t is not None and bool(self._docs[t]) and self._docs[t][-1] >= self._first

    def scores(self, words: Sequence[str]) -> np.ndarray:
        """BM25 score of every alive document for the query words (repeats count again): (size,) float64,
        entry j for the document at position first + j."""
        n = self.size
        out = np.zeros(n, dtype=np.float64)  # (n,)
        if n == 0:
            return out
        lo = self._first - self._offset
        lengths = np.frombuffer(self._lengths, dtype=np.int64)  # (stored docs,)
        total = self._cumulative[-1] - self._cumulative[lo]
        avgdl = total / n
        norm = self.k1 * (1.0 - self.b + self.b * lengths / avgdl) if avgdl > 0 else np.full(len(lengths), self.k1)
        for word in words:
            t = self._term_ids.get(word)
            if t is None:
                continue
            docs = np.frombuffer(self._docs[t], dtype=np.int64)  # (postings,) ascending positions
            cut = int(np.searchsorted(docs, self._first))
            docs = docs[cut:] - self._offset  # (df,) into the stored documents
            df = len(docs)
            if df == 0:
                continue
            tf = np.frombuffer(self._tfs[t], dtype=np.int64)[cut:].astype(np.float64)  # (df,)
            idf = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
            out[docs - lo] += idf * (tf / (tf + norm[docs]))
        return out

    def compact(self) -> None:
        """Free the dropped documents' postings (positions and scores are unchanged)."""
        lo = self._first - self._offset
        if lo <= 0:
            return
        for t in range(len(self._docs)):
            docs = np.frombuffer(self._docs[t], dtype=np.int64)
            cut = int(np.searchsorted(docs, self._first))
            if cut:
                self._docs[t] = array("q", self._docs[t][cut:])
                self._tfs[t] = array("q", self._tfs[t][cut:])
        self._lengths = array("q", self._lengths[lo:])
        base = self._cumulative[lo]
        self._cumulative = array("q", (c - base for c in self._cumulative[lo:]))
        self._offset = self._first
