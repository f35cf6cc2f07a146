"""Streams over HTTP (`tempo serve`): list them, show one, delete one (its ingest jobs with it).

    GET /v1/streams, GET/DELETE /v1/streams/{stream}

A stream's source is shown without credentials (tempo.errors.redact_url); `job` is its latest ingest job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
from fastapi import FastAPI
from pydantic import BaseModel
from tempo.errors import redact_url

if TYPE_CHECKING:
    from tempo.tools.server import TempoServer


class StreamOut(BaseModel):
    name: str
    segments: int
    start: float | None
    end: float | None
    bytes: int
    live: bool
    source: str | None = None
    sample_fps: float
    window: int
    job: dict[str, Any] | None = None
    family: str = "tempo"  # the model family that wrote the stream ("tempo" | "qwen3-vl")


def register_stream_routes(app: FastAPI, server: TempoServer) -> None:
    """The stream routes over `server.service` and `server.jobs`."""
    service = server.service

    @app.get("/v1/streams", tags=["streams"])
    async def list_streams() -> list[StreamOut]:
        def work() -> list[StreamOut]:
            jobs = server.jobs.list()
            return [_stream_out(server, info, jobs) for info in service.streams()]

        return await anyio.to_thread.run_sync(work)

    @app.get("/v1/streams/{stream}", tags=["streams"])
    async def show_stream(stream: str) -> StreamOut:
        def work() -> StreamOut:
            return _stream_out(server, service.stream(stream), server.jobs.list())

        return await anyio.to_thread.run_sync(work)

    @app.delete("/v1/streams/{stream}", status_code=204, tags=["streams"])
    async def delete_stream(stream: str) -> None:
        def work() -> None:
            service.stream(stream)
            for job in server.jobs.list():
                if job["stream"] == stream:
                    server.jobs.delete(job["id"])
            service.store.delete_stream(stream)
            service.index.sync()

        await anyio.to_thread.run_sync(work)


def _stream_out(server: TempoServer, info: Any, jobs: list[dict[str, Any]]) -> StreamOut:
    job = next((j for j in reversed(jobs) if j["stream"] == info.name), None)
    source = info.source or {}
    return StreamOut(
        name=info.name,
        segments=info.segments,
        start=info.start,
        end=info.end,
        bytes=info.bytes.total,
        live=bool(source.get("live")),
        source=redact_url(str(source["uri"])) if source.get("uri") else None,
        sample_fps=float(info.settings.sample_fps),
        window=int(info.settings.window),
        job=job,
        family=str(info.settings.family),
    )
