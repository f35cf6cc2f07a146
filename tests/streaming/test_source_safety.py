"""Sources that must not hang or reach where they should not: FIFOs and other non-regular files,
and playlists naming other protocols than their own source kind allows."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from tempo.streaming import SamplingConfig, iter_segments, probe_source
from tempo.streaming.errors import NotMediaError, StreamingError
from tempo.streaming.synthetic import write_mpegts

SMALL = SamplingConfig(max_edge=64, connect_timeout=3.0, read_timeout=3.0)


@pytest.fixture()
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "clip.mp4"
    os.mkfifo(path)
    yield path
    # Whoever still waits to read it (a failing run) is released by a writer that opens and closes.
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK) if _has_reader(path) else None
    if fd is not None:
        os.close(fd)


def _has_reader(path: Path) -> bool:
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("entry", [iter_segments, probe_source])
def test_a_fifo_is_refused_at_once_instead_of_waiting_for_a_writer(fifo: Path, entry: Any, finishes_within) -> None:
    error = finishes_within(10.0, lambda: entry(str(fifo), config=SMALL))
    assert isinstance(error, NotMediaError)
    assert str(error) == f"{str(fifo)!r} is not a media file FFmpeg can read (it is a named pipe (FIFO), " \
                         "not a regular file)."


def test_a_directory_and_a_device_are_refused_as_file_sources(tmp_path: Path) -> None:
    with pytest.raises(NotMediaError, match="it is a directory, not a regular file"):
        iter_segments(str(tmp_path), config=SMALL)
    with pytest.raises(NotMediaError, match="it is a device, not a regular file"):
        iter_segments("/dev/null", config=SMALL)


def test_the_cli_refuses_a_fifo_in_one_line_within_seconds(fifo: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "tempo.tools.cli", "segments", str(fifo)],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        f"tempo: error: {str(fifo)!r} is not a media file FFmpeg can read (it is a named pipe (FIFO), "
        "not a regular file)."
    ]
    assert time.monotonic() - started < 60


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        super().do_GET()


@pytest.fixture()
def http_server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    root = tmp_path / "www"
    root.mkdir()
    handler_class = type("Handler", (_CountingHandler,), {"requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler_class, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root, handler_class.requests
    server.shutdown()
    server.server_close()


def _playlist(uri: str) -> str:
    return ("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n"
            f"#EXTINF:3.0,\n{uri}\n#EXT-X-ENDLIST\n")


def test_a_local_playlist_cannot_make_ffmpeg_fetch_from_the_network(
    tmp_path: Path, http_server: tuple[str, Path, list[str]]
) -> None:
    base, root, requests = http_server
    write_mpegts(root / "segment.ts", duration=3.0, fps=30.0)
    playlist = tmp_path / "local.m3u8"
    playlist.write_text(_playlist(f"{base}/segment.ts"))  # a file source may read files only
    with pytest.raises(StreamingError):
        list(iter_segments(str(playlist), config=SMALL))
    assert requests == []  # nothing was fetched


def test_a_remote_playlist_cannot_make_ffmpeg_read_local_files(
    tmp_path: Path, http_server: tuple[str, Path, list[str]]
) -> None:
    base, root, requests = http_server
    secret = write_mpegts(tmp_path / "secret.ts", duration=3.0, fps=30.0)
    (root / "evil.m3u8").write_text(_playlist(f"file://{secret}"))
    with pytest.raises(StreamingError):
        list(iter_segments(f"{base}/evil.m3u8", config=SMALL))
    assert requests == ["/evil.m3u8"]


@pytest.mark.parametrize(
    ("url", "served"),
    [
        ("rtmps://cam.example.com/live/one", True),
        ("srt://cam.example.com:9000", True),
        ("rtsps://cam.example.com/stream", True),
        ("rtp://cam.example.com:5004", False),  # listens on the server: ingest only from the CLI
    ],
)
def test_the_cli_reader_and_the_server_read_one_scheme_table(url: str, served: bool) -> None:
    """A scheme the CLI reads is accepted by `tempo serve` unless the table says otherwise, and every
    one of them gets a protocol whitelist (before: three lists, and rtmps was refused by the server)."""
    from tempo.streaming.sources import protocol_whitelist, resolve_source
    from tempo.tools.server_sources import SourceNotAllowedError, check_source

    resolved = resolve_source(url)
    assert resolved.kind == "network"
    assert url.split("://")[0] in protocol_whitelist(resolved).split(",")
    if served:
        assert check_source(url, media_root=None) == url
    else:
        with pytest.raises(SourceNotAllowedError, match="is not allowed for sources"):
            check_source(url, media_root=None)
