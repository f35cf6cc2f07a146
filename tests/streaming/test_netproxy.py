"""The guard proxy (tempo.streaming.netproxy): every HTTP(S) connection FFmpeg makes for an http(s)
source — the playlist's segments and variants on whatever host they name — is checked against the
network policy and made to the checked address. Real FFmpeg (PyAV), a real HLS playlist on loopback."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tempo.streaming import SamplingConfig, iter_segments
from tempo.streaming.errors import UnreachableSourceError
from tempo.streaming.netproxy import GuardProxy
from tempo.streaming.synthetic import write_test_video


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def www(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server over a folder with an HLS VOD playlist of 1-s segments."""
    root = tmp_path_factory.mktemp("www")
    write_test_video(root / "index.m3u8", duration=3.0, fps=10.0, keyint=10,
                     muxer_options={"hls_time": "1", "hls_list_size": "0", "hls_playlist_type": "vod"})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()


def _rewrite_playlist(root: Path, name: str, segment_host: str) -> None:
    """A copy of the playlist whose segments are absolute URLs on `segment_host`."""
    lines = (root / "index.m3u8").read_text().splitlines()
    (root / name).write_text("\n".join(
        f"http://{segment_host}/{line}" if line.endswith(".ts") else line for line in lines
    ) + "\n")


def test_a_playlist_naming_segments_on_the_metadata_address_is_refused_before_any_connection(www) -> None:
    base, root = www
    _rewrite_playlist(root, "evil.m3u8", "169.254.169.254")
    with pytest.raises(UnreachableSourceError) as exc:
        list(iter_segments(f"{base}/evil.m3u8", config=SamplingConfig(max_edge=64, window=2)))
    message = str(exc.value)
    assert "refused" in message and "a cloud metadata address" in message
    assert "\n" not in message and "403" not in message


def test_segments_on_an_allowed_host_still_play_through_the_proxy(www) -> None:
    base, root = www
    _rewrite_playlist(root, "absolute.m3u8", base.removeprefix("http://"))
    segments = list(iter_segments(f"{base}/absolute.m3u8", config=SamplingConfig(max_edge=64, window=2)))
    times = [t for s in segments for t in s.timestamps]
    assert len(times) == 6  # 2 frames a second for 3 s: every segment of the playlist was fetched
    assert times[-1] == pytest.approx(2.5, abs=0.15)


def test_the_strict_policy_will_not_run_beside_no_proxy(monkeypatch) -> None:
    """FFmpeg reaches hosts in no_proxy directly, around the proxy: with the strict policy on, that is
    refused in one sentence before anything is opened."""
    monkeypatch.setenv("TEMPO_DENY_PRIVATE_NETWORKS", "1")
    monkeypatch.setenv("no_proxy", "cdn.example.com")
    with pytest.raises(UnreachableSourceError, match="no_proxy environment variable"):
        list(iter_segments("http://cdn.example.com/live.m3u8", config=SamplingConfig(max_edge=64, window=2)))


def _raw(proxy: GuardProxy, request: bytes) -> bytes:
    with socket.create_connection(proxy.server_address, timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture(scope="module")
def strict() -> Iterator[GuardProxy]:
    proxy = GuardProxy(deny_private=True)
    yield proxy
    proxy.shutdown()
    proxy.server_close()


def test_the_strict_proxy_refuses_loopback_and_says_why(strict: GuardProxy, www) -> None:
    base, _root = www
    answer = _raw(strict, f"GET {base}/index.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert b"loopback" in answer or b"private" in answer
    assert strict.refused_since(0.0)


def test_connect_to_the_metadata_address_is_refused(strict: GuardProxy) -> None:
    answer = _raw(strict, b"CONNECT 169.254.169.254:443 HTTP/1.1\r\nHost: 169.254.169.254:443\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403 ") and b"metadata" in answer


def test_connect_relays_bytes_both_ways_to_an_allowed_host() -> None:
    """The tunnel https uses: after 200, bytes go through unchanged in both directions."""
    echo = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = echo.accept()
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data.upper())

    threading.Thread(target=serve, daemon=True).start()
    proxy = GuardProxy(deny_private=False)  # loopback allowed; metadata addresses never are
    try:
        with socket.create_connection(proxy.server_address, timeout=10) as sock:
            port = echo.getsockname()[1]
            sock.sendall(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            assert sock.recv(1024).startswith(b"HTTP/1.1 200 ")
            sock.sendall(b"hello tunnel")
            assert sock.recv(1024) == b"HELLO TUNNEL"
    finally:
        proxy.shutdown()
        proxy.server_close()
        echo.close()


@pytest.mark.parametrize(
    "request_line", [b"GET /relative HTTP/1.1", b"GET ftp://x/y HTTP/1.1", b"CONNECT nohost HTTP/1.1"]
)
def test_requests_a_proxy_does_not_serve_are_400(strict: GuardProxy, request_line: bytes) -> None:
    assert _raw(strict, request_line + b"\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 400 ")


def test_a_closed_port_behind_the_proxy_still_reads_connection_refused() -> None:
    """Through the proxy FFmpeg only sees "5XX"; the error names what the proxy saw."""
    with pytest.raises(UnreachableSourceError, match=r"\(connection refused; connect timeout"):
        list(iter_segments("http://127.0.0.1:1/live.m3u8", config=SamplingConfig(max_edge=64, window=2)))
