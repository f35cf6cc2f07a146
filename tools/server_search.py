"""Search over HTTP (`tempo serve`): POST /v1/search finds the moments of one or more streams that best
match a description (the embedding index; it never waits for the model)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio
from fastapi import FastAPI
from pydantic import BaseModel, Field
from tempo import inputs
from tempo.engine.text_track import fuse_across_streams
from tempo.inputs import check_time_range
from tempo.memory.text_index import read_cues

if TYPE_CHECKING:
    from tempo.tools.server import TempoServer



class SearchRequest(inputs.StrictInput):
    query: inputs.Query
    streams: list[inputs.StreamName] | None = Field(
        default=None, max_length=256, description="Streams to search; omit for all streams."
    )
    top_k: inputs.TopK = 5
    start: inputs.StreamTime | None = None
    end: inputs.StreamTime | None = None


class Moment(BaseModel):
    stream: str
    index: int
    start: float
    end: float
    score: float
    words: list[str] = []  # the cue texts (subtitles, speech) the segment holds


class TranscriptCue(BaseModel):
    text: str
    start: float
    end: float
    source: str
    language: str | None


class TranscriptOut(BaseModel):
    stream: str
    start: float | None
    end: float | None
    cues: list[TranscriptCue]


class SearchOut(BaseModel):
    query: str
    moments: list[Moment]


def register_search_routes(app: FastAPI, server: TempoServer) -> None:
    """POST /v1/search over `server.service` (counted as the search_moments tool in the metrics)."""
    service = server.service

    @app.post("/v1/search", tags=["search"])
    async def search(body: SearchRequest) -> SearchOut:
        def work() -> SearchOut:
            names = body.streams if body.streams is not None else [s.name for s in service.streams()]
            moments: list[Moment] = []
            faiss_hits, keyword_hits = [], []
            for name in dict.fromkeys(names):
                info = service.stream(name)
                time_range = check_time_range(body.start, body.end, info.end)
                pictures, words_hits = service.moment_candidates(name, body.query, top_k=body.top_k,
                                                                 time_range=time_range)
                faiss_hits += pictures
                keyword_hits += [(name, h) for h in words_hits]
            # One ranking over all streams: pictures and words fused by rank (engine/text_track.py).
            fused = fuse_across_streams(faiss_hits, keyword_hits, body.top_k)
            for name in dict.fromkeys(h.stream for h in fused):
                hits = [h for h in fused if h.stream == name]
                words = read_cues(service.store, name, [int(h.index) for h in hits])
                for h in hits:
                    moments.append(
                        Moment(
                            stream=name,
                            index=int(h.index),
                            start=round(float(h.start), 3),
                            end=round(float(h.end), 3),
                            score=round(float(h.score), 6),
                            words=[c.text for c in words.get(int(h.index), ())],
                        )
                    )
            moments.sort(key=lambda m: (-m.score, m.stream, m.index))
            return SearchOut(query=body.query, moments=moments[: body.top_k])

        t0 = time.perf_counter()
        try:
            return await anyio.to_thread.run_sync(work)
        finally:
            server.tool_metrics.record("search_moments", time.perf_counter() - t0, error=False)

    @app.get("/v1/streams/{name}/transcript", tags=["search"])
    async def transcript(
        name: inputs.StreamName, start: inputs.StreamTime | None = None, end: inputs.StreamTime | None = None
    ) -> TranscriptOut:
        """The cues (subtitles, speech) of stream `name` overlapping [start, end) seconds, in time order."""

        def work() -> TranscriptOut:
            info = service.stream(name)
            time_range = check_time_range(start, end, info.end)
            cues = [TranscriptCue(**c.to_dict()) for c in service.transcript(name, time_range)]
            lo, hi = (None, None) if time_range is None else time_range
            return TranscriptOut(stream=name, start=lo, end=hi, cues=cues)

        return await anyio.to_thread.run_sync(work)
