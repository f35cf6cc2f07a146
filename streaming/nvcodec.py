"""Decoding a file on the GPU with NVIDIA's PyNvVideoCodec (the `nvdec` extra): NVDEC where PyAV's
FFmpeg has no CUDA hwaccel, or where that hwaccel cannot open a file (gpu.open_on_gpu tries it first).

PyNvVideoCodec's own demuxer (its bundled FFmpeg) reads the file's packets; its core decoder
(`CreateDecoder`, device memory, NATIVE output) returns each frame in presentation order with the
pts of the packet it came from, in the video stream's time base. That time base is read from the
same file through PyAV (the container fixes it, whichever FFmpeg reads it): a frame's time is
pts × time base in seconds, never a frame count. Frames stay on the GPU: torch takes the decoder's
NV12 surface through DLPack, and the planes are copied on the device (the decoder reuses its
surfaces on the next `Decode` call, while the sampler holds a frame across calls). The sampled
frames are then converted to RGB and resized by the same torch code as the FFmpeg hwaccel path
(`gpu.TorchFrameConverter`, `nv12_to_rgb_resized`). The NATIVE (NV12) output is used rather than
the library's RGB output, so that both GPU paths share one YUV→RGB conversion, whose difference
from the CPU path is measured once (README "Decoding on the GPU").

What it covers: local files whose video NVDEC decodes to 8-bit 4:2:0 (NV12) with timestamps.
Standard input, network sources (their reads go through streaming/netguard.py, which this demuxer
would bypass) and the release's whole-file sampling decode on the CPU. A file NVDEC cannot open or
decode falls back to the CPU with one line (`NvdecUnusable`); a failure after the first frame hands
the rest of the file to the CPU decoder from the last frame NVDEC gave (`with_cpu_rescue`).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from tempo.streaming.decode import IngestStats, source_fps
from tempo.streaming.sampling import TIME_EPSILON

log = logging.getLogger("tempo.streaming")

MODULE = "PyNvVideoCodec"
# FFmpeg's AV_NOPTS_VALUE: a packet (hence a frame) without a presentation time.
NOPTS = -(2**63)
# Packets fed to the decoder while looking for the first frame before giving up on the file
# (NVDEC holds back a few frames for reordering; a stream it cannot parse yields none).
PROBE_PACKETS = 64


class NvdecUnusable(Exception):
    """PyNvVideoCodec cannot decode this file on the GPU (the message says why, in a few words).
    Control flow, not a user error: gpu.open_on_gpu catches it and the CPU decodes instead."""


def nvcodec_unavailable_reason() -> str | None:
    """None when PyNvVideoCodec can decode here; else one short reason why not."""
    if MODULE not in sys.modules and importlib.util.find_spec(MODULE) is None:
        return "PyNvVideoCodec is not installed"
    try:
        importlib.import_module(MODULE)
    except Exception as exc:  # a wheel without its CUDA libraries raises ImportError or OSError
        return f"PyNvVideoCodec does not load ({str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__})"
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device is visible"
    return None


def pts_seconds(pts: int, time_base: Fraction) -> float:
    """A frame's time in seconds: pts × the video stream's time base (exact, then one rounding)."""
    return float(pts * time_base)


def library_errors(nvc: Any) -> tuple[type[BaseException], ...]:
    """What PyNvVideoCodec raises for a stream it cannot handle: its PyNvVCException* classes, and
    the RuntimeError / ValueError / OSError its bindings turn C++ errors into."""
    own = tuple(value for name in dir(nvc) if name.startswith("PyNvVC")
                and isinstance(value := getattr(nvc, name), type) and issubclass(value, Exception))
    return (*own, RuntimeError, ValueError, OSError)


@dataclass
class NvFrame:
    """One frame NVDEC decoded: its NV12 planes as torch uint8 tensors on the GPU, and what the
    conversion needs (`gpu.TorchFrameConverter`). Sizes in pixels; `colorspace` / `color_range` are
    FFmpeg's AVColorSpace / AVColorRange of the stream; `pts` in the stream's time base."""

    y: Any  # (H, W) luma
    uv: Any  # (ceil(H/2), 2·ceil(W/2)) interleaved chroma
    width: int
    height: int
    colorspace: int
    color_range: int
    pts: int

    def nv12_planes(self) -> tuple[Any, Any]:
        return self.y, self.uv


class NvdecFile:
    """A local file opened for PyNvVideoCodec decoding, its first frame already decoded (`open`).

    `stream` is the file's video stream as PyAV sees it: the time base, the frame size and the
    colour space come from it. Iterate `frames(stats)` once: (time in seconds, NvFrame) in
    presentation order, from the start of the file.
    """

    def __init__(self, path: str, stream: av.VideoStream, *, gpu_id: int = 0) -> None:
        import PyNvVideoCodec as nvc

        if stream.time_base is None:
            raise NvdecUnusable("the video stream has no time base")
        ctx = stream.codec_context
        self.path = path
        self.time_base = Fraction(stream.time_base)
        self.width, self.height = int(ctx.width), int(ctx.height)
        self.colorspace, self.color_range = int(ctx.colorspace or 0), int(ctx.color_range or 0)
        fps = source_fps(stream)
        self.step_guess = 1.0 / fps if fps else 1.0 / 30.0  # only for a frame without pts mid-stream
        self.errors = library_errors(nvc)
        self._nvc = nvc
        self._gpu_id = gpu_id
        self._demuxer: Any = None
        self._decoder: Any = None
        self._pending: list[Any] = []  # frames decoded while probing, not yet handed out

    def open(self) -> NvdecFile:
        """Open the demuxer and decoder and decode up to the first frame: a file NVDEC cannot read,
        whose first frame is not NV12 or has no timestamp, raises NvdecUnusable here, before any
        segment is made."""
        nvc = self._nvc
        try:
            self._demuxer = nvc.CreateDemuxer(filename=self.path)
            self._decoder = nvc.CreateDecoder(gpuid=self._gpu_id, codec=self._demuxer.GetNvCodecId(),
                                              cudacontext=0, cudastream=0, usedevicememory=True)
            for _packet_count, packet in zip(range(PROBE_PACKETS), self._demuxer, strict=False):
                self._pending = list(self._decoder.Decode(packet))
                if self._pending or not packet.bsl:
                    break
        except self.errors as exc:
            self.close()
            raise NvdecUnusable(_short(exc)) from exc
        if not self._pending:
            self.close()
            raise NvdecUnusable(f"no frame after {PROBE_PACKETS} packets")
        first = self._pending[0]
        if first.format != nvc.Pixel_Format.NV12:
            self.close()
            raise NvdecUnusable(f"NVDEC gives {_format_name(first.format)} for this stream, only NV12 is converted")
        if first.timestamp == NOPTS:
            self.close()
            raise NvdecUnusable("its frames carry no timestamps")
        return self

    def close(self) -> None:
        """Release the decoder's GPU surfaces (dropping the last references frees them)."""
        self._pending, self._decoder, self._demuxer = [], None, None

    def frames(self, stats: IngestStats) -> Iterator[tuple[float, NvFrame]]:
        """(time in seconds, NvFrame) of every frame, in presentation order. The library's errors
        after the first frame propagate (`with_cpu_rescue` hands the rest to the CPU)."""
        if self._decoder is None:
            raise RuntimeError("NvdecFile.frames() needs open() first, and runs once")
        previous: float | None = None
        try:
            decoded = iter(self._pending)
            packets = iter(self._demuxer)
            while True:
                for raw in decoded:
                    t = previous = self._time(raw.timestamp, previous)
                    stats.frames_decoded += 1
                    yield t, self._frame(raw)
                packet = next(packets, None)
                if packet is None:
                    return
                decoded = iter(self._decoder.Decode(packet))  # the final empty packet flushes the decoder
        finally:
            self.close()

    def _time(self, pts: int, previous: float | None) -> float:
        """pts × time base; as the CPU path does (decode.decoded_frames), a frame without pts comes
        one frame after the previous one, and time never runs backwards (broken muxing)."""
        if pts == NOPTS:
            return 0.0 if previous is None else previous + self.step_guess
        t = pts_seconds(pts, self.time_base)
        if previous is not None and t <= previous - 1e-9:
            return previous + self.step_guess
        return t

    def _frame(self, raw: Any) -> NvFrame:
        import torch

        nv12 = torch.from_dlpack(raw)  # (H + ceil(H/2), W) uint8 on the GPU: luma rows, then chroma rows
        rows = 2 * nv12.shape[0] // 3  # H (exact for even and odd heights)
        # Copied on the device: the decoder writes its next frames into the same surfaces.
        return NvFrame(nv12[:rows].clone(), nv12[rows:].clone(), self.width, self.height,
                       self.colorspace, self.color_range, int(raw.timestamp))


def with_cpu_rescue(
    frames: Iterator[tuple[float, Any]],
    errors: tuple[type[BaseException], ...],
    cpu_after: Callable[[float | None], Iterator[tuple[float, Any]]],
    *,
    source: str,
    stats: IngestStats,
) -> Iterator[tuple[float, Any]]:
    """NVDEC's frames; if the library fails mid-file, one warning and the CPU decoder's frames after
    the last time NVDEC gave (`cpu_after(t)`: decoded frames from a keyframe at or before t)."""
    last: float | None = None
    try:
        for t, frame in frames:
            last = t
            yield t, frame
        return
    except errors as exc:
        stats.decode_errors += 1
        where = "at the start" if last is None else f"after {last:.2f} s"
        message = f"{source}: NVDEC stopped {where} ({_short(exc)}); decoding the rest on the CPU"
        stats.warnings.append(message)
        log.warning(message)
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()  # the decoder's GPU surfaces go now, not when the garbage collector runs
    for t, frame in cpu_after(last):
        if last is None or t > last + TIME_EPSILON:
            yield t, frame


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:100]


def _format_name(value: Any) -> str:
    return str(getattr(value, "name", value)).rsplit(".", 1)[-1]
