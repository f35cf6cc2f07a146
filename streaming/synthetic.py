"""Real test videos whose frames carry their own presentation time.

Every frame is a 4 × 8 grid of big dark/bright cells: 27 bits of "milliseconds since the first
frame" plus a 5-bit check. Cells this large survive H.264 at default quality, chroma subsampling and
downscaling to a few dozen pixels, so `read_frame_time` can tell, for any decoded and resized frame,
which source frame it is. The demo and every area's tests use these writers; they are product code,
kept fast (small default size, a fast x264 preset).
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

GRID_ROWS = 4
GRID_COLS = 8
DATA_BITS = 27  # milliseconds: up to ~37 hours of content
CHECK_BITS = GRID_ROWS * GRID_COLS - DATA_BITS  # 5
CHECK_MODULUS = 31
DARK = 24
BRIGHT = 232

# Container name per file suffix (what FFmpeg calls the muxer).
_MUXERS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".ts": "mpegts",
    ".m2ts": "mpegts",
    ".avi": "avi",
    ".flv": "flv",
    ".m3u8": "hls",
}
_ENCODERS = {"h264": "libx264", "vp9": "libvpx-vp9", "mpeg4": "mpeg4", "mpeg2": "mpeg2video"}


def _code_bits(time_s: float) -> np.ndarray:
    """(32,) uint8 bits for a time in seconds: 27 bits of milliseconds, then a 5-bit check."""
    ms = round(time_s * 1000.0)
    if not 0 <= ms < 2**DATA_BITS:
        raise ValueError(f"time {time_s} s cannot be encoded in a frame (0 ≤ t < {2**DATA_BITS / 1000} s)")
    value = (ms << CHECK_BITS) | (ms % CHECK_MODULUS)
    return np.array([(value >> (31 - i)) & 1 for i in range(32)], dtype=np.uint8)


def _luma(time_s: float, width: int, height: int, texture: np.ndarray | None) -> np.ndarray:
    """(H, W) uint8 brightness of the time-code grid, plus an optional (H, W) int16 texture."""
    bits = _code_bits(time_s).reshape(GRID_ROWS, GRID_COLS)
    levels = np.where(bits == 1, BRIGHT, DARK).astype(np.int16)  # (4, 8)
    # Cell edges placed by proportion, so any frame size works (not only multiples of the grid).
    rows = (np.arange(height) * GRID_ROWS) // height  # (H,)
    cols = (np.arange(width) * GRID_COLS) // width  # (W,)
    luma = np.take(np.take(levels, rows, axis=0), cols, axis=1)  # (H, W)
    if texture is not None:
        luma = np.clip(luma + texture, 0, 255)
    return luma.astype(np.uint8)


def _tint(time_s: float) -> np.ndarray:
    # A colour that drifts with time makes the demo video look like something; the code only reads
    # brightness, and the tint's amplitude keeps every cell on its side of 128.
    return 12.0 * np.array([math.sin(time_s * 0.7 + phase) for phase in (0.0, 2.1, 4.2)])


def draw_time_frame(time_s: float, width: int, height: int, texture: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB frame encoding `time_s`; optional (H, W) int16 texture is added as detail."""
    rgb = _luma(time_s, width, height, texture).astype(np.int16)[:, :, None] + _tint(time_s).astype(np.int16)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _yuv420_time_frame(time_s: float, width: int, height: int, texture: np.ndarray | None) -> av.VideoFrame:
    """The same picture built directly as a yuv420p frame (what the encoder wants; 3× less work)."""
    y = _luma(time_s, width, height, texture)  # (H, W)
    r, g, b = _tint(time_s)
    # BT.601 chroma of the tint; the luma grid is grey so only the tint colours the picture.
    u = int(np.clip(128 - 0.169 * r - 0.331 * g + 0.5 * b, 0, 255))
    v = int(np.clip(128 + 0.5 * r - 0.419 * g - 0.081 * b, 0, 255))
    chroma = np.empty((height // 2, width), dtype=np.uint8)  # U then V, each (H/2, W/2), packed by rows
    chroma[: height // 4] = u
    chroma[height // 4 :] = v
    return av.VideoFrame.from_ndarray(np.concatenate([y, chroma], axis=0), format="yuv420p")


def read_frame_time(frame_rgb: np.ndarray) -> float:
    """Decode the time (seconds) drawn by `draw_time_frame` from an (H, W, 3) uint8 frame.

    Reads the mean brightness of the central half of each cell, so blur, compression and resizing
    to as little as 32 × 16 pixels do not matter. Raises ValueError if the check bits disagree
    (the frame is not one of ours, or is damaged).
    """
    if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) frame, got shape {frame_rgb.shape}")
    height, width = frame_rgb.shape[:2]
    luma = frame_rgb.astype(np.float32).mean(axis=2)  # (H, W)
    value = 0
    for r in range(GRID_ROWS):
        y0, y1 = (r * height) // GRID_ROWS, ((r + 1) * height) // GRID_ROWS
        dy = max((y1 - y0) // 4, 0)
        for c in range(GRID_COLS):
            x0, x1 = (c * width) // GRID_COLS, ((c + 1) * width) // GRID_COLS
            dx = max((x1 - x0) // 4, 0)
            cell = luma[y0 + dy : max(y1 - dy, y0 + dy + 1), x0 + dx : max(x1 - dx, x0 + dx + 1)]
            value = (value << 1) | int(cell.mean() > 128.0)
    ms, check = value >> CHECK_BITS, value & (2**CHECK_BITS - 1)
    if ms % CHECK_MODULUS != check:
        raise ValueError("frame does not carry a readable time code")
    return ms / 1000.0


class _TexturedScene:
    """Coarse (4-pixel) noise detail: like a real scene's texture, without the bitrate of pixel noise."""

    def __init__(self, width: int, height: int, seed: int, mode: str) -> None:
        if mode not in ("scene", "scroll"):
            raise ValueError(f"texture must be 'scene' or 'scroll', got {mode!r}")
        rng = np.random.default_rng(seed)
        self.width, self.height, self.mode = width, height, mode
        coarse = rng.integers(-40, 41, size=((height + 256) // 4 + 1, (width + 256) // 4 + 1), dtype=np.int16)
        self.field = np.repeat(np.repeat(coarse, 4, axis=0), 4, axis=1)[: height + 256, : width + 256]
        self.side = max(16, min(width, height) // 3)
        self.object = rng.integers(-60, 61, size=(self.side, self.side), dtype=np.int16)

    def texture(self, i: int) -> np.ndarray:
        """(H, W) int16 detail of frame i."""
        if self.mode == "scroll":
            shift = (i * 3) % 256
            return self.field[shift : shift + self.height, shift : shift + self.width]
        out = self.field[: self.height, : self.width].copy()
        # The object bounces horizontally, 4 pixels a frame, along a gentle diagonal.
        span_x, span_y = self.width - self.side, self.height - self.side
        x = abs((i * 4) % (2 * span_x) - span_x) if span_x > 0 else 0
        y = abs((i * 1) % (2 * span_y) - span_y) if span_y > 0 else 0
        out[y : y + self.side, x : x + self.side] = self.object
        return out


def vfr_frame_times(duration: float, fps: float, seed: int = 0) -> list[float]:
    """Irregular frame times in [0, duration): intervals of 0.5, 1 or 2.5 nominal frame durations."""
    rng = np.random.default_rng(seed)
    times, t = [], 0.0
    while t < duration - 1e-9:
        times.append(t)
        t += float(rng.choice([0.5, 1.0, 2.5])) / fps
    return times


def _muxer_for(path: Path, container: str | None) -> str:
    if container is not None:
        return container
    try:
        return _MUXERS[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"cannot tell the container from suffix {path.suffix!r}; pass container=") from None


def write_test_video(
    path: str | os.PathLike[str],
    *,
    duration: float,
    fps: float = 30.0,
    size: tuple[int, int] = (160, 96),
    codec: str = "h264",
    container: str | None = None,
    bframes: int = 2,
    keyint: int | None = None,
    vfr: bool = False,
    frame_times: Sequence[float] | None = None,
    start_pts_offset: float = 0.0,
    texture: bool | str = False,
    audio: bool = False,
    crf: int = 23,
    preset: str = "veryfast",
    faststart: bool = False,
    muxer_options: dict[str, str] | None = None,
    seed: int = 0,
    x264_params: str = "",
) -> Path:
    """Write a real video whose every frame shows its time since the first frame (`read_frame_time`).

    `size` is (width, height). Frame i is shown at `frame_times[i]` (seconds from the first frame);
    by default frames are regular at `fps`, or irregular when `vfr` (intervals of 0.5/1/2.5 frames).
    A `.m3u8` path writes an HLS playlist with its MPEG-TS segments beside it (`muxer_options`
    passes FFmpeg muxer options, e.g. {"hls_time": "1"}). `start_pts_offset` shifts every timestamp
    in the container (seconds) without changing what the frames show. `bframes` and `keyint` (frames,
    default 2 s) set the H.264 GOP; `texture` adds detail so the encoder and decoder do realistic
    work (benchmarks): True or "scene" is a still textured background with a textured object moving
    across it (like a fixed camera), "scroll" moves the whole textured frame (a panning camera,
    the hardest case). `x264_params` appends x264 options ("open-gop=1"). Returns the path.
    """
    path = Path(path)
    width, height = size
    if frame_times is None:
        frame_times = vfr_frame_times(duration, fps, seed) if vfr else [
            i / fps for i in range(max(1, round(duration * fps)))
        ]
    muxer = _muxer_for(path, container)
    encoder = _ENCODERS.get(codec, codec)
    # Timestamps in milliseconds are exact for VFR and for offsets; 1/fps is exact for CFR.
    millis = vfr or muxer in ("matroska", "webm")
    time_base = Fraction(1, 1000) if millis else Fraction(1, round(fps * 1000))
    rate = Fraction(fps).limit_denominator(1001)
    keyint = keyint if keyint is not None else max(1, round(2 * fps))
    options: dict[str, str] = {}
    if encoder == "libx264":
        options = {
            "preset": preset,
            "crf": str(crf),
            "x264-params": f"bframes={bframes}:keyint={keyint}:min-keyint={min(keyint, 25)}:scenecut=0"
            + (f":{x264_params}" if x264_params else ""),  # more x264 options, e.g. "open-gop=1"
        }
    elif encoder == "libvpx-vp9":
        options = {"deadline": "realtime", "cpu-used": "8", "crf": "30", "b": "0"}
    container_options = {"movflags": "+faststart"} if faststart and muxer in ("mp4", "mov") else {}
    container_options.update(muxer_options or {})

    scene = None
    if texture:
        scene = _TexturedScene(width, height, seed, mode="scene" if texture is True else str(texture))

    with av.open(str(path), mode="w", format=muxer, container_options=container_options) as out:
        stream = out.add_stream(encoder, rate=rate, options=options)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        if encoder not in ("libx264", "libvpx-vp9"):
            stream.codec_context.gop_size = keyint
            stream.codec_context.max_b_frames = bframes
            stream.codec_context.bit_rate = 2_000_000
        stream.thread_count = 0
        audio_stream = None
        if audio:
            audio_stream = out.add_stream("aac", rate=16000, layout="mono")
        offset_ticks = round(start_pts_offset / time_base)
        for i, t in enumerate(frame_times):
            texture_now = scene.texture(i) if scene is not None else None
            if width % 4 == 0 and height % 4 == 0:
                frame = _yuv420_time_frame(t, width, height, texture_now)
            else:
                rgb = draw_time_frame(t, width, height, texture_now)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = round(t / time_base) + offset_ticks
            frame.time_base = time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        if audio_stream is not None:
            _write_sine(out, audio_stream, duration=frame_times[-1] + 1.0 / fps, offset=start_pts_offset)
    return path


def _write_sine(out: av.container.OutputContainer, stream: av.AudioStream, *, duration: float,
                offset: float = 0.0) -> None:
    rate = stream.rate
    samples_per_frame = 1024
    total = int(duration * rate)
    offset_samples = round(offset * rate)
    for start in range(0, total, samples_per_frame):
        n = min(samples_per_frame, total - start)
        t = (np.arange(start, start + n) / rate).astype(np.float32)
        pcm = (0.2 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)[None, :]  # (1, n)
        frame = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = start + offset_samples
        frame.time_base = Fraction(1, rate)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def write_mpegts(path: str | os.PathLike[str], *, duration: float, **kwargs: object) -> Path:
    """An H.264 MPEG-TS file (what live sources send); same keywords as `write_test_video`."""
    return write_test_video(path, duration=duration, container="mpegts", **kwargs)  # type: ignore[arg-type]


def write_audio_only(path: str | os.PathLike[str], *, duration: float = 2.0) -> Path:
    """A media file with one AAC audio stream and no video (suffix picks the container, e.g. .m4a)."""
    path = Path(path)
    muxers = {".m4a": "mp4", ".mp4": "mp4", ".mkv": "matroska", ".ts": "mpegts"}
    muxer = muxers.get(path.suffix.lower(), "mp4")
    with av.open(str(path), mode="w", format=muxer) as out:
        stream = out.add_stream("aac", rate=16000, layout="mono")
        _write_sine(out, stream, duration=duration)
    return path


def write_truncated(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, keep: float = 0.5) -> Path:
    """Copy the first `keep` fraction of `src`'s bytes to `dst`: a file cut off in the middle."""
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def write_corrupted(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    at: float = 0.5,
    length: int = 4096,
    seed: int = 0,
) -> Path:
    """Copy `src` to `dst` with `length` random bytes overwritten at fraction `at`: damage mid-file."""
    data = bytearray(Path(src).read_bytes())
    start = int(len(data) * at)
    garbage = np.random.default_rng(seed).integers(0, 256, size=length, dtype=np.uint8).tobytes()
    data[start : start + length] = garbage[: max(0, min(length, len(data) - start))]
    dst = Path(dst)
    dst.write_bytes(bytes(data))
    return dst


def write_not_media(path: str | os.PathLike[str]) -> Path:
    """A file with a video suffix that holds text, not media."""
    path = Path(path)
    path.write_text("this is a shopping list, not a video\n" * 64)
    return path


class RealTimePublisher:
    """Serves `data` (e.g. an MPEG-TS file) once per connection on 127.0.0.1, paced so that it lasts
    `seconds` of wall clock, like a camera; a new connection starts from the beginning again.

    With `pause` (seconds), each connection stalls that long once it reaches fraction `pause_at` of
    the data, then goes on: a camera that freezes, whose timestamps jump by the time it lost.
    """

    def __init__(self, data: bytes, seconds: float, *, port: int = 0, connections: int = 1,
                 pause: float = 0.0, pause_at: float = 0.5) -> None:
        self.data, self.seconds, self.connections = data, seconds, connections
        self.pause, self.pause_at = pause, pause_at
        self.server = socket.create_server(("127.0.0.1", port))
        self.port = int(self.server.getsockname()[1])
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self.server.settimeout(120)
        for _ in range(self.connections):
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            started, chunk = time.monotonic(), 188 * 16  # whole TS packets
            paused = 0.0  # seconds this connection has stalled so far
            with conn:
                for offset in range(0, len(self.data), chunk):
                    if self.pause and not paused and offset >= len(self.data) * self.pause_at:
                        self.stop.wait(self.pause)  # close() ends a stall at once
                        paused = self.pause
                    if self.stop.is_set():
                        return
                    due = started + paused + self.seconds * offset / len(self.data)
                    time.sleep(max(0.0, due - time.monotonic()))
                    try:
                        conn.sendall(self.data[offset : offset + chunk])
                    except OSError:
                        break

    def close(self) -> None:
        self.stop.set()
        self.server.close()
        self.thread.join(timeout=10)
