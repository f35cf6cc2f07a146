"""Hostile inputs on the HTTP surfaces of `tempo serve` (issue 26): ingest URLs toward private networks,
control characters, chunked bodies over --max-body, slow headers (slowloris), Redis outages, the
console's cookie, the Host check, booleans given as numbers, and secrets in rule listings.

The app runs in process (httpx over ASGI) on the shared test memory; nothing leaves the machine: private
destinations are literal addresses or `localhost`, refused before any connection.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator
from urllib.parse import quote

import anyio
import httpx
import pytest
from tempo.memory.embedded import spawn_redis_server
from tempo.streaming.errors import UnreachableSourceError
from tempo.streaming.sources import _network_options, resolve_source
from tempo.tools.server_sources import SourceNotAllowedError, check_source, job_error

TOKEN = "a+b/c=d-serve-token-0123456789=="  # base64's + / = : the console's cookie percent-encodes them


def _app(live_memory, **settings):
    from tempo.tools.server import ServeSettings, create_app

    return create_app(live_memory.service(), ServeSettings(warm=False, resume_jobs=False, **settings))


def call(app, method: str, path: str, **kwargs) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as c:
            return await c.request(method, path, **kwargs)

    return anyio.run(go)


def detail(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    text = response.json()["detail"]
    assert "\n" not in text and "Traceback" not in text
    return text


# ----- ingest sources ------------------------------------------------------------------------------

PRIVATE_SOURCES = [
    f"{scheme}://{host}:{port}/x"
    for scheme, port in (("rtsp", 554), ("rtsps", 322), ("rtmp", 1935), ("tcp", 9000), ("srt", 9000),
                         ("udp", 5000), ("http", 80), ("https", 443))
    for host in ("127.0.0.1", "localhost", "10.1.2.3", "[::1]", "192.168.0.9", "0")
]


@pytest.mark.parametrize("source", PRIVATE_SOURCES)
def test_private_sources_of_every_scheme_are_refused_under_deny_private_networks(source: str) -> None:
    with pytest.raises(SourceNotAllowedError, match="--deny-private-networks"):
        check_source(source, media_root=None, deny_private_networks=True)
    assert check_source(source, media_root=None) == source  # allowed without the flag: LAN cameras


@pytest.mark.parametrize("source", ["http://169.254.169.254/latest", "rtsp://metadata.google.internal/x",
                                    "http://[::ffff:169.254.169.254]/", "tcp://2852039166:80"])
def test_cloud_metadata_sources_are_always_refused(source: str) -> None:
    with pytest.raises(SourceNotAllowedError, match="metadata"):
        check_source(source, media_root=None)


@pytest.mark.parametrize("source", ["walk.mp4\x00.txt", "rtsp://cam/x\x00", "walk\n.mp4", "http://h/\r\nX: y"])
def test_control_characters_in_a_source_are_refused(source: str, tmp_path) -> None:
    with pytest.raises(SourceNotAllowedError, match="control character"):
        check_source(source, media_root=tmp_path)


def test_reading_failures_of_network_jobs_are_one_neutral_sentence() -> None:
    from tempo.streaming.errors import NotMediaError

    source = "rtsp://admin:pw@10.0.0.7:554/live"
    for reason in ("connection refused", "timed out", "end of file"):
        message = job_error(UnreachableSourceError(source, reason, 10.0), source)
        assert message == "could not read the source 'rtsp://admin:***@10.0.0.7:554/live'"
    assert job_error(NotMediaError(source, "invalid data"), source) == message
    assert "pw" not in job_error(SourceNotAllowedError(f"nope {source}"), source)


def test_under_the_policy_ffmpeg_follows_no_redirect_and_the_host_is_checked_again(monkeypatch) -> None:
    public = resolve_source("https://93.184.215.14/live.m3u8")  # a literal: nothing is resolved
    assert "max_redirects" not in _network_options(public, 10.0)
    monkeypatch.setenv("TEMPO_DENY_PRIVATE_NETWORKS", "1")
    assert _network_options(public, 10.0)["max_redirects"] == "0"
    with pytest.raises(UnreachableSourceError, match="private networks are denied"):
        _network_options(resolve_source("rtmp://localhost/app/key"), 10.0)


def test_over_the_api_a_nul_byte_or_a_private_camera_is_a_422(live_memory) -> None:
    app = _app(live_memory, deny_private_networks=True)
    for source in ("walk.mp4\x00", "rtsp://127.0.0.1:8554/cam", "udp://10.0.0.1:5000"):
        got = call(app, "POST", "/v1/streams/hostile/ingest", json={"source": source})
        assert got.status_code == 422, got.text
        detail(got)


# ----- rules over the API ----------------------------------------------------------------------------


def test_rule_webhooks_over_the_api_are_checked_and_shown_redacted(live_memory) -> None:
    app = _app(live_memory)
    base = {"stream": "cam", "text": "a red truck", "enter": 0.9}
    got = call(app, "POST", "/v1/rules", json={**base, "webhook": "http://169.254.169.254/latest/meta-data"})
    assert got.status_code == 422 and "metadata" in detail(got)
    got = call(app, "POST", "/v1/rules", json={**base, "enter": True})
    assert got.status_code == 422 and "enter" in detail(got)
    got = call(app, "POST", "/v1/rules", json={**base, "exit": False, "enter": 0.5})
    assert got.status_code == 422
    denying = _app(live_memory, deny_private_networks=True)
    got = call(denying, "POST", "/v1/rules", json={**base, "webhook": "http://192.168.1.10/hook"})
    assert got.status_code == 422 and "private networks are denied" in detail(got)

    secret_url = "https://hooks.example.com/services/T0/B0?token=sekrit-value&sig=abcdef"
    added = call(app, "POST", "/v1/rules", json={**base, "webhook": secret_url})
    assert added.status_code == 201, added.text
    rule_id = added.json()["id"]
    try:
        for response in (added, call(app, "GET", "/v1/rules"), call(app, "GET", f"/v1/rules/{rule_id}")):
            assert "sekrit-value" not in response.text and "abcdef" not in response.text
            assert "token=***" in response.text
    finally:
        assert call(app, "DELETE", f"/v1/rules/{rule_id}").status_code == 204


# ----- bodies, headers, cookies ------------------------------------------------------------------------


async def _chunks(total: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * 4096
        sent += 4096


@pytest.mark.parametrize("path", ["/v1/streams/cam/ask", "/mcp", "/v1/rules"])
def test_a_chunked_body_over_max_body_is_a_413(live_memory, path: str) -> None:
    app = _app(live_memory, max_body_bytes=10_000)
    got = call(app, "POST", path, content=_chunks(50_000),
               headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
    assert got.status_code == 413
    assert detail(got) == "the request body is larger than 10000 bytes"


def test_a_chunked_body_within_max_body_reaches_the_route(live_memory) -> None:
    app = _app(live_memory, max_body_bytes=10_000)

    async def body() -> AsyncIterator[bytes]:
        yield b'{"question": '
        yield b'"Where is the square?", "top_k": true}'

    got = call(app, "POST", "/v1/streams/cam/ask", content=body(), headers={"Content-Type": "application/json"})
    assert got.status_code == 422 and "top_k" in detail(got)  # parsed whole; a boolean is not a count


def test_the_host_check_reads_brackets_strictly(live_memory) -> None:
    app = _app(live_memory)
    for host in ("[::1]evil.com", "[::1]:80evil", "[::1].evil.com"):
        assert call(app, "GET", "/v1/streams", headers={"Host": host}).status_code == 421
    assert call(app, "GET", "/v1/streams", headers={"Host": "[::1]:8000"}).status_code == 200


def test_the_consoles_percent_encoded_cookie_is_accepted(live_memory) -> None:
    app = _app(live_memory, token=TOKEN)
    cookie = {"Cookie": f"tempo_token={quote(TOKEN, safe='')}"}
    assert call(app, "GET", "/v1/streams", headers=cookie).status_code == 200
    assert call(app, "GET", "/v1/streams", headers={"Cookie": "tempo_token=wrong-token-0123456789"}).status_code == 401


# ----- slow clients ------------------------------------------------------------------------------------


def test_partial_headers_are_cut_off_at_the_header_deadline() -> None:
    """Slowloris: a client sending a header byte every 0.3 s is disconnected at the deadline (0.8 s
    here) although it never stops sending; a normal request on the same server is answered."""
    import uvicorn
    from tempo.tools.http_run import HeaderDeadlineProtocol

    class Quick(HeaderDeadlineProtocol):
        header_timeout = 0.8

    async def app(scope, receive, send):
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, http=Quick, log_level="error",
                                           lifespan="off"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    port = sock.getsockname()[1]
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "ok"
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started, closed_after = time.monotonic(), None
        for _ in range(40):  # 12 s of trickling if never cut off
            time.sleep(0.3)
            try:
                slow.sendall(b"X")
            except OSError:
                closed_after = time.monotonic() - started
                break
        assert closed_after is not None and closed_after < 5.0
        slow.close()
    finally:
        server.should_exit = True
        thread.join(10)


# ----- a Redis outage ----------------------------------------------------------------------------------


def test_routes_answer_503_not_500_while_redis_is_down(live_memory, tmp_path) -> None:
    from tempo.service import TempoService
    from tempo.tools.server import ServeSettings, create_app

    (tmp_path / "redis").mkdir()
    proc, url = spawn_redis_server(tmp_path / "redis")
    service = TempoService(model=str(live_memory.model_dir), redis_url=url, home=tmp_path / "home")
    app = create_app(service, ServeSettings(warm=False, resume_jobs=False, media_root=tmp_path))
    (tmp_path / "clip.mp4").write_bytes(b"")
    assert call(app, "GET", "/v1/streams").status_code == 200
    proc.terminate()
    proc.wait(timeout=10)
    for method, path, body in (("GET", "/v1/streams", None), ("GET", "/v1/jobs", None), ("GET", "/v1/threads", None),
                               ("POST", "/v1/streams/cam2/ingest", {"source": "clip.mp4"})):
        got = call(app, method, path, json=body)
        assert got.status_code == 503, (path, got.status_code, got.text)
        assert "Redis" in detail(got)


def test_tiny_model_into_an_unwritable_place_is_one_sentence(capsys) -> None:
    from tempo.tools.cli import main

    assert main(["model", "tiny", "/proc/nope/tiny"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "tempo: error: cannot write a checkpoint to '/proc/nope/tiny': No such file or directory"


# ----- redaction ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, secret",
    [
        ("srt://cam:9000?passphrase=hunter2-hunter2", "hunter2"),
        ("https://h/x?access-token=abc123", "abc123"),
        ("https://h/x?X-Api-Key=abc123", "abc123"),
        ("https://h/x?session=abc123&page=2", "abc123"),
        ("https://h/hook#token=abc123", "abc123"),
        ("https://h/hook#abc123", "abc123"),
        ("rtmp://live.example.com/app/abc123-stream-key", "abc123"),
        ("rtmps://live.example.com:443/live2/abc123", "abc123"),
    ],
)
def test_redaction_covers_the_other_spellings_of_a_secret(url: str, secret: str) -> None:
    from tempo.errors import redact_secrets, redact_url

    assert secret not in redact_url(url)
    assert secret not in redact_secrets(f"could not connect to {url} (refused)")
    assert redact_url("https://h/x?page=2") == "https://h/x?page=2"  # nothing secret: unchanged


def test_rules_on_the_command_line_never_show_the_webhooks_secrets(tempo_main) -> None:
    url = "https://user:pa55word@hooks.example.com/x?token=sekrit-value"
    code, out, err = tempo_main("rules", "add", "cam", "a blue car", "--webhook", url, "--json")
    assert code == 0, err
    import json

    rule_id = json.loads(out)["id"]
    try:
        code, listed, _ = tempo_main("rules", "list")
        assert code == 0 and "hooks.example.com" in listed
        for text in (out, listed):
            assert "pa55word" not in text and "sekrit-value" not in text
    finally:
        code, removed, _ = tempo_main("rules", "remove", rule_id)
        assert code == 0 and "sekrit-value" not in removed and "pa55word" not in removed
