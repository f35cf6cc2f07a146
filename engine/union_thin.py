"""The union of many streams' timelines, thinned before it is built: only the rows ATA will keep.

`plan_allocation` keeps every candidate and, when the anchors outnumber `budget / (2·m)`, only the anchors
on a power-of-two grid of segment indices. Over 100 streams of 24 h the union holds 2.16 M rows, and
building it then testing each row costs hundreds of milliseconds for the ~1,000 rows kept. Here the same
stride is found from counts alone and each stream contributes just its candidates and its grid rows
(arithmetic for a gapless timeline), so `plan_allocation` receives the rows it would have kept: the
plan is identical (tests/engine/test_union_thin.py), at a cost set by the rows kept, not the hours held.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tempo.memory.index import Timeline

KEY_SHIFT = 40  # composite key = stream position << 40 | segment index (tempo.engine.multi); indices stay
# far below 2**40 (a 4-s segment for 139,000 years)
_INDEX_MASK = (1 << KEY_SHIFT) - 1


def grid_rows(indices: np.ndarray, stride: int) -> np.ndarray:
    """Rows of sorted segment `indices` whose index is a multiple of `stride`."""
    n = len(indices)
    if n and int(indices[-1]) - int(indices[0]) == n - 1:  # no gaps: every stride-th row
        return np.arange((-int(indices[0])) % stride, n, stride, dtype=np.int64)
    return np.flatnonzero(np.asarray(indices) % stride == 0)


def candidate_rows(streams: Sequence[str], timelines: dict[str, Timeline], keys: np.ndarray) -> list[np.ndarray]:
    """Per stream (in set order) the sorted rows of its timeline that hold a candidate of `keys`."""
    keys = np.asarray(keys, dtype=np.int64)
    out = []
    for p, s in enumerate(streams):
        t = np.asarray(timelines[s].indices, dtype=np.int64)
        wanted = np.unique(keys[(keys >> KEY_SHIFT) == p] & _INDEX_MASK)
        rows = np.searchsorted(t, wanted)
        inside = rows < len(t)
        rows, wanted = rows[inside], wanted[inside]
        out.append(rows[t[rows] == wanted])
    return out


def thinned_union(
    streams: Sequence[str], timelines: dict[str, Timeline], keys: np.ndarray, *, anchor_limit: int
) -> tuple[Timeline, int, int]:
    """(the union timeline under composite keys holding only the rows `plan_allocation` keeps with
    `max_anchor_segments=anchor_limit`, the anchors it holds, the anchors left out).

    Passing the anchors it holds as `max_anchor_segments` makes `plan_allocation` keep them all: the
    plan equals the one over the whole union, whose `anchors_dropped` is the third value."""
    cands = candidate_rows(streams, timelines, keys)
    anchors = sum(len(timelines[s].indices) for s in streams) - sum(len(c) for c in cands)
    if anchors > anchor_limit:
        stride = 1 << int(np.ceil(np.log2(anchors / max(anchor_limit, 1))))
        rows = [np.union1d(grid_rows(timelines[s].indices, stride), c) for s, c in zip(streams, cands, strict=True)]
    else:
        rows = [np.arange(len(timelines[s].indices), dtype=np.int64) for s in streams]
    kept = sum(len(r) for r in rows) - sum(len(c) for c in cands)
    if not streams:
        empty = np.zeros(0, np.int64)
        return Timeline("", empty, np.zeros(0), np.zeros(0)), 0, 0
    parts = [(timelines[s], r) for s, r in zip(streams, rows, strict=True)]
    union = Timeline(
        "",
        np.concatenate([np.asarray(t.indices, np.int64)[r] | (np.int64(p) << KEY_SHIFT)
                        for p, (t, r) in enumerate(parts)]),
        np.concatenate([np.asarray(t.starts, np.float64)[r] for t, r in parts]),
        np.concatenate([np.asarray(t.ends, np.float64)[r] for t, r in parts]),
    )
    return union, kept, anchors - kept
