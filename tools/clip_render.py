"""Fragmented MP4 written as it is encoded, and read while it is written.

`FragmentedMP4` encodes frames (H, W, 3) uint8 into H.264 in fragmented MP4 (an empty `moov`, then a
`moof`+`mdat` per keyframe; every frame is a keyframe, so a fragment per frame): the first bytes exist
as soon as the first frame is encoded, and nothing of the clip is held in memory beyond the encoder's
own state. The clip's length is known before its first frame, so the `moov`'s durations (`mvhd`,
`mdhd`) are written with it: a player shows the length and its seek bar while the rest is still coming.

`GrowingFile` is one render in progress: the writer appends to a `.part` file and readers follow it
(`read_from`) until the writer says it is done; then the file is renamed to its final name, so a
partial clip never sits under a name the cache would serve.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

TIME_BASE = Fraction(1, 1000)  # ms
MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"


def _even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]


def _patch_durations(head: bytearray, seconds: float) -> None:
    """Write `seconds` into the `mvhd` and each track's `mdhd` of an `ftyp`+`moov` head, in place
    (both boxes keep their size: version 0 has a 32-bit duration, version 1 a 64-bit one)."""

    def walk(start: int, end: int) -> None:
        at = start
        while at + 8 <= end:
            size, kind = struct.unpack_from(">I4s", head, at)
            if size < 8 or at + size > end:
                return
            if kind in (b"moov", b"trak", b"mdia"):
                walk(at + 8, at + size)
            elif kind in (b"mvhd", b"mdhd"):
                version = head[at + 8]
                if version == 1:
                    (scale,) = struct.unpack_from(">I", head, at + 28)
                    struct.pack_into(">Q", head, at + 32, round(seconds * scale))
                else:
                    (scale,) = struct.unpack_from(">I", head, at + 20)
                    struct.pack_into(">I", head, at + 24, min(round(seconds * scale), 0xFFFFFFFF))
            at += size

    walk(0, len(head))


class _HeadPatchingWriter:
    """The muxer's output: holds bytes back until `ftyp`+`moov` are complete, patches their durations,
    then passes everything through to `out` (not seekable, so the muxer never goes back)."""

    def __init__(self, out: BinaryIO, seconds: float, on_write) -> None:  # on_write(nbytes) -> None
        self.out, self.seconds, self.on_write = out, seconds, on_write
        self.head: bytearray | None = bytearray()

    def write(self, data: bytes) -> int:
        if self.head is None:
            self._emit(bytes(data))
            return len(data)
        self.head += data
        at = 0
        while at + 8 <= len(self.head):
            size, kind = struct.unpack_from(">I4s", self.head, at)
            if kind != b"ftyp" and kind != b"moov":
                break
            if at + size > len(self.head):
                return len(data)  # the moov is not complete yet
            at += size
            if kind == b"moov":
                head, self.head = self.head, None
                _patch_durations(head, self.seconds)
                self._emit(bytes(head))
                return len(data)
        return len(data)

    def _emit(self, data: bytes) -> None:
        self.out.write(data)
        self.out.flush()
        self.on_write(len(data))


class FragmentedMP4:
    """An H.264 fragmented MP4 being written: `add(frame, t)` for each frame (t: seconds from the clip's
    start, increasing), then `close(end)`, which holds the last frame until `end` seconds."""

    def __init__(self, out: BinaryIO, seconds: float, on_write) -> None:
        self._writer = _HeadPatchingWriter(out, seconds, on_write)
        # A small I/O buffer: fragments leave the muxer as they are made, not in 32 KiB lumps.
        self._container = av.open(
            self._writer, mode="w", format="mp4", options={"movflags": MOVFLAGS}, buffer_size=4096
        )
        self._video = None
        self._last: tuple[np.ndarray, int] | None = None

    def _open_stream(self, frame: np.ndarray) -> None:
        video = self._container.add_stream("libx264", rate=1000)
        video.height, video.width = frame.shape[:2]
        video.pix_fmt = "yuv420p"
        video.time_base = TIME_BASE
        video.codec_context.time_base = TIME_BASE
        # Every frame a keyframe (memory frames are 0.5 s apart, so a seek lands on any of them), and
        # no lookahead: each frame leaves the encoder when it goes in.
        video.options = {"preset": "veryfast", "crf": "26", "g": "1", "tune": "zerolatency"}
        self._video = video

    def _encode(self, frame: np.ndarray, pts: int) -> None:
        video = self._video
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf = vf.reformat(width=video.width, height=video.height)
        vf.pts, vf.time_base = pts, TIME_BASE
        self._container.mux(video.encode(vf))

    def add(self, frame: np.ndarray, t: float) -> None:
        frame = _even(frame)
        if self._video is None:
            self._open_stream(frame)
        pts = round(t * 1000)
        self._encode(frame, pts)
        self._last = (frame, pts)

    def close(self, end: float) -> None:
        """Finish the clip: the last frame again at `end` (so the clip lasts to its last segment's end)."""
        if self._last is not None:
            frame, pts = self._last
            if round(end * 1000) > pts:
                self._encode(frame, round(end * 1000))
            self._container.mux(self._video.encode(None))
        self._container.close()

    def abort(self) -> None:
        with contextlib.suppress(av.FFmpegError, OSError, ValueError):
            self._container.close()


class GrowingFile:
    """One clip being rendered into `part` (renamed to `final` when complete); readers follow it."""

    def __init__(self, part: Path, final: Path) -> None:
        self.part, self.final = part, final
        self.size = 0  # bytes written so far
        self.done = False
        self.error: BaseException | None = None
        self._changed = threading.Condition()
        part.unlink(missing_ok=True)
        self.file = open(part, "wb")  # noqa: SIM115 (closed by finish)

    def wrote(self, nbytes: int) -> None:
        with self._changed:
            self.size += nbytes
            self._changed.notify_all()

    def finish(self, error: BaseException | None = None) -> None:
        """The writer is done (or failed): a complete clip takes its final name, a failed one is removed."""
        self.file.close()
        with self._changed:  # readers open the file under this lock: never between rename and done
            if error is None:
                os.replace(self.part, self.final)
            else:
                self.part.unlink(missing_ok=True)
            self.error, self.done = error, True
            self._changed.notify_all()

    def open_reader(self) -> BinaryIO:
        """The clip's bytes from the start, whether it is still being written or complete."""
        with self._changed:
            return open(self.final if self.done else self.part, "rb")

    def wait(self, offset: int, timeout: float) -> tuple[int, bool]:
        """Block until more than `offset` bytes exist or the render ended (at most `timeout` seconds).
        Returns (bytes written, done)."""
        with self._changed:
            self._changed.wait_for(lambda: self.size > offset or self.done, timeout=timeout)
            return self.size, self.done
