"""Segment reads of RedisMemoryStore: records, their token heads and embeddings, time-range queries.

Mixed into RedisMemoryStore (memory/store.py), which owns the Redis client, the key layout and the
stream directory these methods use. Segments moved to the cold tier (memory/cold.py) are read from
its shards transparently.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import redis
from tempo.memory import codec
from tempo.memory import cold as cold_tier
from tempo.memory.cluster import Script
from tempo.memory.cold import ColdPointer, ColdTier
from tempo.memory.errors import ColdShardMissingError, SegmentNotFoundError, UnknownStreamError, redis_errors
from tempo.memory.keys import StreamKeys
from tempo.memory.records import FileReference, SegmentRecord
from tempo.memory.store_types import IndexFeed, StreamInfo
from tempo.streaming.subtitles import Cue


class SegmentReads:
    """Reading committed segments back, in any order, one round trip per call."""

    # Provided by RedisMemoryStore (memory/store.py):
    client: redis.Redis
    keys: StreamKeys
    cold: ColdTier
    _heads: Script  # scripts.HEADS

    if TYPE_CHECKING:

        def stream_info(self, name: str) -> StreamInfo: ...

        def stream_names(self) -> list[str]: ...

        def _require(self, name: str) -> None: ...

    @redis_errors
    def get_segments(
        self,
        name: str,
        indices: Sequence[int],
        *,
        tokens: bool | int = True,
        embedding: bool = True,
        recompress: bool = True,
    ) -> list[SegmentRecord | None]:
        """Records for `indices` (None where absent), one round trip.

        `tokens`: True for the whole stored head, an int k for its first k tokens only, False for none.
        """
        dim = self._token_dim(name)
        width = codec.token_record_bytes(dim)
        fields = ["m", "e", "r", "p", "c"] if recompress else ["m", "e", "c"]
        pipe = self.client.pipeline(transaction=False)
        for i in indices:
            pipe.hmget(self.keys.segment(name, i), fields)
            if tokens is True:
                pipe.get(self.keys.tokens(name, i))
            elif tokens:
                pipe.getrange(self.keys.tokens(name, i), 0, int(tokens) * width - 1)
        raw = pipe.execute()
        step = 2 if tokens is not False else 1
        rows = [raw[j * step] for j in range(len(indices))]
        toks = [raw[j * step + 1] if step == 2 else None for j in range(len(indices))]
        proxies = [values[3] if recompress else None for values in rows]
        # Cold segments (memory/cold.py): their token head and proxy come from the shards.
        wanted: list[tuple[int, ColdPointer, int]] = []
        slots: list[tuple[list[bytes | None], int]] = []
        for j, (i, values) in enumerate(zip(indices, rows, strict=True)):
            if values[0] is None or values[-1] is None:
                continue
            pointer = ColdPointer.parse(values[-1])
            if tokens is not False:
                wanted.append((int(i), pointer, cold_tier.TOKENS))
                slots.append((toks, j))
            if recompress:
                wanted.append((int(i), pointer, cold_tier.PROXY))
                slots.append((proxies, j))
        if wanted:
            for (target, j), payload in zip(slots, self._cold_payloads(name, wanted), strict=True):
                target[j] = payload or None
            if tokens is not False and tokens is not True:
                toks = [None if t is None else t[: int(tokens) * width] for t in toks]
        out: list[SegmentRecord | None] = []
        for j, i in enumerate(indices):
            values = rows[j]
            if values[0] is None:
                out.append(None)
                continue
            out.append(
                self._record(
                    name,
                    int(i),
                    values[0],
                    emb=values[1] if embedding else None,
                    ref=values[2] if recompress else None,
                    proxy=proxies[j],
                    tok=toks[j],
                    dim=dim,
                )
            )
        return out

    def _cold_payloads(self, name: str, wanted: Sequence[tuple[int, ColdPointer, int]]) -> list[bytes]:
        """Payloads of (index, pointer, kind) from the stream's cold-tier shards (checksums verified)."""
        root = self.client.hget(self.keys.info(name), "cold_root")
        if root is None:
            raise ColdShardMissingError(f"stream {name!r} points to cold-tier data but records no cold-tier root")
        return self.cold.read(name, root.decode(), wanted)

    def get_segment(self, name: str, index: int, **parts: Any) -> SegmentRecord:
        """One record; UnknownStreamError / SegmentNotFoundError (with the retained range) when absent."""
        record = self.get_segments(name, [index], **parts)[0]
        if record is None:
            info = self.stream_info(name)
            raise SegmentNotFoundError(
                f"stream {name!r} holds segments {info.first}..{info.committed}, not {index}"
            )
        return record

    @staticmethod
    def _record(
        name: str,
        index: int,
        meta: bytes,
        *,
        emb: bytes | None,
        ref: bytes | None,
        proxy: bytes | None,
        tok: bytes | None,
        dim: int,
    ) -> SegmentRecord:
        m = SegmentRecord.parse_meta(meta)
        return SegmentRecord(
            stream=name,
            index=index,
            start=float(m["s"]),
            end=float(m["e"]),
            timestamps=np.asarray(m["ts"], dtype=np.float64),
            frame_size=(int(m["hw"][0]), int(m["hw"][1])),
            first_frame_index=int(m["ff"]),
            wallclock_start=m["wc"],
            gap_before=float(m["gap"]),
            committed_at=float(m["c"]),
            tokens=codec.decode_tokens(tok, dim) if tok else None,
            embedding=codec.decode_embedding(emb) if emb else None,
            file_ref=FileReference.from_json(ref) if ref else None,
            proxy=proxy or None,
            cues=tuple(Cue.from_row(row) for row in m.get("cu", ())),
        )

    def iter_segments(
        self, name: str, start_index: int | None = None, *, batch: int = 256, **parts: Any
    ) -> Iterator[SegmentRecord]:
        """All retained segments in index order, fetched `batch` at a time."""
        info = self.stream_info(name)
        i = info.first if start_index is None else max(start_index, info.first)
        while i <= info.committed:
            hi = min(i + batch, info.committed + 1)
            for record in self.get_segments(name, range(i, hi), **parts):
                if record is not None:  # removed by retention meanwhile
                    yield record
            i = hi
            info = self.stream_info(name)

    @redis_errors
    def indices_in_time_range(self, name: str, t0: float, t1: float) -> list[int]:
        """Indices of retained segments overlapping [t0, t1) seconds, in order."""
        self._require(name)
        key = self.keys.times(name)
        pipe = self.client.pipeline(transaction=False)
        # The segment starting at or before t0 may still cover t0; the rest start inside the range.
        pipe.zrevrangebyscore(key, t0, "-inf", start=0, num=1)
        pipe.zrangebyscore(key, f"({t0}", f"({t1}")
        before, inside = pipe.execute()
        indices = [int(x) for x in before] + [int(x) for x in inside]
        if before:
            first = self.get_segments(name, [int(before[0])], tokens=False, embedding=False, recompress=False)
            if first[0] is None or first[0].end <= t0:
                indices = indices[1:]
        return indices

    def segments_in_time_range(self, name: str, t0: float, t1: float, **parts: Any) -> list[SegmentRecord]:
        """Records of the segments overlapping [t0, t1) seconds, in order."""
        records = self.get_segments(name, self.indices_in_time_range(name, t0, t1), **parts)
        return [r for r in records if r is not None]

    @redis_errors
    def embeddings(self, name: str, lo: int, hi: int) -> IndexFeed:
        """Segments lo..hi-1 for indexing, one round trip; absent ones (retention) are skipped.

        Embeddings are the stored float16 values as float32.
        """
        return self.embeddings_of(name, range(lo, hi))

    @redis_errors
    def embeddings_of(self, name: str, indices: Sequence[int]) -> IndexFeed:
        """`embeddings` of the given segments (in that order), one round trip; absent ones are skipped."""
        pipe = self.client.pipeline(transaction=False)
        for i in indices:
            pipe.hmget(self.keys.segment(name, i), "m", "e")
        idx, starts, ends, ffs, vecs = [], [], [], [], []
        for i, (meta, emb) in zip(indices, pipe.execute(), strict=True):
            if meta is None or not emb:
                continue
            m = json.loads(meta)
            idx.append(i)
            starts.append(m["s"])
            ends.append(m["e"])
            ffs.append(m["ff"])
            vecs.append(emb)
        width = len(vecs[0]) // 2 if vecs else 0
        matrix = np.frombuffer(b"".join(vecs), dtype=np.float16).reshape(len(idx), width).astype(np.float32)
        return IndexFeed(
            np.asarray(idx, np.int64),
            np.asarray(starts, np.float64),
            np.asarray(ends, np.float64),
            np.asarray(ffs, np.int64),
            matrix,
        )

    def token_heads(
        self, name: str, indices: Sequence[int], k: int, dim: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The first k stored tokens of each segment: ((n, k, D) float32, (n,) bool present).

        k·(D+34) bytes per segment cross the wire. One script call per 1024 segments (a few ms of
        Redis time each, so commits interleave), all calls in one round trip: thousands of anchors
        cost tens of milliseconds, not one command each. Rows of absent segments (or segments storing
        fewer than k tokens) are zero with present False.
        """
        return self.token_heads_many([(name, indices, k, dim)])[0]

    @redis_errors
    def token_heads_many(
        self, requests: Sequence[tuple[str, Sequence[int], int, int]]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """`token_heads` of several (stream, indices, k, D) requests (a cross-stream answer's anchors),
        all their script calls in one round trip (a cluster pipeline groups them per node), and one
        more for every short row's cold-tier pointer; one (tokens, present) per request, in order."""
        sizes = [k * codec.token_record_bytes(dim) for _, _, k, dim in requests]
        pipe = self.client.pipeline(transaction=False)
        calls: list[int] = []
        for (name, indices, _, _), nbytes in zip(requests, sizes, strict=True):
            keys = [self.keys.tokens(name, i) for i in indices]
            for lo in range(0, len(keys), 1024):
                self._heads(keys=keys[lo : lo + 1024], args=[nbytes - 1], client=pipe)
            calls.append(-(-len(keys) // 1024))
        chunks = pipe.execute() if sum(calls) else []
        raws: list[list[bytes]] = []
        for n in calls:
            raws.append([b for chunk in chunks[:n] for b in chunk])
            chunks = chunks[n:]
        # Absent, shorter than k, or in the cold tier (memory/cold.py): look for pointers, all at once.
        short = [(r, j) for r, (raw, nbytes) in enumerate(zip(raws, sizes, strict=True))
                 for j, b in enumerate(raw) if len(b) != nbytes]  # fmt: skip
        if short:
            pipe = self.client.pipeline(transaction=False)
            for r, j in short:
                pipe.hget(self.keys.segment(requests[r][0], requests[r][1][j]), "c")
            cold: dict[int, list[tuple[int, ColdPointer]]] = {}
            for (r, j), c in zip(short, pipe.execute(), strict=True):
                if c is not None:
                    cold.setdefault(r, []).append((j, ColdPointer.parse(c)))
            for r, found in cold.items():
                name, indices = requests[r][0], requests[r][1]
                wanted = [(int(indices[j]), pointer, cold_tier.TOKENS) for j, pointer in found]
                for (j, _), payload in zip(found, self._cold_payloads(name, wanted), strict=True):
                    raws[r][j] = payload[: sizes[r]]
        return [_decode_heads(raw, k, dim, nbytes) for raw, (_, _, k, dim), nbytes in zip(raws, requests, sizes,
                                                                                          strict=True)]  # fmt: skip

    @redis_errors
    def wallclock_origins(self, firsts: Mapping[str, int]) -> dict[str, float | None]:
        """Per stream, the wall-clock time (Unix seconds) of its stream time 0, from its segment
        `firsts[stream]` (its first retained one: wall-clock start minus stream start); None where that
        segment is absent or has no wall clock (a file). One round trip for all the streams."""
        names = list(firsts)
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.hget(self.keys.segment(name, firsts[name]), "m")
        out: dict[str, float | None] = {}
        for name, meta in zip(names, pipe.execute(), strict=True):
            m = SegmentRecord.parse_meta(meta) if meta is not None else {}
            out[name] = None if m.get("wc") is None else float(m["wc"]) - float(m["s"])
        return out

    @redis_errors
    def anchor_thumbnails(self, name: str, indices: Sequence[int]) -> list[bytes | None]:
        """The stored anchor thumbnails of `indices` (memory/thumbnails.py), one round trip; None where a
        segment is absent or stores none (a Tempo stream, or one ingested before they were stored)."""
        pipe = self.client.pipeline(transaction=False)
        for i in indices:
            pipe.hget(self.keys.segment(name, i), "a")
        return [value or None for value in pipe.execute()]

    def _token_dim(self, name: str) -> int:
        """D of a stream's tokens, one round trip; UnknownStreamError when absent."""
        settings = self.client.hget(self.keys.info(name), "settings")
        if settings is None:
            raise UnknownStreamError(name, self.stream_names())
        return int(json.loads(settings)["token_dim"])


def _decode_heads(raw: list[bytes], k: int, dim: int, nbytes: int) -> tuple[np.ndarray, np.ndarray]:
    """Token records of k tokens each -> ((n, k, D) float32, (n,) present); rows not nbytes long are zero."""
    present = np.fromiter((len(b) == nbytes for b in raw), dtype=bool, count=len(raw))
    if not raw:
        return np.zeros((0, k, dim), np.float32), present
    if present.all():  # the usual case: decode in one pass, no masked copy
        return codec.decode_token_batch(raw, k, dim), present
    out = np.zeros((len(raw), k, dim), np.float32)
    if present.any():
        found = [b for b, ok in zip(raw, present, strict=True) if ok]
        out[present] = codec.decode_token_batch(found, k, dim)
    return out, present
