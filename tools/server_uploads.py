"""Uploads of `tempo serve`: `POST /v1/streams/{stream}/upload` with the video file as the raw request
body (the console's drag-and-drop or file picker sends it so), then an ingest job of it.

The body is streamed to disk as it arrives, never held in memory, under `--media-root`: first into a
hidden folder of partial uploads (`.tempo-partial/`, on the same file system so the final rename is
atomic), and only once complete, at most `--max-upload` bytes (413 beyond, by Content-Length or as
it arrives) and opened by PyAV as a video (`probe_source`: a container FFmpeg reads, with a video
stream; 422 otherwise), renamed to `uploads/<stream>-<UTC time>-<random>.<ext>`: a name the server
makes, never the client's, with the extension of the container found. A partial, refused or failed
upload is deleted: nothing half-written ever sits under a name a source could give. The 202 answer
is the ingest job (as `POST /v1/streams/{stream}/ingest` gives) with `upload`: the file's name under
the media root and its size.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import anyio
from fastapi import FastAPI, Request
from tempo.memory.errors import StreamBusyError
from tempo.tools.server_problems import BodyLimit, ProblemError

if TYPE_CHECKING:
    from tempo.tools.server import TempoServer

PARTIAL_DIR = ".tempo-partial"
UPLOAD_DIR = "uploads"
WRITE_CHUNK = 1 << 20  # bytes gathered before one write to disk
UPLOAD_PATH = re.compile(r"/v1/streams/[^/]+/upload")
# FFmpeg's container names (as probe_source reports them) → the extension an upload is stored with.
EXTENSIONS = {"mov": "mp4", "mp4": "mp4", "matroska": "mkv", "webm": "webm", "mpegts": "ts", "avi": "avi",
              "flv": "flv", "mpeg": "mpg", "ogg": "ogv", "asf": "wmv", "h264": "h264", "hevc": "hevc"}  # fmt: skip


class BodyLimits:
    """ASGI middleware: request bodies capped at `limit` bytes, except uploads, capped at `upload_limit`
    (both through `BodyLimit`: 413 by Content-Length or as the body arrives)."""

    def __init__(self, app: Any, limit: int, upload_limit: int) -> None:
        self.app = app  # the wrapped app (middleware chains are walked through `.app`)
        self.default = BodyLimit(app, limit)
        self.upload = BodyLimit(app, upload_limit, buffer=False)  # streamed to disk, never held in memory

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        is_upload = scope["type"] == "http" and scope.get("method") == "POST" and UPLOAD_PATH.fullmatch(scope["path"])
        await (self.upload if is_upload else self.default)(scope, receive, send)


def extension_for(container: str | None) -> str:
    """The stored file's extension for a container FFmpeg found ("mov,mp4,m4a,3gp,3g2,mj2" → "mp4")."""
    for name in (container or "").split(","):
        if name.strip() in EXTENSIONS:
            return EXTENSIONS[name.strip()]
    return "video"


def _sniff(path: Path) -> str:
    """The container of a complete upload, or a StreamingError in one sentence (not a video FFmpeg reads)."""
    from tempo.streaming import probe_source
    from tempo.streaming.errors import StreamingError

    try:
        info = probe_source(str(path))
    except StreamingError as exc:
        raise StreamingError(f"the upload is not a video this server can ingest: {_reason(exc, path)}") from None
    return extension_for(info.container)


def _reason(exc: Exception, path: Path) -> str:
    """The probe's sentence about the upload, without the server's path of its partial file."""
    return str(exc).replace(repr(str(path)), "the file").replace(str(path), "the file").rstrip(".")


async def _body(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives. A limit refusal raised inside `receive` comes back wrapped in an
    exception group by the HTTP middleware's task group: it is unwrapped, so the answer is its 413."""
    try:
        async for chunk in request.stream():
            yield chunk
    except BaseExceptionGroup as group:
        refusal = group.subgroup(ProblemError)
        if refusal is None:
            raise
        while isinstance(refusal, BaseExceptionGroup):
            refusal = refusal.exceptions[0]
        raise refusal from None


async def receive_upload(request: Request, media_root: Path, stream: str) -> tuple[Path, int]:
    """Stream the request body into a partial file, check it, give it its final name under
    `media_root/uploads/`. Returns (final path, bytes). The partial is deleted on any failure."""
    partial_dir, upload_dir = media_root / PARTIAL_DIR, media_root / UPLOAD_DIR
    try:
        partial_dir.mkdir(exist_ok=True)
        upload_dir.mkdir(exist_ok=True)
    except OSError as exc:
        raise ProblemError(507, f"cannot store uploads under the media root: {exc.strerror or exc}") from None
    partial = partial_dir / f"{secrets.token_hex(12)}.part"
    size = 0
    out: BinaryIO | None = None
    try:
        out = open(partial, "xb")  # noqa: SIM115 (closed in finally; written from worker threads)
        pending: list[bytes] = []
        pending_bytes = 0
        async for chunk in _body(request):
            pending.append(chunk)
            pending_bytes += len(chunk)
            size += len(chunk)
            if pending_bytes >= WRITE_CHUNK:
                data, pending, pending_bytes = b"".join(pending), [], 0
                await anyio.to_thread.run_sync(out.write, data)
        if pending:
            await anyio.to_thread.run_sync(out.write, b"".join(pending))
        await anyio.to_thread.run_sync(out.close)
        if size == 0:
            raise ProblemError(422, "the upload is empty; send the video file as the request body")
        ext = await anyio.to_thread.run_sync(_sniff, partial)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        final = upload_dir / f"{stream}-{stamp}-{secrets.token_hex(4)}.{ext}"
        os.replace(partial, final)
        return final, size
    except OSError as exc:
        raise ProblemError(507, f"cannot store the upload: {exc.strerror or exc}") from None
    finally:
        if out is not None and not out.closed:
            out.close()
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


def register_upload_routes(app: FastAPI, server: TempoServer) -> None:
    """POST /v1/streams/{stream}/upload over `server.jobs` (files under `server.settings.media_root`)."""
    settings = server.settings

    @app.post(
        "/v1/streams/{stream}/upload",
        status_code=202,
        tags=["jobs"],
        openapi_extra={"requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                             "format": "binary"}}}}},
    )
    async def upload(stream: str, request: Request) -> dict[str, Any]:
        """Upload a video file (the raw body, at most `--max-upload` bytes) and start ingesting it into
        `stream`; answers the ingest job with `upload` (its file under the media root, bytes)."""
        from tempo.memory.store import RedisMemoryStore
        from tempo.tools.server_sources import check_source

        RedisMemoryStore.check_name(stream)
        if settings.media_root is None:
            raise ProblemError(409, "this server takes no uploads: it was started without --media-root")
        jobs = await anyio.to_thread.run_sync(server.jobs.list)
        for job in jobs:  # refused before the body is read, not after minutes of uploading
            if job["stream"] == stream and job["state"] in ("running", "retrying"):
                raise StreamBusyError(f"the stream {stream!r} is already being ingested by job {job['id']}")
        root = settings.media_root.resolve()
        path, size = await receive_upload(request, root, stream)
        name = str(path.relative_to(root))
        source = await anyio.to_thread.run_sync(lambda: check_source(name, media_root=settings.media_root))
        job = await anyio.to_thread.run_sync(server.jobs.start, stream, source)
        return {**job, "upload": {"file": name, "bytes": size}}
