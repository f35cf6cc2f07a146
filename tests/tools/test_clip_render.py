"""Clips rendered as they are encoded (tools/clip_render.py, tools/server_clips.py): the fragmented MP4
decodes to the frames at their times with the clip's length in its header, readers follow a render in
progress, a partial clip never sits under the cached name, and renders past the bound are 429."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import av
import numpy as np
import pytest
from tempo.errors import TooManyRequestsError
from tempo.tools.clip_render import FragmentedMP4, GrowingFile
from tempo.tools.server_clips import ClipCache


def frames(n: int) -> list[np.ndarray]:
    out = []
    for i in range(n):
        frame = np.zeros((96, 161, 3), np.uint8)  # an odd width: cropped to even
        frame[:, 10 * i : 10 * i + 10] = 255
        out.append(frame)
    return out


def test_a_fragmented_clip_decodes_to_its_frames_at_their_times_with_its_length_in_the_header() -> None:
    buffer = io.BytesIO()
    written: list[int] = []
    mp4 = FragmentedMP4(buffer, 5.0, written.append)
    out_after: list[int] = []  # bytes out after each frame went in
    for i, frame in enumerate(frames(8)):
        mp4.add(frame, 0.5 * i)
        out_after.append(sum(written))
    mp4.close(5.0)
    data = buffer.getvalue()
    assert sum(written) == len(data)
    assert 0 < out_after[0] < out_after[1] < out_after[2] < out_after[-1] < len(data)  # out as it is encoded
    assert data[4:8] == b"ftyp" and b"moof" in data  # fragments, not one mdat at the end
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (160, 96)
        decoded = [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    with av.open(io.BytesIO(data[: data.index(b"moof") - 4])) as head:  # the moov alone tells the length
        assert head.duration / av.time_base == pytest.approx(5.0, abs=1e-3)
    assert [t for t, _ in decoded] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 5.0]
    for i, (_, image) in enumerate(decoded[:8]):  # the white bar moved 10 px per frame
        assert np.argmax(image[48].mean(axis=1) > 128) == pytest.approx(10 * i, abs=2)


def test_readers_follow_a_render_and_the_cached_name_appears_only_when_it_is_complete(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path, max_renders=1)
    go = threading.Event()

    def render(growing: GrowingFile) -> None:
        growing.file.write(b"first")
        growing.file.flush()
        growing.wrote(5)
        go.wait(10)
        growing.file.write(b"-second")
        growing.file.flush()
        growing.wrote(7)

    growing = cache.get_or_start("a", render)
    assert isinstance(growing, GrowingFile)
    assert growing.wait(0, 10) == (5, False)
    reader = growing.open_reader()
    assert reader.read() == b"first" and not growing.final.exists() and growing.part.exists()
    assert cache.get_or_start("a", render) is growing  # one render per clip, however many ask
    with pytest.raises(TooManyRequestsError, match="1 clips are being rendered already"):
        cache.get_or_start("b", render)
    go.set()
    assert growing.wait(5, 10)[0] == 12  # the new bytes wake the reader, maybe before the render ends
    assert growing.wait(12, 10) == (12, True)
    assert reader.read() == b"-second"  # the same open file, renamed meanwhile
    reader.close()
    assert growing.final.read_bytes() == b"first-second" and not growing.part.exists()
    assert cache.get_or_start("a", render) == growing.final  # cached now, and the bound is free again
    assert isinstance(cache.get_or_start("b", lambda g: None), GrowingFile)


def test_a_failed_render_leaves_no_file_and_tells_its_readers(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path)

    def render(growing: GrowingFile) -> None:
        raise ValueError("broken source")

    growing = cache.get_or_start("a", render)
    assert growing.wait(0, 10) == (0, True)
    assert isinstance(growing.error, ValueError) and list(tmp_path.iterdir()) == []
