"""`tempo serve`: one HTTP server — REST API under /v1, the MCP endpoint at /mcp, /health, /metrics,
OpenAPI at /docs, and the web console at /.

    app = create_app(TempoService(model="ckpt"), ServeSettings(media_root=Path("/videos")))
    uvicorn.run(app, host="127.0.0.1", port=8000)

Everything goes through `TempoService` (memory, model) and `Conversations` (questions, threads), the
same objects the CLI and the MCP tools use. This file holds the settings, the objects behind the
routes (`TempoServer`) and the wiring; each resource has its router beside it:

    server_streams.py    /v1/streams               server_jobs.py      ingest jobs (/v1/jobs, .../ingest)
    server_questions.py  ask and /v1/threads       server_search.py    /v1/search
    server_alerts.py     /v1/rules, /v1/alerts     server_clips.py     .../clip (MP4)
    server_status.py     /health, /metrics         server_console.py   /, /static, /docs
    server_uploads.py    .../upload (video files)
    server_problems.py   errors as RFC 9457 problem documents, the status code by error category

Concurrency: questions (model calls) wait in one FIFO queue of bounded length (tempo.tools.model_queue):
when it is full the answer is 429 with Retry-After, and a question that does not finish within its
timeout is answered 504. Search, lists and clips never enter that queue (they run in worker threads
beside it). Security: `HTTPGuard` (tempo.tools.http_security) in front of every route; CORS only for
`--cors-origin`; request bodies capped at `max_body_bytes`; sources checked by
tempo.tools.server_sources; uploads at most `max_upload_bytes`. Model and memory settings are the service's.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from tempo.agent.conversations import Conversations
from tempo.agent.monitoring.webhooks import DeliverySettings, DeliveryThread, start_delivery_thread
from tempo.agent.toolkit import VideoToolkit
from tempo.errors import TempoError
from tempo.memory.queue_metrics import QueueCollector
from tempo.settings import AskSettings
from tempo.tools.http_metrics import RequestMetrics, ToolMetrics
from tempo.tools.http_security import HTTPGuard
from tempo.tools.mcp_server import TOOL_NAMES, build_server, mcp_asgi_app
from tempo.tools.model_queue import ModelQueue
from tempo.tools.server_alerts import register_alert_routes
from tempo.tools.server_clips import ClipCache, register_clip_routes
from tempo.tools.server_console import register_console_routes
from tempo.tools.server_jobs import IngestJobs, register_job_routes
from tempo.tools.server_problems import register_problem_handlers
from tempo.tools.server_questions import register_question_routes
from tempo.tools.server_search import register_search_routes
from tempo.tools.server_status import register_status_routes
from tempo.tools.server_streams import register_stream_routes
from tempo.tools.server_uploads import BodyLimits, register_upload_routes

log = logging.getLogger(__name__)

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
    max_upload_bytes: int = 2 << 30  # video uploads (tempo.tools.server_uploads) larger than this: 413
    max_new_tokens: int | None = None
    clip_dir: Path | None = None  # rendered clips (default: a temporary directory)
    resume_jobs: bool = True
    warm: bool = True  # load the model and embedder at start (so the first request is not slow)
    access_log: bool = False  # one line per request on stderr (tempo.tools.access_log), secrets redacted
    extra: dict[str, Any] = field(default_factory=dict)
    asr: str | None = None  # Whisper checkpoint for ingest jobs asked with "asr": true (`tempo serve --asr`)


class TempoServer:
    """The objects behind the routes (one per app): service, conversations, queue, jobs, clips, metrics."""

    def __init__(self, service: Any, settings: ServeSettings) -> None:
        self.service = service
        self.settings = settings
        # One AskSettings for every question the server answers (REST, MCP): the defaults every entry
        # point uses, with `tempo serve --max-new-tokens`.
        ask = AskSettings().with_inputs(max_new_tokens=settings.max_new_tokens)
        self.conversations = Conversations(service, settings=ask)
        self.toolkit = VideoToolkit(self.conversations)
        self.queue = ModelQueue(settings.max_queue, settings.ask_timeout)
        self.jobs = IngestJobs(service, asr=settings.asr)
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
            deny = True if self.settings.deny_private_networks else None  # else the environment's setting
            self.delivery = start_delivery_thread(self.service.alerts, settings=DeliverySettings(deny_private=deny))
        except TempoError as exc:
            log.warning("tempo serve: webhook delivery did not start: %s", exc)

    def warm(self) -> None:
        try:
            _ = self.service.model, self.service.embedder
            if self.settings.asr is not None:  # a checkpoint that does not load is told now, not per job
                self.service.speech_recognizer(self.settings.asr)
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


def create_app(service: Any, settings: ServeSettings | None = None) -> Any:
    """The ASGI app of `tempo serve` over a `TempoService` (guarded, size-limited)."""
    settings = settings or ServeSettings()
    server = TempoServer(service, settings)
    mcp = build_server(server.toolkit, metrics=server.tool_metrics, routes=False, model_queue=server.queue)
    mcp_app = mcp_asgi_app(mcp, max_body=settings.max_body_bytes)

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
        docs_url=None,  # /docs is served by register_console_routes from local assets (no CDN)
        redoc_url=None,
    )
    app.state.tempo = server
    app.router.routes.extend(mcp_app.routes)  # POST/GET/DELETE /mcp (streamable HTTP)
    register_problem_handlers(app)
    register_status_routes(app, server)
    register_stream_routes(app, server)
    register_job_routes(app, server)
    register_upload_routes(app, server)
    register_question_routes(app, server)
    register_search_routes(app, server)
    register_alert_routes(  # rules and alerts never wait for the model
        app, lambda: service.alerts, deny_private_networks=settings.deny_private_networks or None
    )
    register_clip_routes(app, server)
    register_console_routes(app)

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
    outer = BodyLimits(outer, settings.max_body_bytes, settings.max_upload_bytes)
    guarded = HTTPGuard(
        outer,
        token=settings.token,
        open_paths=("/health", "/", "/favicon.ico"),
        open_prefixes=("/static/",),
        allowed_origins=settings.cors_origins,
        cookie_name=TOKEN_COOKIE,
    )
    if settings.access_log:
        from tempo.tools.access_log import AccessLog, enable_access_log

        enable_access_log()
        return AccessLog(guarded)
    return guarded
