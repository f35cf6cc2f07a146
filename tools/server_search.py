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


class SearchOut(BaseModel):
    query: str
    moments: list[Moment]


def register_search_routes(app: FastAPI, server: TempoServer) -> None:
    """POST /v1/search over `server.service` (counted as the search_moments tool in the metrics)."""
    service = server.service

    @app.post("/v1/search", tags=["search"])
    async def search(body: SearchRequest) -> SearchOut:
        def work() -> SearchOut:
            # The query embedded once and one FAISS top-K over all the chosen streams (tempo.agent.cross).
            hits = search_streams(service, body.streams, body.query, top_k=body.top_k, start=body.start, end=body.end)
            moments = [
                Moment(
                    stream=h.stream,
                    index=int(h.index),
                    start=round(float(h.start), 3),
                    end=round(float(h.end), 3),
                    score=round(float(h.score), 6),
                )
                for h in hits
            ]
            return SearchOut(query=body.query, moments=moments)

        t0 = time.perf_counter()
        try:
            return await anyio.to_thread.run_sync(work)
        finally:
            server.tool_metrics.record("search_moments", time.perf_counter() - t0, error=False)
