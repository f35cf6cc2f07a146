"""Playable MP4 clips of a stream's memory for `GET /v1/streams/{s}/clip?start=&end=`.

A clip shows the frames memory holds for the segments overlapping [start, end): re-read from the
source file or decoded from the stored proxies (`replay.load_segments`, the same frames the model
recompresses), at the stream's sampling rate (2 fps by default). Each frame is shown from its own
stream time until the next one's, so the clip's time t is stream time `start + t` and a player seeks
by stream time exactly.

Fast and bounded: the clip is H.264 in fragmented MP4 (tempo.tools.clip_render), encoded as the
segments are read, a few segments at a time (`CLIP_BATCH`), so memory per render does not grow with
the clip's length, and the response streams the file as it is written: the first bytes leave before
the last frame is read. At most `ClipCache.max_renders` clips render at once (429 beyond). A complete
clip stays in a small disk cache and answers HTTP Range requests (a browser's `<video>` seeks with
them); a Range request for a clip still rendering waits for it. The route is `register_clip_routes`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from tempo.errors import TempoError, TooManyRequestsError
from tempo.tools.clip_render import FragmentedMP4, GrowingFile
from tempo.tools.errors import ClipRangeError
from tempo.tools.server_problems import ProblemError

if TYPE_CHECKING:
    from tempo.tools.server import TempoServer

log = logging.getLogger(__name__)

MAX_CLIP_SECONDS = 3600.0  # longest clip one request may render (seconds of stream time)
CLIP_BATCH = 8  # segments read (decoded) at a time while rendering: the bound on frames held in memory
READ_CHUNK = 64 * 1024  # bytes per piece of a streamed response


class ClipCache:
    """Rendered clips on disk, least recently used first out (at most `max_files`), and the renders in
    progress (at most `max_renders`; one per clip, however many requests ask for it)."""

    def __init__(self, directory: Path, max_files: int = 64, max_renders: int = 2) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_files = max_files
        self.max_renders = max_renders
        self._files: OrderedDict[str, Path] = OrderedDict()
        self._lock = threading.Lock()
        self._rendering: dict[str, GrowingFile] = {}

    def path_for(self, key: str) -> Path:
        return self.directory / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".mp4")

    def get_or_start(self, key: str, render: Callable[[GrowingFile], None]) -> Path | GrowingFile:
        """The finished clip's path, or the render in progress (started here, in its own thread,
        unless one for `key` already runs). TooManyRequestsError when `max_renders` already run."""
        with self._lock:
            path = self._files.get(key)
            if path is not None and path.exists():
                self._files.move_to_end(key)
                return path
            growing = self._rendering.get(key)
            if growing is not None:
                return growing
            if len(self._rendering) >= self.max_renders:
                error = TooManyRequestsError(
                    f"{self.max_renders} clips are being rendered already; try again in a few seconds"
                )
                error.retry_after = 2
                raise error
            growing = GrowingFile(self.path_for(key).with_suffix(".part"), self.path_for(key))
            self._rendering[key] = growing
        threading.Thread(target=self._run, args=(key, growing, render), name="tempo-clip", daemon=True).start()
        return growing

    def _run(self, key: str, growing: GrowingFile, render: Callable[[GrowingFile], None]) -> None:
        error: BaseException | None = None
        try:
            render(growing)
        except BaseException as exc:
            error = exc
            if not isinstance(exc, TempoError):
                log.exception("clip render failed")
        growing.finish(error)
        with self._lock:
            self._rendering.pop(key, None)
            if error is None:
                self._files[key] = growing.final
                while len(self._files) > self.max_files:
                    _, old = self._files.popitem(last=False)
                    old.unlink(missing_ok=True)


def clip_range(service, stream: str, start: float, end: float | None) -> tuple[Any, float, float, list[int]]:
    """(stream info, lo, hi, segment indices) of a clip request, or ClipRangeError in one sentence."""
    info = service.stream(stream)
    if info.segments == 0 or info.end is None:
        raise ClipRangeError(f"the stream {stream!r} has no segments yet")
    lo = max(float(start), float(info.start or 0.0))
    hi = float(info.end) if end is None else min(float(end), float(info.end))
    if hi <= lo:
        raise ClipRangeError(
            f"no video of {stream!r} between {start:g} s and {hi if end is None else end:g} s "
            f"(it covers {info.start or 0.0:g} s to {info.end:g} s)"
        )
    if hi - lo > MAX_CLIP_SECONDS:
        raise ClipRangeError(f"a clip may be at most {MAX_CLIP_SECONDS:g} s long (asked for {hi - lo:g} s)")
    service.index.sync()
    timeline = service.index.timeline(stream)
    rows = np.flatnonzero((timeline.ends > lo) & (timeline.starts < hi))
    if len(rows) == 0:
        raise ClipRangeError(f"no stored segments of {stream!r} between {lo:g} s and {hi:g} s")
    return info, lo, hi, [int(i) for i in timeline.indices[rows]]


def start_clip(service, cache: ClipCache, stream: str, start: float, end: float | None):
    """The clip of [start, end) of `stream` (end None: the stream's end): (finished path or render in
    progress, lo, hi)."""
    from tempo.memory.replay import load_segments

    info, lo, hi, indices = clip_range(service, stream, start, end)
    key = f"{stream}|{info.number}|{info.first}|{indices[0]}-{indices[-1]}|{lo:.3f}|{hi:.3f}"

    def render(growing: GrowingFile) -> None:
        mp4 = FragmentedMP4(growing.file, hi - lo, growing.wrote)
        last: float | None = None
        try:
            for at in range(0, len(indices), CLIP_BATCH):  # a few segments' frames in memory at a time
                for segment in load_segments(service.store, info, indices[at : at + CLIP_BATCH]):
                    for t, frame in zip(segment.timestamps.tolist(), segment.frames, strict=True):
                        if lo - 1e-6 <= t < hi and (last is None or t - lo > last):
                            last = 0.0 if last is None else t - lo  # the first frame shows from 0
                            mp4.add(frame, last)
            if last is None:
                raise ClipRangeError(f"no stored frames of {stream!r} between {lo:g} s and {hi:g} s")
            mp4.close(hi - lo)
        except BaseException:
            mp4.abort()
            raise

    return cache.get_or_start(key, render), lo, hi


async def follow(growing: GrowingFile) -> AsyncIterator[bytes]:
    """The bytes of a clip as they are written, to its end."""
    reader = growing.open_reader()
    sent = 0
    try:
        while True:
            size, done = await anyio.to_thread.run_sync(growing.wait, sent, 5.0)
            while sent < size:
                data = reader.read(min(READ_CHUNK, size - sent))
                if not data:
                    break
                sent += len(data)
                yield data
            if done and sent >= growing.size:
                return
    finally:
        reader.close()


def still_frame(service, stream: str, t: float) -> bytes:
    """A JPEG of the memory's frame of `stream` at stream time `t` (the last sampled frame at or before
    it in the segment holding it): a search result's thumbnail."""
    import io

    from PIL import Image
    from tempo.memory.replay import load_segments

    info, _, _, indices = clip_range(service, stream, t, t + 1e-3)
    (segment,) = load_segments(service.store, info, indices[:1])
    times = segment.timestamps
    at = max(0, int(np.searchsorted(times, t, side="right")) - 1)  # (F,) seconds, increasing
    out = io.BytesIO()
    Image.fromarray(segment.frames[at]).save(out, format="JPEG", quality=80)
    return out.getvalue()


def register_clip_routes(app: FastAPI, server: TempoServer) -> None:
    """GET /v1/streams/{stream}/clip over `server.service`, rendered into `server.clips`, and
    GET /v1/streams/{stream}/frame (one still frame)."""
    service = server.service

    @app.get(
        "/v1/streams/{stream}/frame",
        tags=["clips"],
        response_class=Response,
        responses={200: {"content": {"image/jpeg": {}}}},
    )
    async def frame(stream: str, t: Annotated[float, Query(ge=0, allow_inf_nan=False)] = 0.0) -> Response:
        """JPEG of the stored frame at stream time t (seconds): what the memory holds there."""
        data = await anyio.to_thread.run_sync(lambda: still_frame(service, stream, t))
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})

    @app.get(
        "/v1/streams/{stream}/clip",
        tags=["clips"],
        response_class=FileResponse,
        responses={200: {"content": {"video/mp4": {}}}, 206: {"content": {"video/mp4": {}}}},
    )
    async def clip(
        request: Request,
        stream: str,
        start: Annotated[float, Query(ge=0, allow_inf_nan=False)] = 0.0,
        end: Annotated[float | None, Query(gt=0, allow_inf_nan=False)] = None,
    ) -> Any:
        """Playable MP4 of [start, end) (stream seconds) from the memory's frames, streamed as it is
        encoded; HTTP Range supported once rendered. The clip's time t is stream time start + t."""
        if end is not None and end <= start:
            raise ProblemError(422, f"the clip must end after it starts (got {start:g} s to {end:g} s)")
        got, lo, hi = await anyio.to_thread.run_sync(lambda: start_clip(service, server.clips, stream, start, end))
        headers = {"X-Clip-Start": f"{lo:.3f}", "X-Clip-End": f"{hi:.3f}", "Cache-Control": "private, max-age=60"}
        if isinstance(got, GrowingFile):
            # A user error (no frames in range) surfaces before the first byte: wait for one or the end.
            await anyio.to_thread.run_sync(got.wait, 0, 30.0)
            if got.error is not None:
                raise got.error
            ranged = request.headers.get("range", "").replace(" ", "") not in ("", "bytes=0-")
            if not got.done and not ranged:
                return StreamingResponse(follow(got), media_type="video/mp4", headers=headers)
            while not got.done:  # a Range inside a clip still rendering: answer it from the whole file
                await anyio.to_thread.run_sync(got.wait, got.size, 5.0)
            if got.error is not None:
                raise got.error
            got = got.final
        return FileResponse(got, media_type="video/mp4", headers=headers)
