"""Typed errors with one sentence each, and `tempo segments` as a user sees it."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tempo.errors import TempoError
from tempo.streaming import (
    NotMediaError,
    NoVideoStreamError,
    SamplingConfig,
    SourceNotFoundError,
    UnreachableSourceError,
    UnsupportedSchemeError,
    iter_segments,
    probe_source,
)
from tempo.tools.cli import main as cli_main


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def silent_server() -> Iterator[int]:
    """Accepts TCP connections and never sends a byte."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def assert_one_sentence(error: TempoError) -> None:
    text = str(error)
    assert "\n" not in text and text.endswith(".") and len(text) < 240


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError) as caught:
        iter_segments(str(tmp_path / "nowhere.mp4"))
    assert "does not exist" in str(caught.value)
    assert_one_sentence(caught.value)


def test_not_a_media_file(not_media: Path) -> None:
    with pytest.raises(NotMediaError) as caught:
        iter_segments(str(not_media))
    assert "not a media file" in str(caught.value)
    assert_one_sentence(caught.value)


def test_audio_only_file_has_no_video_stream(audio_only: Path) -> None:
    with pytest.raises(NoVideoStreamError) as caught:
        probe_source(str(audio_only))
    assert "no video stream" in str(caught.value)
    assert_one_sentence(caught.value)


def test_unsupported_url_scheme() -> None:
    with pytest.raises(UnsupportedSchemeError) as caught:
        iter_segments("gopher://example.org/video")
    assert "'gopher'" in str(caught.value)
    assert_one_sentence(caught.value)


def test_refused_connection_is_unreachable_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(UnreachableSourceError) as caught:
        iter_segments(f"tcp://127.0.0.1:{closed_port()}")
    assert time.monotonic() - started < 3.0
    assert_one_sentence(caught.value)


def test_silent_server_is_unreachable_within_the_connect_timeout(silent_server: int) -> None:
    config = SamplingConfig(connect_timeout=1.0, read_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(UnreachableSourceError) as caught:
        iter_segments(f"tcp://127.0.0.1:{silent_server}", config=config)
    assert time.monotonic() - started < 6.0  # bounded, not FFmpeg's default of waiting forever
    assert "timed out" in str(caught.value)
    assert_one_sentence(caught.value)


def test_all_errors_are_tempo_errors() -> None:
    for error_type in (SourceNotFoundError, NotMediaError, NoVideoStreamError, UnsupportedSchemeError,
                       UnreachableSourceError):
        assert issubclass(error_type, TempoError)


@pytest.mark.parametrize(
    "fixture_or_source",
    ["missing", "not_media", "audio_only", "gopher://example.org/x", "refused"],
)
def test_cli_prints_one_line_and_exits_non_zero_without_traceback(
    fixture_or_source: str, request: pytest.FixtureRequest, tmp_path: Path, capsys
) -> None:
    if fixture_or_source == "missing":
        source = str(tmp_path / "missing.mp4")
    elif fixture_or_source == "refused":
        source = f"tcp://127.0.0.1:{closed_port()}"
    elif "://" in fixture_or_source:
        source = fixture_or_source
    else:
        source = str(request.getfixturevalue(fixture_or_source))
    code = cli_main(["segments", source])
    captured = capsys.readouterr()
    assert code != 0
    assert captured.err.startswith("tempo: error: ")
    assert captured.err.count("\n") == 1
    assert "Traceback" not in captured.err and captured.out == ""


def test_cli_rejects_a_bad_flag_value_in_one_line(h264_mp4: Path, capsys) -> None:
    code = cli_main(["segments", str(h264_mp4), "--fps", "0"])
    assert code != 0
    assert capsys.readouterr().err.count("\n") == 1


def test_cli_json_lists_segments_that_tile_the_timeline(h264_mp4: Path, capsys) -> None:
    code = cli_main(["segments", str(h264_mp4), "--json", "--max-edge", "64"])
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert document["source"]["codec"] == "h264" and document["source"]["width"] == 192
    segments = document["segments"]
    assert [s["index"] for s in segments] == [0, 1, 2]
    first = segments[0]
    assert (first["index"], first["start"], first["end"], first["frames"]) == (0, 0.0, 4.0, 8)
    # Each timestamp is the real time of a frame within the tolerance of its 2 fps slot.
    assert all(abs(t - k / 2) <= 0.25 for k, t in enumerate(first["timestamps"]))
    for current, following in itertools.pairwise(segments):
        assert current["end"] == following["start"]
        assert current["frames"] == len(current["timestamps"])


def test_cli_table_has_one_row_per_segment(h264_mp4: Path, capsys) -> None:
    code = cli_main(["segments", str(h264_mp4), "--fps", "1", "--window", "4"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1].split() == ["index", "start", "end", "frames"]
    rows = [line.split() for line in lines[2:]]
    expected = iter_segments(str(h264_mp4), config=SamplingConfig(fps=1.0, window=4))
    assert rows == [[str(s.index), f"{s.start:.3f}", f"{s.end:.3f}", str(s.num_frames)] for s in expected]
    assert [row[0] for row in rows] == ["0", "1", "2"]


def test_cli_reads_standard_input(mpegts: Path) -> None:
    with mpegts.open("rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-m", "tempo.tools.cli", "segments", "-", "--json", "--max-edge", "64"],
            stdin=stdin, capture_output=True, text=True, timeout=60,
        )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["source"]["kind"] == "stdin"
    assert sum(s["frames"] for s in document["segments"]) == 20
    assert document["segments"][0]["start"] == 0.0
