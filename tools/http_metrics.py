"""Prometheus metrics of Tempo's HTTP servers (`tempo serve` and `tempo mcp --http`): tool calls by
tool name, requests by route template, and the /metrics response. Label values are bounded (known
tools, route templates, standard methods), so a client cannot create series by inventing names."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

UNKNOWN_TOOL = "_unknown"  # the one label every name that is not a known tool is counted under


class ToolMetrics:
    """Prometheus counters of tool calls by tool name; names outside `known` count as UNKNOWN_TOOL,
    so a client cannot create series (or grow memory) by inventing names."""

    def __init__(self, known: Iterable[str], registry: CollectorRegistry | None = None) -> None:
        self.known = frozenset(known)
        self.registry = registry or CollectorRegistry()
        self.calls = Counter("tempo_tool_calls", "Tool calls received.", ["tool"], registry=self.registry)
        self.errors = Counter(
            "tempo_tool_errors", "Tool calls that ended in an error.", ["tool"], registry=self.registry
        )
        self.seconds = Counter("tempo_tool_seconds", "Seconds spent in tool calls.", ["tool"], registry=self.registry)

    def label(self, tool: Any) -> str:
        return tool if isinstance(tool, str) and tool in self.known else UNKNOWN_TOOL

    def record(self, tool: Any, seconds: float, *, error: bool) -> None:
        name = self.label(tool)
        self.calls.labels(name).inc()
        self.seconds.labels(name).inc(max(0.0, seconds))
        if error:
            self.errors.labels(name).inc()


class RequestMetrics:
    """HTTP requests by route template (bounded: unmatched paths are one label), method and status."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "tempo_http_requests", "HTTP requests answered.", ["route", "method", "status"], registry=registry
        )
        self.seconds = Histogram(
            "tempo_http_request_seconds", "Seconds to answer an HTTP request.", ["route"], registry=registry
        )

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS") else "OTHER"
        self.requests.labels(route, method, str(status)).inc()
        self.seconds.labels(route).observe(seconds)


def metrics_response(registry: CollectorRegistry) -> Any:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.responses import Response

    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
