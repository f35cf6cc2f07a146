"""In-process cache of decoded anchor tokens, so repeated questions do not refetch them from Redis.

Answering from memory gives every non-candidate segment a minimal anchor: the first k of its stored
generic memory tokens. Those never change once committed, so a process answering several questions
about a stream (a conversation, a monitor) keeps them decoded here, bounded by bytes, least recently
used first out. Entries are keyed by the stream's number (never reused), read afresh for every
call, so a stream deleted and re-created under the same name never serves stale anchors, however
long the process runs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from tempo.memory.store import RedisMemoryStore
from tempo.memory.store_types import StreamInfo


class AnchorCache:
    """`get(stream, indices, k)` → (n, k, D) anchors (float16 by default), fetching only missing ones."""

    def __init__(
        self, store: RedisMemoryStore, *, max_bytes: int = 512 << 20, dtype: np.dtype | type = np.float16
    ) -> None:
        # float16 by default: the LLM computes in 16-bit anyway, and it halves copies and memory
        # (the int8 codec's error is ~100× float16's rounding).
        self.store = store
        self.dtype = np.dtype(dtype)
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[int, int, int], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, stream: StreamInfo | str, indices: Sequence[int] | np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Anchors of `indices`: ((n, k, D) `dtype`, (n,) bool present). Absent segments are zeros.

        `stream` is the stream's header as the caller just read it, or its name (then read here).
        """
        info = self.store.stream_info(stream) if isinstance(stream, str) else stream
        return self.get_many([(info, indices, k)])[0]

    def get_many(
        self, requests: Sequence[tuple[StreamInfo, Sequence[int] | np.ndarray, int]]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """`get` for several (stream header, indices, k) at once (a cross-stream answer's anchors): what
        is missing from the cache is read for all of them in one round trip (`token_heads_many`)."""
        outs: list[tuple[np.ndarray, np.ndarray]] = []
        missing: list[list[int]] = []
        with self._lock:
            for info, indices, k in requests:
                idx = np.asarray(indices, dtype=np.int64)
                out = np.zeros((len(idx), k, info.settings.token_dim), self.dtype)
                present = np.zeros(len(idx), bool)
                rows: list[int] = []
                for row, i in enumerate(idx.tolist()):
                    entry = self._entries.get((info.number, i, k))
                    if entry is None:
                        rows.append(row)
                        continue
                    self._entries.move_to_end((info.number, i, k))
                    out[row] = entry
                    present[row] = True
                outs.append((out, present))
                missing.append(rows)
                self.hits += len(idx) - len(rows)
                self.misses += len(rows)
        wanted = [r for r, rows in enumerate(missing) if rows]
        if not wanted:
            return outs
        fetched = self.store.token_heads_many([
            (requests[r][0].name, np.asarray(requests[r][1], np.int64)[missing[r]].tolist(), requests[r][2],
             requests[r][0].settings.token_dim)
            for r in wanted
        ])  # fmt: skip
        for r, (tokens32, ok) in zip(wanted, fetched, strict=True):
            info, indices, k = requests[r]
            idx, rows = np.asarray(indices, np.int64), missing[r]
            out, present = outs[r]
            tokens = tokens32.astype(self.dtype, copy=False)
            out[rows] = tokens
            present[rows] = ok
            with self._lock:
                for row, entry, found in zip(rows, tokens, ok, strict=True):
                    if found:
                        self._put((info.number, int(idx[row]), k), entry)
        return outs

    def _put(self, key: tuple[int, int, int], tokens: np.ndarray) -> None:
        if key in self._entries:
            return
        self._entries[key] = tokens
        self.bytes += tokens.nbytes
        while self.bytes > self.max_bytes and self._entries:
            _, old = self._entries.popitem(last=False)
            self.bytes -= old.nbytes
