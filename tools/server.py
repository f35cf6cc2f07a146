"""`tempo serve`: one HTTP server — REST API under /v1, the MCP endpoint at /mcp, /health, /metrics,
OpenAPI at /docs, and the web console at /.

    app = create_app(TempoService(model="ckpt"), ServeSettings(media_root=Path("/videos")))
    uvicorn.run(app, host="127.0.0.1", port=8000)

Everything goes through `TempoService` (memory, model) and `Conversations` (questions, threads), the
same objects the CLI and the MCP tools use. Errors are RFC 9457 problem documents with one sentence.

Concurrency: questions (model calls) wait in one FIFO queue of bounded length (`ModelQueue`): when it
is full the answer is 429 with Retry-After, and a question that does not finish within its timeout
is answered 504. Search, lists and clips never enter that queue (they run in worker threads beside it).
Security: `HTTPGuard` (tempo.tools.http_security) in front of every route; CORS only for
`--cors-origin`; request bodies capped at `max_body_bytes`; sources checked by
tempo.tools.server_sources. Model and memory settings are the service's.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import math
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from tempo import inputs
from tempo.agent.conversations import Conversations, check_time_range
from tempo.agent.errors import ThreadNotFoundError
from tempo.agent.memory_backend import MemoryBackend
from tempo.agent.monitoring.webhooks import DeliveryThread, start_delivery_thread
from tempo.agent.toolkit import VideoToolkit
from tempo.engine.recall import AllocationPlan, Compression
from tempo.errors import TempoError, redact_url
from tempo.memory.errors import (
    ColdStorageError,
    MemoryUnavailableError,
    UnknownAlertError,
    UnknownRuleError,
    UnknownStreamError,
)
from tempo.memory.queue_metrics import QueueCollector
from tempo.models.errors import CheckpointError, EmbedderLoadError, ModelNotAvailableError
from tempo.settings import RecallSettings
from tempo.tools.errors import ModelTimeoutError, QueueFullError
from tempo.tools.http_security import HTTPGuard, RequestMetrics, ToolMetrics, metrics_response
from tempo.tools.mcp_server import TOOL_NAMES, build_server, mcp_asgi_app
from tempo.tools.server_alerts import register_alert_routes
from tempo.tools.server_clips import ClipCache, render_clip
from tempo.tools.server_jobs import IngestJobs, JobNotFoundError, StreamBusyError
from tempo.tools.server_sources import check_source

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
TOKEN_COOKIE = "tempo_token"


@dataclass
class ServeSettings:
    """Knobs of `tempo serve` (see `tempo serve --help`)."""

    token: str | None = None
    cors_origins: tuple[str, ...] = ()
    media_root: Path | None = None
    deny_private_networks: bool = False
    max_queue: int = 8  # questions waiting for the model before 429
    ask_timeout: float = 300.0  # seconds a question may wait + run before 504
    max_body_bytes: int = 1 << 20  # request bodies (JSON) larger than this are refused (413)
    max_new_tokens: int | None = None
    clip_dir: Path | None = None  # rendered clips (default: a temporary directory)
    resume_jobs: bool = True
    warm: bool = True  # load the model and embedder at start (so the first request is not slow)
    extra: dict[str, Any] = field(default_factory=dict)


# ----- errors ------------------------------------------------------------------------------------------


class ProblemError(Exception):
    def __init__(self, status: int, detail: str, title: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.title, self.headers = status, detail, title, headers or {}


TITLES = {
    400: "Bad Request",
    404: "Not Found",
    409: "Conflict",
    413: "Content Too Large",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def problem(status: int, detail: str, title: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    """An RFC 9457 problem document."""
    body = {"type": "about:blank", "title": title or TITLES.get(status, "Error"), "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def status_of(exc: TempoError) -> int:
    not_found = (UnknownStreamError, ThreadNotFoundError, JobNotFoundError, UnknownRuleError, UnknownAlertError)
    if isinstance(exc, not_found):
        return 404
    if isinstance(exc, StreamBusyError):
        return 409
    if isinstance(exc, QueueFullError):
        return 429
    if isinstance(exc, ModelTimeoutError):
        return 504
    # The server cannot do it now, whatever the request: Redis down, a cold-tier shard missing or
    # corrupt, the model or embedder not loadable. Not the client's fault, so not a 4xx.
    unavailable = (MemoryUnavailableError, ColdStorageError, ModelNotAvailableError, CheckpointError, EmbedderLoadError)
    if isinstance(exc, unavailable):
        return 503
    return 422


def _validation_sentence(exc: RequestValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")) or "the request"
    if err.get("type") == "missing":
        return f"{where!r} is required."
    if err.get("type") == "extra_forbidden":
        return f"unknown field {where!r}."
    if err.get("type") == "json_invalid":
        return "the request body is not valid JSON."
    return f"invalid {where!r}: {inputs.describe_error(err)}."


# ----- request and response models ------------------------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ThreadAskRequest(_In):
    question: inputs.Question
    start: inputs.StreamTime | None = Field(default=None, description="Only look from this stream time (s).")
    end: inputs.StreamTime | None = Field(default=None, description="Only look up to this stream time (s).")


class AskRequest(ThreadAskRequest):
    thread_id: inputs.ThreadId | None = Field(default=None, description="Thread to continue; omit for a new one.")


class SearchRequest(_In):
    query: inputs.Query
    streams: list[inputs.StreamName] | None = Field(
        default=None, max_length=256, description="Streams to search; omit for all streams."
    )
    top_k: inputs.TopK = 5
    start: inputs.StreamTime | None = None
    end: inputs.StreamTime | None = None


class IngestRequest(_In):
    source: inputs.Name = Field(description="A file under the media root, or a camera URL.")


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


class Moment(BaseModel):
    stream: str
    index: int
    start: float
    end: float
    score: float


class SearchOut(BaseModel):
    query: str
    moments: list[Moment]


class TimelineCell(BaseModel):
    """One segment of the last question's allocation (the console's timeline strip)."""

    index: int
    start: float
    end: float
    relevance: float | None  # None: an anchor (not recompressed for this question)
    tokens: int  # memory tokens kept by ATA
    candidate: bool
    gap_before: float = 0.0  # seconds without video right before this segment


class AskOut(BaseModel):
    thread_id: str
    stream: str
    question: str
    standalone_question: str | None = None
    answer: str
    citations: list[dict[str, Any]]
    timeline: list[TimelineCell]
    widened: bool | None = None
    timings: dict[str, Any] = {}


# ----- the last allocation of a question (ATA made visible) -------------------------------------------------

_allocation: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "tempo_serve_allocation", default=None
)


class AllocationRecordingBackend(MemoryBackend):
    """MemoryBackend that also keeps the whole-timeline allocation of the turn being answered (the
    graph drops it once the turn is stored), with candidates and anchors told apart."""

    def allocate(self, stream: str, compression: Compression) -> AllocationPlan:
        plan = super().allocate(stream, compression)
        sink = _allocation.get()
        if sink is not None:
            sink.clear()
            previous_end: float | None = None
            for r, i in enumerate(plan.indices.tolist()):
                start, end = float(plan.starts[r]), float(plan.ends[r])
                candidate = bool(plan.candidate[r])
                gap = 0.0 if previous_end is None else max(0.0, start - previous_end)
                sink.append(
                    {
                        "index": int(i),
                        "start": round(start, 3),
                        "end": round(end, 3),
                        "relevance": round(float(plan.relevance[r]), 6) if candidate else None,
                        "tokens": int(plan.counts[r]),
                        "candidate": candidate,
                        "gap_before": round(gap, 3) if gap > 1e-3 else 0.0,
                    }
                )
                previous_end = end
        return plan


# ----- the model queue ----------------------------------------------------------------------------------


class ModelQueue:
    """FIFO admission to the model: at most one question runs, at most `max_waiting` wait.

        queue.reserve()                      # QueueFullError now (429), before any response starts
        result = await queue.submit(func)    # waits its turn, runs func in a worker thread

    A question that has waited and run for `timeout` seconds gets ModelTimeoutError (504); its model
    work is not interrupted (a forward pass cannot be) and keeps the slot until it ends. Submit
    right after reserving, in a task of its own, so a client that goes away cannot leak the slot.
    """

    def __init__(self, max_waiting: int, timeout: float) -> None:
        self.max_waiting = max_waiting
        self.timeout = timeout
        self.waiting = 0
        self._slot = asyncio.Semaphore(1)  # FIFO: asyncio wakes waiters in arrival order
        self._mean_s = 5.0  # running mean of a question's seconds (for Retry-After)

    def retry_after(self) -> int:
        return max(1, math.ceil(self._mean_s * (self.waiting + 1)))

    def reserve(self) -> None:
        """Take a place in the queue, or QueueFullError when `max_waiting` questions already wait."""
        if self.waiting >= self.max_waiting:
            raise QueueFullError(self.retry_after())
        self.waiting += 1

    async def submit(self, func: Callable[[], Any]) -> Any:
        """Wait for the model (after `reserve`), then run `func` in a worker thread holding it."""
        deadline = asyncio.get_running_loop().time() + self.timeout
        try:
            async with asyncio.timeout_at(deadline):
                await self._slot.acquire()
        except TimeoutError:
            raise ModelTimeoutError(f"the question waited more than {self.timeout:g} s for the model") from None
        finally:
            self.waiting -= 1
        t0 = time.perf_counter()
        task = asyncio.ensure_future(anyio.to_thread.run_sync(func))

        def release(_: Any) -> None:
            self._mean_s = 0.8 * self._mean_s + 0.2 * (time.perf_counter() - t0)
            self._slot.release()

        task.add_done_callback(release)
        try:
            async with asyncio.timeout_at(deadline):
                return await asyncio.shield(task)
        except TimeoutError:
            raise ModelTimeoutError(f"the question took more than {self.timeout:g} s") from None

    async def __call__(self, func: Callable[[], Any]) -> Any:
        """reserve + submit (what the MCP endpoint's ask_video goes through)."""
        self.reserve()
        return await self.submit(func)


# ----- the app -------------------------------------------------------------------------------------------


class BodyLimit:
    """ASGI middleware: refuse request bodies over `limit` bytes (413), by header and as they arrive."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            response = problem(413, f"the request body is larger than {self.limit} bytes")
            await response(scope, receive, send)
            return
        seen = 0

        async def limited() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise ProblemError(413, f"the request body is larger than {self.limit} bytes")
            return message

        await self.app(scope, limited, send)


class TempoServer:
    """The objects behind the routes (one per app): service, conversations, queue, jobs, clips, metrics."""

    def __init__(self, service: Any, settings: ServeSettings) -> None:
        self.service = service
        self.settings = settings
        # One RecallSettings for the backend and the conversation: the defaults every entry point uses.
        recall = RecallSettings(max_new_tokens=settings.max_new_tokens)
        backend = AllocationRecordingBackend(service, recall)
        self.conversations = Conversations(service, backend=backend, recall=recall)
        self.toolkit = VideoToolkit(self.conversations)
        self.queue = ModelQueue(settings.max_queue, settings.ask_timeout)
        self.jobs = IngestJobs(service)
        self._clip_tmp: tempfile.TemporaryDirectory[str] | None = None
        if settings.clip_dir is None:
            self._clip_tmp = tempfile.TemporaryDirectory(prefix="tempo-clips-")
        self.clips = ClipCache(settings.clip_dir or Path(self._clip_tmp.name))  # type: ignore[union-attr]
        self.registry = CollectorRegistry()
        self.tool_metrics = ToolMetrics(TOOL_NAMES, self.registry)
        self.request_metrics = RequestMetrics(self.registry)
        # The scale-out work queue's backlog, dead letters and worker throughput (read at scrape time).
        self.registry.register(QueueCollector(lambda: service.store))
        self.ready = threading.Event()
        self.delivery: DeliveryThread | None = None

    def start_delivery(self) -> None:
        """Deliver webhooks for the server's whole life when $TEMPO_WEBHOOK_SECRET is set (as `tempo
        ingest` does); without it, a warning if some rule has a webhook."""
        try:
            self.delivery = start_delivery_thread(self.service.alerts)
        except TempoError as exc:
            log.warning("tempo serve: webhook delivery did not start: %s", exc)

    def warm(self) -> None:
        try:
            _ = self.service.model, self.service.embedder
            self.service.index.sync()
        except TempoError as exc:
            log.warning("tempo serve: could not load the model yet: %s", exc)
        finally:
            self.ready.set()

    def close(self) -> None:
        self.jobs.shutdown()
        if self.delivery is not None:
            self.delivery.stop()  # one last pass, then joined
            self.delivery = None
        if self._clip_tmp is not None:
            self._clip_tmp.cleanup()


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
    )


def create_app(service: Any, settings: ServeSettings | None = None) -> Any:
    """The ASGI app of `tempo serve` over a `TempoService` (guarded, size-limited)."""
    settings = settings or ServeSettings()
    server = TempoServer(service, settings)
    mcp = build_server(server.toolkit, metrics=server.tool_metrics, routes=False, model_queue=server.queue)
    mcp_app = mcp_asgi_app(mcp)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.warm:
            threading.Thread(target=server.warm, name="tempo-warm", daemon=True).start()
        else:
            server.ready.set()
        if settings.resume_jobs:
            with contextlib.suppress(TempoError):
                await anyio.to_thread.run_sync(server.jobs.resume)
        await anyio.to_thread.run_sync(server.start_delivery)
        async with mcp.session_manager.run():
            yield
        await anyio.to_thread.run_sync(server.close)

    app = FastAPI(
        title="Tempo",
        summary="Streaming video memory: ask, search, clips, threads, ingest jobs; MCP at /mcp.",
        version="1",
        lifespan=lifespan,
    )
    app.state.tempo = server
    app.router.routes.extend(mcp_app.routes)  # POST/GET/DELETE /mcp (streamable HTTP)

    # ----- errors as problem details -----
    @app.exception_handler(TempoError)
    async def tempo_error(request: Request, exc: TempoError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, QueueFullError) else None
        return problem(status_of(exc), str(exc), headers=headers)

    @app.exception_handler(ProblemError)
    async def problem_error(request: Request, exc: ProblemError) -> JSONResponse:
        return problem(exc.status, exc.detail, exc.title, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(422, _validation_sentence(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "the request cannot be served"
        return problem(exc.status_code, detail if detail.endswith(".") else detail + ".", headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("tempo serve: %s %s failed", request.method, request.url.path)
        return problem(500, "the server failed to answer this request; see its log")

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Any) -> Any:
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        server.request_metrics.record(
            getattr(route, "path", "unmatched"), request.method, response.status_code, time.perf_counter() - t0
        )
        return response

    # ----- service routes -----
    @app.get("/health", tags=["service"])
    async def health() -> dict[str, Any]:
        return {"status": "ok", "server": "tempo", "ready": server.ready.is_set()}

    @app.get("/metrics", tags=["service"], response_class=StreamingResponse)
    async def metrics() -> Any:
        return metrics_response(server.registry)

    # ----- streams -----
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

    @app.post("/v1/streams/{stream}/ingest", status_code=202, tags=["jobs"])
    async def start_ingest(stream: str, body: IngestRequest) -> dict[str, Any]:
        from tempo.memory.store import RedisMemoryStore

        RedisMemoryStore.check_name(stream)
        source = await anyio.to_thread.run_sync(
            lambda: check_source(
                body.source, media_root=settings.media_root, deny_private_networks=settings.deny_private_networks
            )
        )
        return await anyio.to_thread.run_sync(server.jobs.start, stream, source)

    @app.get("/v1/jobs", tags=["jobs"])
    async def list_jobs() -> list[dict[str, Any]]:
        return await anyio.to_thread.run_sync(server.jobs.list)

    @app.get("/v1/jobs/{job_id}", tags=["jobs"])
    async def show_job(job_id: str) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(server.jobs.get, job_id)

    @app.post("/v1/jobs/{job_id}/stop", tags=["jobs"])
    async def stop_job(job_id: str) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(lambda: server.jobs.stop(job_id, wait=30.0))

    @app.delete("/v1/jobs/{job_id}", status_code=204, tags=["jobs"])
    async def delete_job(job_id: str) -> None:
        await anyio.to_thread.run_sync(server.jobs.delete, job_id)

    # ----- questions -----
    async def answer(
        request: Request, stream: str, question: str, thread_id: str | None, start: float | None, end: float | None
    ) -> Any:
        def scope() -> tuple[float, float] | None:
            info = service.stream(stream)
            return check_time_range(start, end, info.end) if (start is not None or end is not None) else None

        time_range = await anyio.to_thread.run_sync(scope)
        streaming = "text/event-stream" in request.headers.get("accept", "")
        server.queue.reserve()  # 429 now, before a response starts
        timeline: list[dict[str, Any]] = []
        text_queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def on_text(piece: str) -> None:
            loop.call_soon_threadsafe(text_queue.put_nowait, ("text", piece))

        def run() -> dict[str, Any]:
            token = _allocation.set(timeline)
            t0 = time.perf_counter()
            error = False
            try:
                return server.conversations.ask(
                    stream, question, thread_id=thread_id, time_range=time_range, on_text=on_text if streaming else None
                )
            except TempoError:
                error = True
                raise
            finally:
                server.tool_metrics.record("ask_video", time.perf_counter() - t0, error=error)
                _allocation.reset(token)

        def result_body(result: dict[str, Any]) -> dict[str, Any]:
            return AskOut(
                thread_id=result["thread_id"],
                stream=stream,
                question=result.get("question") or question,
                standalone_question=result.get("standalone_question"),
                answer=result.get("answer") or "",
                citations=result.get("citations") or [],
                timeline=[TimelineCell(**c) for c in timeline],
                widened=result.get("widened"),
                timings={k: result[k] for k in ("cache_hits", "compressed", "answer_cached", "timings") if k in result},
            ).model_dump()

        # Its own task from now on: a client that goes away cannot leave the queue holding its place.
        task = asyncio.ensure_future(server.queue.submit(run))
        if not streaming:
            return result_body(await task)

        async def events() -> AsyncIterator[bytes]:
            task.add_done_callback(lambda _: text_queue.put_nowait(("end", None)))
            while True:
                kind, value = await text_queue.get()
                if kind == "text":
                    yield sse("text", {"text": value})
                else:
                    break
            try:
                body = result_body(task.result())
            except TempoError as exc:
                yield sse("error", {"status": status_of(exc), "title": TITLES[status_of(exc)], "detail": str(exc)})
                return
            except Exception:
                log.exception("tempo serve: a streamed question failed")
                yield sse("error", {"status": 500, "detail": "the server failed to answer this question"})
                return
            yield sse("allocation", {"timeline": body["timeline"]})
            yield sse("citations", {"citations": body["citations"]})
            yield sse("done", body)

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    @app.post(
        "/v1/streams/{stream}/ask",
        tags=["questions"],
        response_model=AskOut,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def ask(stream: str, body: AskRequest, request: Request) -> Any:
        """Answer a question (JSON), or stream it (`Accept: text/event-stream`): `text` events with the
        answer as it is generated, then `allocation` (the timeline), `citations`, and `done` (everything)."""
        return await answer(request, stream, body.question, body.thread_id, body.start, body.end)

    # ----- threads -----
    @app.get("/v1/threads", tags=["threads"])
    async def list_threads(
        stream: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[dict[str, Any]]:
        return await anyio.to_thread.run_sync(lambda: server.conversations.list_threads(stream, limit))

    @app.get("/v1/threads/{thread_id}", tags=["threads"])
    async def show_thread(thread_id: str) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(server.conversations.show_thread, thread_id)

    @app.delete("/v1/threads/{thread_id}", status_code=204, tags=["threads"])
    async def delete_thread(thread_id: str) -> None:
        if not await anyio.to_thread.run_sync(server.conversations.delete_thread, thread_id):
            raise ThreadNotFoundError(f"no thread {thread_id!r}")

    @app.post("/v1/threads/{thread_id}/ask", tags=["threads", "questions"], response_model=AskOut)
    async def ask_in_thread(thread_id: str, body: ThreadAskRequest, request: Request) -> Any:
        record = await anyio.to_thread.run_sync(server.conversations.show_thread, thread_id)
        return await answer(request, record["stream"], body.question, thread_id, body.start, body.end)

    # ----- search (never waits for the model) -----
    @app.post("/v1/search", tags=["search"])
    async def search(body: SearchRequest) -> SearchOut:
        def work() -> SearchOut:
            names = body.streams if body.streams is not None else [s.name for s in service.streams()]
            moments: list[Moment] = []
            for name in dict.fromkeys(names):
                info = service.stream(name)
                time_range = check_time_range(body.start, body.end, info.end)
                for h in service.search_moments(name, body.query, top_k=body.top_k, time_range=time_range):
                    moments.append(
                        Moment(
                            stream=name,
                            index=int(h.index),
                            start=round(float(h.start), 3),
                            end=round(float(h.end), 3),
                            score=round(float(h.score), 6),
                        )
                    )
            moments.sort(key=lambda m: (-m.score, m.stream, m.index))
            return SearchOut(query=body.query, moments=moments[: body.top_k])

        t0 = time.perf_counter()
        try:
            return await anyio.to_thread.run_sync(work)
        finally:
            server.tool_metrics.record("search_moments", time.perf_counter() - t0, error=False)

    # ----- rules and alerts (never wait for the model) -----
    register_alert_routes(app, lambda: service.alerts)

    # ----- clips -----
    @app.get(
        "/v1/streams/{stream}/clip",
        tags=["clips"],
        response_class=FileResponse,
        responses={200: {"content": {"video/mp4": {}}}, 206: {"content": {"video/mp4": {}}}},
    )
    async def clip(
        stream: str,
        start: Annotated[float, Query(ge=0, allow_inf_nan=False)] = 0.0,
        end: Annotated[float | None, Query(gt=0, allow_inf_nan=False)] = None,
    ) -> Any:
        """Playable MP4 of [start, end) (stream seconds) from the memory's frames; HTTP Range supported.
        The clip's time t is stream time start + t."""
        if end is not None and end <= start:
            raise ProblemError(422, f"the clip must end after it starts (got {start:g} s to {end:g} s)")
        path, lo, hi = await anyio.to_thread.run_sync(lambda: render_clip(service, server.clips, stream, start, end))
        return FileResponse(
            path,
            media_type="video/mp4",
            headers={"X-Clip-Start": f"{lo:.3f}", "X-Clip-End": f"{hi:.3f}", "Cache-Control": "private, max-age=60"},
        )

    # ----- the console -----
    @app.get("/", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    outer: Any = app
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        outer = CORSMiddleware(
            outer,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Accept", "Mcp-Session-Id"],
            expose_headers=["Mcp-Session-Id", "Content-Range", "X-Clip-Start"],
        )
    outer = BodyLimit(outer, settings.max_body_bytes)
    return HTTPGuard(
        outer,
        token=settings.token,
        open_paths=("/health", "/"),
        open_prefixes=("/static/",),
        allowed_origins=settings.cors_origins,
        cookie_name=TOKEN_COOKIE,
    )


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
