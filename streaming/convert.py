"""Sampled frames → RGB at the output size, overlapped with decoding.

The release resizes full-size RGB frames with PIL's bicubic filter (`sampling.resize_frame`); that
resize is most of the per-sample work. It stays bit-exact here: streaming/resize.py computes PIL's
pixels with a compiled kernel (about twice as fast as PIL, straight from swscale's plane), on a
small pool of threads. swscale's RGB conversion and the kernel both release the GIL, so while a
worker converts the sampled frame, the reading thread goes on demuxing and decoding the next ones.
`ConvertPipeline` hands the results back in the order the frames were sampled, holding at most
`depth` frames in flight (each holds a decoded frame).
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from tempo.streaming.resize import resize_rgb
from tempo.streaming.sampling import SamplingConfig, target_size

Key = TypeVar("Key", bound=Hashable)


def default_convert_workers() -> int:
    """Conversion threads for reading a file: one per core beyond the first, at least one, at most 4."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


class FrameConverter:
    """Kept frames → (H, W, 3) uint8 RGB at one output size: swscale converts at the source size, then
    PIL's bicubic filter resizes, as the release resizes its decoded frames (the pixels of
    `sampling.resize_frame`, bit for bit, computed by the compiled kernel of streaming/resize.py;
    tests/streaming/test_convert.py and test_resize.py check it).

    One reformatter per thread for the whole ingest: `VideoFrame.reformat` would build a new swscale
    context (filter tables) for every frame, and a context is not safe to share between threads.
    """

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size  # (width, height)
        self._local = threading.local()

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        reformatter = getattr(self._local, "reformatter", None)
        if reformatter is None:
            reformatter = self._local.reformatter = VideoReformatter()
        rgb = reformatter.reformat(frame, format="rgb24")  # at the source size
        if (rgb.width, rgb.height) == self.size:
            return rgb.to_ndarray()
        # The resize reads swscale's output plane in place (rows padded to its line size): no copy.
        plane = rgb.planes[0]
        lines = np.frombuffer(plane, np.uint8)[: rgb.height * plane.line_size].reshape(rgb.height, plane.line_size)
        return resize_rgb(lines[:, : 3 * rgb.width].reshape(rgb.height, rgb.width, 3), self.size)


class ConvertPipeline(Generic[Key]):
    """Converts frames on `workers` threads; `put` and `drain` return (key, rgb) in the order put.

    With `workers` = 0 every frame is converted in the caller's thread as it is put (no threads).
    Close it (or use it as a context manager) to stop the threads; frames still in flight are dropped.
    """

    def __init__(self, convert: Callable[[av.VideoFrame], np.ndarray], *, workers: int,
                 depth: int | None = None) -> None:
        self.convert = convert
        self.depth = depth if depth is not None else workers + 1  # one waiting per thread, and one more
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="tempo-convert") if workers > 0 else None
        self._pending: collections.deque[tuple[Key, Future[np.ndarray]]] = collections.deque()

    def put(self, key: Key, frame: av.VideoFrame | np.ndarray, *, wait: bool = False) -> list[tuple[Key, np.ndarray]]:
        """Queue a frame; the frames whose conversion is done (oldest first, in order) come back, all
        of them, this one included, with `wait` (a frame that completes a segment: the consumer gets
        that segment before the reader decodes further)."""
        if isinstance(frame, np.ndarray):  # converted already (a GOP-parallel decoder's worker)
            if not self._pending:
                return [(key, frame)]
            done: Future[np.ndarray] = Future()
            done.set_result(frame)
            self._pending.append((key, done))
        elif self._pool is None:
            return [(key, self.convert(frame))]
        else:
            self._pending.append((key, self._pool.submit(self.convert, frame)))
        if wait:
            return self.drain()
        ready: list[tuple[Key, np.ndarray]] = []
        while self._pending and (len(self._pending) > self.depth or self._pending[0][1].done()):
            done_key, future = self._pending.popleft()
            ready.append((done_key, future.result()))
        return ready

    def drain(self) -> list[tuple[Key, np.ndarray]]:
        """Wait for every frame in flight; all of them, in order."""
        ready = [(key, future.result()) for key, future in self._pending]
        self._pending.clear()
        return ready

    def close(self) -> None:
        for _key, future in self._pending:
            future.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ConvertPipeline[Key]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def file_pipeline(config: SamplingConfig, width: int, height: int, *, decoder: str = "cpu") -> ConvertPipeline[Any]:
    """The conversion of a file's sampled frames (source size width × height) to the output size, on
    `config.convert_workers` threads beside decoding; with a GPU decoder ("gpu", "gpu-nvcodec"), on the
    GPU (torch) in the reading thread (the GPU works asynchronously already)."""
    if decoder.startswith("gpu"):
        from tempo.streaming.gpu import TorchFrameConverter

        return ConvertPipeline(TorchFrameConverter(target_size(width, height, config.max_edge)), workers=0)
    workers = default_convert_workers() if config.convert_workers is None else config.convert_workers
    return ConvertPipeline(FrameConverter(target_size(width, height, config.max_edge)), workers=workers)
