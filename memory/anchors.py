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
        name, number, dim = info.name, info.number, info.settings.token_dim
        idx = np.asarray(indices, dtype=np.int64)
        out = np.zeros((len(idx), k, dim), self.dtype)
        present = np.zeros(len(idx), bool)
        missing: list[int] = []
        with self._lock:
            for row, i in enumerate(idx.tolist()):
                entry = self._entries.get((number, i, k))
                if entry is None:
                    missing.append(row)
                    continue
                self._entries.move_to_end((number, i, k))
                out[row] = entry
                present[row] = True
        self.hits += len(idx) - len(missing)
        self.misses += len(missing)
        if missing:
            fetched32, ok = self.store.token_heads(name, idx[missing].tolist(), k, dim)
            fetched = fetched32.astype(self.dtype, copy=False)
            out[missing] = fetched
            present[missing] = ok
            with self._lock:
                for row, tokens, found in zip(missing, fetched, ok, strict=True):
                    if found:
                        self._put((number, int(idx[row]), k), tokens)
        return out, present

    def _put(self, key: tuple[int, int, int], tokens: np.ndarray) -> None:
        if key in self._entries:
            return
        self._entries[key] = tokens
        self.bytes += tokens.nbytes
        while self.bytes > self.max_bytes and self._entries:
            _, old = self._entries.popitem(last=False)
            self.bytes -= old.nbytes
