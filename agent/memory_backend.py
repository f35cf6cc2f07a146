"""`MemoryBackend`: what the agent graph calls for its model and memory work, on a `TempoService`.

Each node of the graph calls one step of the service's `RecallPipeline` (tempo.engine.recall) with the
turn's `AskSettings`, and hands its typed result to the next node through the graph state:

    retrieve  -> RecallPipeline.retrieve (FAISS top-K in scope + temporal neighbours)
    compress  -> RecallPipeline.compress through the QueryCache (Redis, TTL) -> Compression
    allocate  -> RecallPipeline.plan (ATA over the whole timeline, anchors for the rest) -> AllocationPlan
    answer    -> RecallPipeline.answer through the AnswerCache (assemble + the model's answer, streamed)

What a turn cost (cache hits, seconds per step) the graph's nodes write into its state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from tempo.agent.llm import rewrite_with_model
from tempo.agent.rewrite import HistoryTurn
from tempo.agent.timescope import StreamClock
from tempo.engine.multi import CrossStreamRecall, stream_hits, stream_infos
from tempo.engine.recall import AllocationPlan, Compression
from tempo.engine.result import SegmentHit
from tempo.memory.store_types import StreamInfo
from tempo.service import TempoService
from tempo.settings import AskSettings
from tempo.streaming.segment import is_live


class MemoryBackend:
    """The graph's steps over a `TempoService`. Thread-safe: model calls are serialised by the
    service's model lock."""

    def __init__(self, service: TempoService, *, rewrite_tokens: int = 48) -> None:
        self.service = service
        self.rewrite_tokens = rewrite_tokens

    def stream_clock(self, stream: str) -> StreamClock:
        """The stream's covered duration (its "now", seconds) and wall-clock origin (Unix seconds of
        stream time 0, None for files), for resolving time words in questions. Raises
        `UnknownStreamError` (a TempoError) for an unknown stream."""
        return self.clock_of(self.service.stream(stream))  # UnknownStreamError names the known streams

    def clock_of(self, info: StreamInfo) -> StreamClock:
        """`stream_clock` from a header already read."""
        return self.streams_clocks([info.name], {info.name: info})[info.name]

    def retrieve(
        self,
        stream: str,
        query: str,
        top_k: int,
        time_range: tuple[float, float] | None,
        settings: AskSettings,
    ) -> list[SegmentHit]:
        """The top_k segments closest to `query` (FAISS), restricted to segments overlapping
        `time_range` when given, plus their temporal neighbours (`settings.neighbours` on each side,
        within the range); best first, no duplicates."""
        got = self.service.recall.retrieve(
            stream, query, top_k=top_k, neighbours=settings.neighbours, time_range=time_range
        )
        timeline = got.timeline
        rows = {int(i): r for r, i in enumerate(timeline.indices.tolist())}
        hits: list[SegmentHit] = []
        seen: set[int] = set()
        for h in got.hits:
            if h.index in rows and h.index not in seen:
                seen.add(h.index)
                hits.append(
                    SegmentHit(
                        index=int(h.index), start=float(h.start), end=float(h.end), score=float(h.score), stream=stream
                    )
                )
        # Neighbours were not ranked by FAISS: they follow the hits in time order with score 0.
        for i in got.candidates.tolist():
            if i not in seen and i in rows:
                seen.add(i)
                r = rows[i]
                hits.append(
                    SegmentHit(
                        index=i, start=float(timeline.starts[r]), end=float(timeline.ends[r]), score=0.0, stream=stream
                    )
                )
        return hits

    def compress(self, stream: str, question: str, indices: Sequence[int]) -> Compression:
        """The query-aware pass on these segments: relevance (0..1) and tokens per index. Results are
        cached per (stream, segment, question) with a TTL, so a repeated question costs no model call."""
        return self.service.recall.compress(self.service.stream(stream), question, [int(i) for i in indices])

    def allocate(self, stream: str, compression: Compression, settings: AskSettings) -> AllocationPlan:
        """ATA over the stream's whole timeline: the compressed segments by their relevance, every
        other segment a minimal anchor from its stored generic tokens; in time order."""
        return self.service.recall.plan(
            self.service.stream(stream), compression, budget=settings.budget, min_tokens=settings.min_tokens,
            text_tokens=settings.text_tokens,
        )

    def answer(
        self,
        stream: str,
        question: str,
        plan: AllocationPlan,
        compression: Compression,
        on_text: Callable[[str], None] | None,
        settings: AskSettings,
    ) -> tuple[str, bool]:
        """The global LLM's answer (with `<t seconds>` time tags in its input), text pieces passed to
        `on_text` as they are generated; returns the whole text and whether it came from the cache."""
        return self.service.recall.answer(
            self.service.stream(stream), question, plan, compression, settings=settings, on_text=on_text
        )

    # ----- across streams (tempo.engine.multi): the same steps over a set of streams ------------------

    # `infos`: the streams' headers as this question read them (`stream_headers`, once per question);
    # None reads them again.

    @property
    def cross(self) -> CrossStreamRecall:
        return CrossStreamRecall(self.service.recall)

    def _cross(self, infos: Mapping[str, StreamInfo] | None) -> CrossStreamRecall:
        return CrossStreamRecall(self.service.recall, infos)

    def stream_headers(self, streams: Sequence[str]) -> dict[str, StreamInfo]:
        """The streams' headers in one round trip (UnknownStreamError names the known streams)."""
        return stream_infos(self.service.store, streams)

    def streams_clocks(
        self, streams: Sequence[str], infos: Mapping[str, StreamInfo] | None = None
    ) -> dict[str, StreamClock]:
        """Each stream's own clock: a cross-stream question's time words are read on each
        (tempo.agent.stream_scopes)."""
        headers = infos if infos is not None and all(s in infos for s in streams) else self.stream_headers(streams)
        # Live streams' wall-clock origins (Unix seconds of stream time 0, from the first retained
        # segment: it may start later than 0), all in one round trip; files have none.
        live = {s: headers[s].first for s in streams if is_live(headers[s].source) and headers[s].segments}
        origins = self.service.store.wallclock_origins(live) if live else {}
        return {s: StreamClock(duration=float(headers[s].end or 0.0), origin=origins.get(s)) for s in streams}

    def streams_clock(self, streams: Sequence[str]) -> StreamClock:
        """The longest of the streams' clocks."""
        return max(self.streams_clocks(streams).values(), key=lambda c: c.duration)

    def retrieve_streams(
        self,
        streams: Sequence[str],
        query: str,
        top_k: int,
        time_range: tuple[float, float] | None,
        settings: AskSettings,
        *,
        time_ranges: Mapping[str, tuple[float, float] | None] | None = None,
        infos: Mapping[str, StreamInfo] | None = None,
    ) -> list[SegmentHit]:
        """`retrieve` over several streams: the query embedded once, FAISS top_k over all of them, then
        each hit's temporal neighbours in its own stream; each candidate names its stream.
        `time_ranges`: each stream's own range (instead of `time_range` for all)."""
        got = self._cross(infos).retrieve(
            list(streams), query, top_k=top_k, neighbours=settings.neighbours, time_range=time_range,
            time_ranges=time_ranges,
        )
        return stream_hits(got)

    def compress_streams(
        self,
        streams: Sequence[str],
        question: str,
        hits: Sequence[SegmentHit],
        *,
        infos: Mapping[str, StreamInfo] | None = None,
    ) -> Compression:
        """The query-aware pass on cross-stream candidates (per stream, cached), under composite keys."""
        return self._cross(infos).compress(list(streams), question, hits)

    def allocate_streams(
        self,
        streams: Sequence[str],
        compression: Compression,
        settings: AskSettings,
        *,
        infos: Mapping[str, StreamInfo] | None = None,
    ) -> AllocationPlan:
        """One ATA over the union of the streams' whole timelines, under one budget."""
        return self._cross(infos).plan(
            list(streams), compression, budget=settings.budget, min_tokens=settings.min_tokens,
            text_tokens=settings.text_tokens,
        )

    def answer_streams(
        self,
        streams: Sequence[str],
        question: str,
        plan: AllocationPlan,
        compression: Compression,
        on_text: Callable[[str], None] | None,
        settings: AskSettings,
        *,
        infos: Mapping[str, StreamInfo] | None = None,
    ) -> tuple[str, bool]:
        """The answer over the union plan, each segment tagged with its stream and time."""
        return self._cross(infos).answer(
            list(streams), question, plan, compression, settings=settings, on_text=on_text
        )

    def rewrite_with_llm(self, history: Sequence[HistoryTurn], question: str) -> str:
        """The model's attempt at a standalone version of `question` given the thread's history (oldest
        first). May return anything: the graph validates it and falls back to a deterministic rewrite."""
        svc = self.service
        with svc.model_lock:
            return rewrite_with_model(svc.model, history, question, max_new_tokens=self.rewrite_tokens)
