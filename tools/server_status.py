"""The server's own state over HTTP (`tempo serve`): GET /health (open, for probes and `launch`) and
GET /metrics (Prometheus text of tempo.tools.http_metrics, behind the token), and the middleware that
counts every request by route template."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from tempo.tools.http_metrics import metrics_response

if TYPE_CHECKING:
    from tempo.tools.server import TempoServer


def register_status_routes(app: FastAPI, server: TempoServer) -> None:
    """/health, /metrics and request counting into `server.request_metrics`."""

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Any) -> Any:
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        server.request_metrics.record(
            getattr(route, "path", "unmatched"), request.method, response.status_code, time.perf_counter() - t0
        )
        return response

    @app.get("/health", tags=["service"])
    async def health() -> dict[str, Any]:
        return {"status": "ok", "server": "tempo", "ready": server.ready.is_set()}

    @app.get("/metrics", tags=["service"], response_class=StreamingResponse)
    async def metrics() -> Any:
        return metrics_response(server.registry)
