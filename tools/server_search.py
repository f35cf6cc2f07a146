"""Search over HTTP (`tempo serve`): POST /v1/search finds the moments of one or more streams that best
match a description (the embedding index; it never waits for the model)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio
from fastapi import FastAPI
from pydantic import BaseModel, Field
from tempo import inputs
from tempo.agent.cross import search_streams
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
            # The query embedded once: one FAISS top-K over all the chosen streams, fused with the keyword
            # matches of their words (tempo.agent.cross.search_streams).
            hits = search_streams(service, body.streams, body.query, top_k=body.top_k, start=body.start, end=body.end)
            words = {
                name: read_cues(service.store, name, [int(h.index) for h in hits if h.stream == name])
                for name in dict.fromkeys(h.stream for h in hits)
            }
            moments = [
                Moment(
                    stream=h.stream,
                    index=int(h.index),
                    start=round(float(h.start), 3),
                    end=round(float(h.end), 3),
                    score=round(float(h.score), 6),
                    words=[c.text for c in words[h.stream].get(int(h.index), ())],
                )
                for h in hits
            ]
            return SearchOut(query=body.query, moments=moments)

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
