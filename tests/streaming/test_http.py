"""Network files: a plain file and an HLS playlist served over HTTP on loopback."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tempo.streaming import SamplingConfig, iter_segments
from tempo.streaming.synthetic import read_frame_time, write_test_video


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server over a folder holding an MP4 and an HLS VOD playlist."""
    root = tmp_path_factory.mktemp("www")
    write_test_video(root / "clip.mp4", duration=5.0, fps=30.0, faststart=True)
    (root / "hls").mkdir()
    write_test_video(root / "hls" / "index.m3u8", duration=5.0, fps=30.0, keyint=30,
                     muxer_options={"hls_time": "1", "hls_list_size": "0", "hls_playlist_type": "vod"})
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def _content_times(segments) -> tuple[np.ndarray, np.ndarray]:
    times = np.concatenate([s.timestamps for s in segments])
    shown = np.array([read_frame_time(f) for s in segments for f in s.frames])
    return times, shown


@pytest.mark.parametrize("path", ["clip.mp4", "hls/index.m3u8"])
def test_http_file_and_hls_playlist_are_ingested_as_files(http_root, path: str) -> None:
    base, _ = http_root
    stream = iter_segments(f"{base}/{path}", config=SamplingConfig(max_edge=64))
    segments = list(stream)
    # A known duration makes an http(s) source a file: no wall clock, times from 0 by pts.
    assert stream.info.kind == "network" and not stream.info.live
    times, shown = _content_times(segments)
    assert len(times) == 10
    assert np.all(np.abs(shown - times) <= 1 / 30 + 1e-6)
    assert [s.num_frames for s in segments] == [8, 2]
