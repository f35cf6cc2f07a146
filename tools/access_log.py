"""`tempo serve --access-log`: one line per HTTP request on stderr, for operators, with secrets kept out.

    127.0.0.1 "GET /v1/streams/cam/clip?start=0&end=40" 200 18342 B 0.412 s

The client address, method, path and query (through `tempo.errors.redact_url`, so `token=`, `key=`
and the like show as ***), status, response bytes and seconds until the response ended. Headers
(the bearer token, the token cookie) and bodies are never logged. A request that ends without a
response (the client went away) logs status 0.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from tempo.errors import redact_url

log = logging.getLogger("tempo.access")


def _printable(text: str) -> str:
    """Control characters (a forged newline in a path) escaped, so one request is one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class AccessLog:
    """ASGI middleware: logs each HTTP request once it is answered (the outermost layer, so refusals
    of the guard in front of the routes are logged too)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.monotonic()
        status, sent = 0, 0

        async def logged_send(message: dict[str, Any]) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, logged_send)
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            path = _printable(scope.get("path", ""))  # before parsing: urlsplit drops newlines silently
            target = redact_url(f"http://h{path}" + (f"?{_printable(query)}" if query else ""))
            target = target.removeprefix("http://h")
            client = scope.get("client") or ("-", 0)
            log.info(
                '%s "%s %s" %d %d B %.3f s',
                client[0], _printable(scope.get("method", "-")), target, status, sent, time.monotonic() - began,
            )  # fmt: skip


def enable_access_log() -> None:
    """Send the access lines to stderr (the server's own logging stays at warning)."""
    if not any(getattr(h, "_tempo_access", False) for h in log.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        handler._tempo_access = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
