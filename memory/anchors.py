"""In-process cache of decoded anchor tokens, so repeated questions do not refetch them from Redis.

Answering from memory gives every non-candidate segment a minimal anchor: the first k of its stored
generic memory tokens. Those never change once committed, so a process answering several questions
about a stream (a conversation, a monitor) keeps them decoded here, bounded by bytes, least recently
used first out. Entries are keyed by the stream's number as well as its name, so a stream deleted
and re-created under the same name never serves stale anchors.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from tempo.memory.store import RedisMemoryStore


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
        self._numbers: dict[str, tuple[int, int]] = {}  # name → (number, token dim)
        self._lock = threading.Lock()

    def _stream(self, name: str) -> tuple[int, int]:
        known = self._numbers.get(name)
        if known is None:
            info = self.store.stream_info(name)
            known = self._numbers[name] = (info.number, info.settings.token_dim)
        return known

    def forget(self, name: str) -> None:
        """Drop what is known of a stream (after it was deleted or re-created)."""
        with self._lock:
            self._numbers.pop(name, None)

    def get(self, name: str, indices: Sequence[int] | np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Anchors of `indices`: ((n, k, D) `dtype`, (n,) bool present). Absent segments are zeros."""
        number, dim = self._stream(name)
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
