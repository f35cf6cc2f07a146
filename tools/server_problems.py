"""Errors of `tempo serve` as RFC 9457 problem documents: one sentence each, the status code by the
error's category (tempo.errors), never by listing classes.

    STATUS_BY_CATEGORY[NotFoundError] == 404       # the one table
    register_problem_handlers(app)                 # TempoError, validation, HTTP and other errors
    BodyLimit(app, limit)                          # 413 for request bodies over `limit` bytes

A TempoError that reaches a route answers with its category's code; every TempoError has exactly one
category (tests/test_errors.py), and an exception that is not a TempoError answers 500.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from tempo import inputs
from tempo.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    TempoError,
    TimedOutError,
    TooManyRequestsError,
    UnavailableError,
)

log = logging.getLogger(__name__)

# The HTTP answer to each kind of user error. Unavailable is not the client's fault (Redis down, a
# cold-tier shard missing or corrupt, the model or embedder not loadable), so not a 4xx.
STATUS_BY_CATEGORY: dict[type[TempoError], int] = {
    InvalidInputError: 422,
    NotFoundError: 404,
    ConflictError: 409,
    TooManyRequestsError: 429,
    UnavailableError: 503,
    TimedOutError: 504,
}

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


class ProblemError(Exception):
    """An answer with its own status and sentence, for checks the routes make themselves."""

    def __init__(self, status: int, detail: str, title: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.title, self.headers = status, detail, title, headers or {}


def problem(status: int, detail: str, title: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    """An RFC 9457 problem document."""
    body = {"type": "about:blank", "title": title or TITLES.get(status, "Error"), "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def status_of(exc: TempoError) -> int:
    """The status code of `exc`'s category (STATUS_BY_CATEGORY)."""
    for category, status in STATUS_BY_CATEGORY.items():
        if isinstance(exc, category):
            return status
    return 422  # not reached: every TempoError has a category


def validation_sentence(exc: RequestValidationError) -> str:
    """The first problem FastAPI's validation found, as one sentence naming the field."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")) or "the request"
    if err.get("type") == "missing":
        return f"{where!r} is required."
    if err.get("type") == "extra_forbidden":
        return f"unknown field {where!r}."
    if err.get("type") == "json_invalid":
        return "the request body is not valid JSON."
    return f"invalid {where!r}: {inputs.describe_error(err)}."


def register_problem_handlers(app: FastAPI) -> None:
    """Answer every error a route raises with a problem document (tracebacks only in the log)."""

    @app.exception_handler(TempoError)
    async def tempo_error(request: Request, exc: TempoError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequestsError) else None
        return problem(status_of(exc), str(exc), headers=headers)

    @app.exception_handler(ProblemError)
    async def problem_error(request: Request, exc: ProblemError) -> JSONResponse:
        return problem(exc.status, exc.detail, exc.title, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(422, validation_sentence(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "the request cannot be served"
        return problem(exc.status_code, detail if detail.endswith(".") else detail + ".", headers=exc.headers)

    @app.exception_handler(redis.exceptions.ConnectionError)
    @app.exception_handler(redis.exceptions.TimeoutError)
    async def redis_down(request: Request, exc: Exception) -> JSONResponse:
        # Routes whose store calls are not wrapped (tempo.memory.errors.redis_errors) land here: still
        # the documented 503 of a memory outage, not a 500 with a traceback in the log.
        log.warning("tempo serve: %s %s: Redis is unreachable (%s)", request.method, request.url.path,
                    type(exc).__name__)
        detail = "the memory (Redis) cannot be reached; try again when it is back"
        return problem(503, detail, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("tempo serve: %s %s failed", request.method, request.url.path)
        return problem(500, "the server failed to answer this request; see its log")


class BodyLimit:
    """ASGI middleware: refuse request bodies over `limit` bytes with 413, before the app sees any of it.

    A body with a Content-Length over the limit is refused from the header. A body without one (chunked
    transfer encoding) is read here first, up to the limit: over it, 413 (the app never starts, so no
    route, /mcp included, can answer 400 or 500 for a half-read body); within it, the app gets it whole.
    A body longer than its own Content-Length is cut off by the HTTP server (h11) itself. Routes under
    `exempt_prefixes` enforce a cap of their own. With `buffer=False` (uploads: gigabytes, written to
    disk as they arrive) a chunked body is not read ahead: its bytes are counted as the route reads them
    and the read that goes over the limit raises ProblemError(413), which the route turns into its answer.
    """

    def __init__(
        self, app: Any, limit: int, *, exempt_prefixes: tuple[str, ...] = (), buffer: bool = True
    ) -> None:
        self.app, self.limit, self.exempt_prefixes, self.buffer = app, limit, exempt_prefixes, buffer

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or (self.exempt_prefixes and scope.get("path", "").startswith(self.exempt_prefixes)):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        too_large = problem(413, f"the request body is larger than {self.limit} bytes")
        if length is not None:
            if not length.isdigit() or int(length) > self.limit:
                await too_large(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if scope.get("method") in ("GET", "HEAD", "DELETE", "OPTIONS") and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body
            return
        if not self.buffer:
            await self.app(scope, self._counted(receive), send)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            seen += len(body)
            if seen > self.limit:
                await too_large(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        whole = b"".join(chunks)
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()  # after the body: the disconnect, whenever it comes

        await self.app(scope, replay, send)

    def _counted(self, receive: Any) -> Any:
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise ProblemError(413, f"the request body is larger than {self.limit} bytes")
            return message

        return counted
