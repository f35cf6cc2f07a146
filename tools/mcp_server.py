"""Tempo as an MCP server (official `mcp` SDK, v2 `MCPServer`): ask_video, search_moments, list_streams,
list_alerts.

    tempo mcp                                  # stdio (for desktop agents that spawn it)
    tempo mcp --http --port 8765               # streamable HTTP on 127.0.0.1, endpoint /mcp
    TEMPO_MCP_TOKEN=... tempo mcp --http --host 0.0.0.0   # any other address needs a bearer token

Arguments are validated before a tool runs (the same pydantic models as the LangChain tools, in
tempo.inputs, from which the tool signatures are generated), so a bad call comes back as a tool
error (isError) with one sentence and the server carries on. Model calls run in worker threads, so
the event loop keeps serving. GET /health answers {"status": "ok"} without a token (for load
balancers and probes); GET /metrics gives per-tool call, error and latency counters
(prometheus_client; known tool names only) behind the token. Token and Host/Origin rules are
tempo.tools.http_security's, metrics tempo.tools.http_metrics', both shared with `tempo serve`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult, TextContent
from tempo.agent.toolkit import DESCRIPTIONS, ToolInputError, VideoToolkit, validate
from tempo.errors import TempoError, redact_secrets
from tempo.inputs import TOOL_INPUTS, tool_signature
from tempo.settings import AskSettings
from tempo.tools.commands.mcp import add_mcp_options
from tempo.tools.commands.options import DEFAULT_MAX_BODY
from tempo.tools.http_metrics import ToolMetrics, metrics_response
from tempo.tools.http_security import HTTPGuard, require_token_off_loopback, resolve_token
from tempo.tools.server_problems import BodyLimit

log = logging.getLogger(__name__)

SERVER_NAME = "tempo"


TOOL_NAMES = tuple(TOOL_INPUTS)


class _LazyToolkit:
    """Builds the toolkit (service, conversations) on the first call, once, from any thread."""

    def __init__(self, factory: Callable[[], VideoToolkit]) -> None:
        self._factory = factory
        self._toolkit: VideoToolkit | None = None
        self._lock = threading.Lock()

    def get(self) -> VideoToolkit:
        with self._lock:
            if self._toolkit is None:
                self._toolkit = self._factory()
            return self._toolkit


class ValidateToolArguments:
    """Server middleware: check tools/call arguments against the tool's input model before the SDK
    does, so a mistake is answered with one sentence (isError) rather than a pydantic report."""

    def __init__(self, metrics: ToolMetrics | None = None) -> None:
        self.metrics = metrics

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        if ctx.method == "tools/call" and isinstance(ctx.params, Mapping):
            try:
                validate(str(ctx.params.get("name")), ctx.params.get("arguments"))
            except ToolInputError as exc:
                if self.metrics is not None:
                    self.metrics.record(ctx.params.get("name"), 0.0, error=True)
                return CallToolResult(content=[TextContent(type="text", text=str(exc))], is_error=True)
        return await call_next(ctx)


def build_server(
    toolkit: VideoToolkit | Callable[[], VideoToolkit],
    *,
    metrics: ToolMetrics | None = None,
    routes: bool = True,
    model_queue: Callable[[Callable[[], Any]], Awaitable[Any]] | None = None,
) -> MCPServer:
    """The MCP server over a toolkit (or a factory called on the first tool call).

    `metrics` counts tool calls (a fresh registry when None); `routes=False` leaves out /health and
    /metrics, for `tempo serve`, which has its own; `model_queue(func)` runs ask_video's model work
    (tempo serve's queue, shared with its REST questions; default: a worker thread).
    """
    lazy = _LazyToolkit(toolkit if callable(toolkit) and not isinstance(toolkit, VideoToolkit) else lambda: toolkit)
    metrics = metrics or ToolMetrics(TOOL_NAMES)
    server = MCPServer(
        SERVER_NAME,
        instructions=(
            "Tempo answers questions about video streams kept in its memory. Call list_streams first, "
            "then ask_video (pass thread_id back for follow-ups) or search_moments. Times are seconds."
        ),
        log_level="WARNING",
        middleware=[ValidateToolArguments(metrics)],
    )

    async def run(method: str, **kwargs: Any) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            return getattr(lazy.get(), method)(**kwargs)

        t0 = time.perf_counter()
        try:
            if model_queue is not None and method == "ask_video":
                result = await model_queue(call)
            else:
                result = await anyio.to_thread.run_sync(call)
        except TempoError as exc:
            metrics.record(method, time.perf_counter() - t0, error=True)
            raise ToolError(redact_secrets(str(exc))) from None  # remote clients never see a password
        metrics.record(method, time.perf_counter() - t0, error=False)
        return result

    for name in TOOL_INPUTS:
        server.add_tool(_tool_function(name, run), name=name, description=DESCRIPTIONS[name])

    if routes:

        @server.custom_route("/health", methods=["GET"])
        async def health(request: Any) -> Any:
            from starlette.responses import JSONResponse

            return JSONResponse({"status": "ok", "server": SERVER_NAME})

        @server.custom_route("/metrics", methods=["GET"])
        async def prometheus_metrics(request: Any) -> Any:
            return metrics_response(metrics.registry)

    return server


def _tool_function(name: str, run: Callable[..., Any]) -> Callable[..., Any]:
    """The tool's function for the SDK, its signature (and so its JSON schema, limits included)
    generated from the tool's input model in tempo.inputs: no second copy of the arguments here."""

    async def tool(**kwargs: Any) -> dict[str, Any]:
        return await run(name, **kwargs)

    tool.__name__ = tool.__qualname__ = name
    tool.__signature__ = tool_signature(TOOL_INPUTS[name])  # type: ignore[attr-defined]
    return tool


# ----- HTTP -----------------------------------------------------------------------------------------


def mcp_asgi_app(server: MCPServer, *, max_body: int = DEFAULT_MAX_BODY) -> Any:
    """The SDK's streamable-HTTP app (endpoint /mcp). Its own DNS-rebinding check knows only three
    spellings of loopback and skips custom routes; HTTPGuard checks every route instead. Its own body
    cap (4 MiB by default) is set to ours, so both servers refuse the same sizes."""
    return server.streamable_http_app(
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        max_request_body_size=max_body,
    )


def http_app(
    server: MCPServer, *, host: str = "127.0.0.1", token: str | None = None, max_body: int = DEFAULT_MAX_BODY
) -> Any:
    """The streamable-HTTP ASGI app (endpoint /mcp, /health, /metrics) behind HTTPGuard: a bearer
    token when one is given, else Host/Origin checks on every route; request bodies over `max_body`
    bytes get 413 before the SDK reads them (chunked ones too), as in `tempo serve`.

    Raises HTTPConfigError for a non-loopback host without a token.
    """
    require_token_off_loopback(host, token, "MCP")
    # The guard first (no body is read for a request without the token), then the cap on every route.
    return HTTPGuard(BodyLimit(mcp_asgi_app(server, max_body=max_body), max_body), token=token)


def serve_http(
    server: MCPServer, *, host: str, port: int, token: str | None, max_body: int = DEFAULT_MAX_BODY
) -> int:
    """Serve MCP over streamable HTTP until SIGTERM or Ctrl-C; returns the exit code (tools/http_run.py)."""
    from tempo.tools import http_run

    app = http_app(server, host=host, token=token, max_body=max_body)

    def announce(base: str) -> None:
        print(f"tempo mcp: streamable HTTP on {base}/mcp", file=sys.stderr, flush=True)

    return http_run.serve(app, host=host, port=port, on_listen=announce, log_level="warning")


# ----- command line (`tempo mcp` and `python -m tempo.tools.mcp_server`) -------------------------------


def run(args: argparse.Namespace) -> int:
    from tempo.service import TempoService

    token = resolve_token(flag=args.token, token_file=args.token_file) if args.http else None
    if args.http:
        require_token_off_loopback(args.host, token, "MCP")

    # The model loads on the first tool call; memory retention runs for the server's whole life.
    service = TempoService(model=args.model, embedder=args.embedder, redis_url=args.redis_url, device=args.device)

    def make_toolkit() -> VideoToolkit:
        return VideoToolkit.for_service(service, settings=AskSettings().with_inputs(max_new_tokens=args.max_new_tokens))

    server = build_server(make_toolkit)
    with service.start_retention():
        if args.http:
            return serve_http(server, host=args.host, port=args.port, token=token, max_body=args.max_body)
        server.run("stdio")
    return 0


def main(argv: list[str] | None = None) -> int:
    from tempo.tools.cli import TempoArgumentParser  # one-line usage errors, as `tempo mcp` gives

    parser = TempoArgumentParser(prog="python -m tempo.tools.mcp_server", description=__doc__.split("\n")[0])
    add_mcp_options(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except TempoError as exc:
        print(f"tempo mcp: error: {redact_secrets(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
