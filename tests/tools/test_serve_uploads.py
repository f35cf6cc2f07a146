"""Uploads of `tempo serve` (POST /v1/streams/S/upload): streamed into --media-root under a name the
server makes, sniffed with PyAV before they count, capped by --max-upload, then ingested; a partial or
refused upload leaves no file. Also `--access-log` (one redacted line per request) and clips past the
render bound (429)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from .conftest import ServeProcess

MAX_UPLOAD = 400_000  # bytes


@pytest.fixture(scope="module")
def upload_video(tmp_path_factory) -> bytes:
    from tempo.streaming.synthetic import write_test_video

    path = write_test_video(tmp_path_factory.mktemp("upload") / "clip.mp4", duration=8.0, fps=15, size=(160, 96))
    data = path.read_bytes()
    assert len(data) < MAX_UPLOAD
    return data


@pytest.fixture(scope="module")
def upload_server(serve_memory) -> Iterator[ServeProcess]:
    server = ServeProcess(
        serve_memory, "--media-root", str(serve_memory.root / "media"), "--max-upload", str(MAX_UPLOAD), "--access-log"
    )
    yield server
    server.stop()


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_an_upload_is_stored_under_a_generated_name_and_ingested(upload_server, serve_memory, upload_video):
    media = serve_memory.root / "media"
    before = files_under(media)
    got = httpx2.post(f"{upload_server.base}/v1/streams/upl/upload?filename=../../evil.sh", content=upload_video,
                      headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert got.status_code == 202, got.text
    job = got.json()
    name = job["upload"]["file"]
    assert job["upload"]["bytes"] == len(upload_video) and job["stream"] == "upl"
    assert name.startswith("uploads/upl-") and name.endswith(".mp4") and "evil" not in name
    assert files_under(media) - before == {name}  # nothing else: no partial left behind
    assert (media / name).read_bytes() == upload_video
    for _ in range(600):
        state = httpx2.get(f"{upload_server.base}/v1/jobs/{job['id']}").json()
        if state["state"] not in ("running", "retrying"):
            break
        __import__("time").sleep(0.2)
    assert state["state"] == "done", state
    assert httpx2.get(f"{upload_server.base}/v1/streams/upl").json()["segments"] == 2  # 8 s of 4 s segments


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"#!/bin/sh\necho not a video\n" * 40, 422, "the upload is not a video this server can ingest"),
        (b"", 422, "the upload is empty"),
    ],
)
def test_what_is_not_a_video_is_refused_and_leaves_no_file(upload_server, serve_memory, body, status, detail):
    media = serve_memory.root / "media"
    before = files_under(media)
    got = httpx2.post(f"{upload_server.base}/v1/streams/bad/upload", content=body)
    assert got.status_code == status and got.json()["detail"].startswith(detail), got.text
    assert str(media) not in got.text  # the server's paths are not shown
    assert files_under(media) == before
    assert httpx2.get(f"{upload_server.base}/v1/streams/bad").status_code == 404


def test_a_partial_upload_cannot_be_named_as_a_source(upload_server, serve_memory, upload_video):
    """Even a client that knows a partial's name (they are random) cannot ingest an upload still arriving."""
    partial = serve_memory.root / "media" / ".tempo-partial" / "0123456789abcdef01234567.part"
    partial.parent.mkdir(exist_ok=True)
    partial.write_bytes(upload_video)
    try:
        got = httpx2.post(f"{upload_server.base}/v1/streams/sneak/ingest", json={"source": str(partial.relative_to(
            serve_memory.root / "media"))})  # fmt: skip
    finally:
        partial.unlink()
    assert got.status_code == 422 and "an upload still arriving" in got.json()["detail"], got.text


def test_an_upload_over_max_upload_is_413_by_header_and_as_it_streams(upload_server, serve_memory):
    media = serve_memory.root / "media"
    before = files_under(media)
    big = b"\0" * (MAX_UPLOAD + 1)
    got = httpx2.post(f"{upload_server.base}/v1/streams/big/upload", content=big)
    assert got.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(8):
            yield b"\0" * (MAX_UPLOAD // 4)

    got = httpx2.post(f"{upload_server.base}/v1/streams/big/upload", content=chunks())
    assert got.status_code == 413, got.text
    assert files_under(media) == before


def test_a_server_without_media_root_takes_no_uploads(serve_server, serve_memory, upload_video):
    server = ServeProcess(serve_memory)
    try:
        got = httpx2.post(f"{server.base}/v1/streams/x/upload", content=upload_video)
    finally:
        server.stop()
    assert got.status_code == 409 and "--media-root" in got.json()["detail"]


def test_the_access_log_has_one_line_per_request_with_secrets_redacted(upload_server):
    httpx2.get(f"{upload_server.base}/v1/streams?token=hunter2-secret&x=1", headers={"Authorization": "Bearer abc"})
    httpx2.get(f"{upload_server.base}/v1/streams/nosuch%0Aforged")  # a newline in the path
    upload_server.proc.terminate()
    upload_server.proc.wait(timeout=30)
    log = upload_server.stop()
    lines = [line for line in log.splitlines() if '"GET /v1/streams' in line]
    assert any('"GET /v1/streams?token=***&x=1" 200 ' in line for line in lines), log
    assert "hunter2" not in log and "Bearer" not in log
    assert any('"GET /v1/streams/nosuch\\nforged" 404 ' in line for line in lines), log  # one line, escaped
