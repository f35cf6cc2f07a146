"""Playable MP4 clips of a stream's memory for `GET /v1/streams/{s}/clip?start=&end=`.

A clip shows the frames memory holds for the segments overlapping [start, end): re-read from the
source file or decoded from the stored proxies (`replay.load_segments`, the same frames the model
recompresses), at the stream's sampling rate (2 fps by default). Each frame is shown from its own
stream time until the next one's, so the clip's time t is stream time `start + t` and a player seeks
by stream time exactly. H.264 (yuv420p) in MP4 with the index at the front, written to a small disk
cache so the server answers HTTP Range requests (a browser's `<video>` seeks with them). The route
is `register_clip_routes`.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import av
import numpy as np
from fastapi import FastAPI, Query
from fastapi.responses import FileResponse
from tempo.tools.errors import ClipRangeError
from tempo.tools.server_problems import ProblemError

if TYPE_CHECKING:
    from tempo.tools.server import TempoServer

MAX_CLIP_SECONDS = 3600.0  # longest clip one request may render (seconds of stream time)
TIME_BASE = Fraction(1, 1000)  # ms


def _even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]


def write_mp4(path: Path, frames: list[np.ndarray], times: list[float], end: float) -> None:
    """Frames (H, W, 3) uint8 shown from times[i] (seconds, from 0) until times[i+1] (the last until `end`)."""
    tmp = path.with_suffix(".part")
    with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
        first = _even(frames[0])
        video = out.add_stream("libx264", rate=1000)
        video.width, video.height = first.shape[1], first.shape[0]
        video.pix_fmt = "yuv420p"
        video.time_base = TIME_BASE
        video.codec_context.time_base = TIME_BASE
        # Every frame a keyframe: memory frames are 0.5 s apart, so seeking lands on any of them.
        video.options = {"preset": "veryfast", "crf": "26", "g": "1"}
        pts_list = [round(t * 1000) for t in times]
        for frame, pts in zip(frames, pts_list, strict=True):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(_even(frame)), format="rgb24")
            vf = vf.reformat(width=video.width, height=video.height)
            vf.pts = pts
            vf.time_base = TIME_BASE
            out.mux(video.encode(vf))
        # A last copy of the final frame at `end`, so the clip lasts to the end of its last segment.
        last_pts = round(end * 1000)
        if last_pts > pts_list[-1]:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(_even(frames[-1])), format="rgb24")
            vf = vf.reformat(width=video.width, height=video.height)
            vf.pts, vf.time_base = last_pts, TIME_BASE
            out.mux(video.encode(vf))
        out.mux(video.encode(None))
    os.replace(tmp, path)


class ClipCache:
    """Rendered clips on disk, least recently used first out (at most `max_files`)."""

    def __init__(self, directory: Path, max_files: int = 64) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_files = max_files
        self._files: OrderedDict[str, Path] = OrderedDict()
        self._lock = threading.Lock()
        self._rendering: dict[str, threading.Lock] = {}

    def path_for(self, key: str) -> Path:
        return self.directory / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".mp4")

    def get_or_render(self, key: str, render) -> Path:  # render(path) -> None
        with self._lock:
            path = self._files.get(key)
            if path is not None and path.exists():
                self._files.move_to_end(key)
                return path
            lock = self._rendering.setdefault(key, threading.Lock())
        with lock:  # one render per key; others wait for it
            path = self.path_for(key)
            if not path.exists():
                render(path)
            with self._lock:
                self._files[key] = path
                self._files.move_to_end(key)
                self._rendering.pop(key, None)
                while len(self._files) > self.max_files:
                    _, old = self._files.popitem(last=False)
                    old.unlink(missing_ok=True)
        return path


def render_clip(service, cache: ClipCache, stream: str, start: float, end: float | None) -> tuple[Path, float, float]:
    """The MP4 of [start, end) of `stream` (end None: the stream's end). Returns (path, start, end)."""
    from tempo.memory.replay import load_segments

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
    indices = [int(i) for i in timeline.indices[rows]]
    key = f"{stream}|{info.number}|{info.first}|{indices[0]}-{indices[-1]}|{lo:.3f}|{hi:.3f}"

    def render(path: Path) -> None:
        frames: list[np.ndarray] = []
        times: list[float] = []
        for segment in load_segments(service.store, info, indices):
            for t, frame in zip(segment.timestamps.tolist(), segment.frames, strict=True):
                if lo - 1e-6 <= t < hi and (not times or t - lo > times[-1]):
                    frames.append(frame)
                    times.append(max(0.0, t - lo))
        if not frames:
            raise ClipRangeError(f"no stored frames of {stream!r} between {lo:g} s and {hi:g} s")
        times[0] = 0.0  # shown from the clip's start
        write_mp4(path, frames, times, hi - lo)

    return cache.get_or_render(key, render), lo, hi


def register_clip_routes(app: FastAPI, server: TempoServer) -> None:
    """GET /v1/streams/{stream}/clip over `server.service`, rendered into `server.clips`."""
    service = server.service

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
