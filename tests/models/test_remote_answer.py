"""The remote answerer (issue 23): the kept frames and time tags of the local answerer, sent to an
OpenAI-compatible chat-completions endpoint, the answer streamed back.

Here the endpoint is a small loopback HTTP server that speaks the protocol: it records each request body
and streams server-sent events, or answers with an OpenAI-style error. test_transformers_serve.py runs
the same answerer against a real `transformers serve` (from `make serve-venv`)."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image
from tempo.errors import InvalidInputError, UnavailableError
from tempo.models.qwen3vl_family import Qwen3VLFamily
from tempo.models.qwen3vl_tiny import write_tiny_qwen3vl
from tempo.models.remote_answer import RemoteAnswerer
from tempo.models.renditions import render_clip, rendition_ladder
from tempo.streaming.synthetic import write_test_video
from tempo.tools.cli import main

from .conftest import make_segment


class _Endpoint(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict]] = []
    fail = False
    error_body: ClassVar[dict] = {"error": {"message": "model 'nope' is not served\nsecond line"}}
    stream_error: str | None = None  # an error event after the first piece, as transformers serve sends

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        if type(self).fail or self.path != "/v1/chat/completions":
            payload = json.dumps(type(self).error_body).encode()
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in [" At", " <4.0 seconds>", " a car."]:
            event = {"choices": [{"index": 0, "delta": {"content": piece}}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
            if type(self).stream_error is not None:
                self.wfile.write(f"data: {json.dumps({'error': type(self).stream_error})}\n\n".encode())
                return
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_qwen3vl(tmp_path_factory.mktemp("qwen") / "q", seed=0, embedder=False)


def _decode(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def test_the_request_carries_the_local_answerers_frames_and_time_tags(qwen_dir: Path, endpoint: str) -> None:
    fam = Qwen3VLFamily.load(qwen_dir, device="cpu")
    clips = []
    for i, frames_n in ((0, 8), (1, 3)):
        seg = make_segment(i, frames=frames_n)
        frames = fam.processor.compressor_frames(seg.frames)
        ladder = rendition_ladder(*frames.shape[:3])
        clips.append(render_clip(i, frames, seg.timestamps, ladder[len(ladder) // 2]))
    local = fam.tokenizer.decode(fam.build_inputs("Q?", clips)["input_ids"][0].tolist(), skip_special_tokens=False)
    body = RemoteAnswerer(endpoint, "m").request("Q?", clips, max_new_tokens=5)
    parts = body["messages"][1]["content"]
    tags = [p["text"] for p in parts if p["type"] == "text"][:-1]
    assert tags == re.findall(r"<\d+\.\d seconds>", local)  # the same time text as the local prompt
    images = [_decode(p["image_url"]["url"]) for p in parts if p["type"] == "image_url"]
    expected = [f for clip in clips for f in clip.frames]
    assert len(images) == len(expected) and all(np.array_equal(a, b) for a, b in zip(images, expected, strict=True))
    assert parts[-1] == {"type": "text", "text": "Q?"} and body["stream"] is True and body["max_tokens"] == 5


def test_ask_answers_on_the_server_streamed_and_cited(qwen_dir: Path, endpoint: str, tmp_path: Path, capsys) -> None:
    video = write_test_video(tmp_path / "v.mp4", duration=9.0, fps=10.0, size=(160, 96))
    _Endpoint.bodies.clear()
    rc = main(
        [
            "ask",
            str(video),
            "What?",
            "--model",
            str(qwen_dir),
            "--answer-url",
            endpoint,
            "--answer-model",
            "m",
            "--json",
            "--budget",
            "40",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["answer"] == "At <4.0 seconds> a car." and out["family"] == "qwen3-vl"
    assert out["citations"]  # the server's stream time lands on the timeline
    sent = _Endpoint.bodies[-1]["messages"][1]["content"]
    assert sum(p["type"] == "image_url" for p in sent) == sum(r["rendition"]["frames"] for r in out["segments"])


def test_server_errors_and_bad_flags_are_one_sentence(qwen_dir: Path, endpoint: str, tmp_path: Path, capsys) -> None:
    _Endpoint.fail = True
    try:
        with pytest.raises(UnavailableError, match=r"refused the request: HTTP 404, model 'nope' is not served second"):
            RemoteAnswerer(endpoint, "nope").answer_clips("Q?", [], max_new_tokens=2)
    finally:
        _Endpoint.fail = False
    with pytest.raises(UnavailableError, match="cannot reach the answer server"):
        RemoteAnswerer("http://127.0.0.1:9/v1", "m", timeout=5).answer_clips("Q?", [], max_new_tokens=2)
    with pytest.raises(InvalidInputError, match="http"):
        RemoteAnswerer("ftp://x", "m")
    video = write_test_video(tmp_path / "v.mp4", duration=3.0, fps=10.0, size=(64, 64))
    rc = main(["ask", str(video), "Q", "--model", str(qwen_dir), "--answer-url", endpoint])
    err = capsys.readouterr().err
    assert rc != 0 and "go together" in err and "Traceback" not in err


def test_error_bodies_and_error_events_are_one_sentence(endpoint: str) -> None:
    """FastAPI's {"detail": [...]} (a 422) and an error event after the stream began (`data: {"error": ...}`,
    transformers serve's way when generation fails) are sentences too, never an empty answer."""
    openai_style = _Endpoint.error_body
    _Endpoint.fail, _Endpoint.error_body = True, {"detail": [{"loc": ["body"], "msg": "Field\nrequired"}]}
    try:
        with pytest.raises(UnavailableError, match=r"refused the request: HTTP 404, Field required$"):
            RemoteAnswerer(endpoint, "m").answer_clips("Q?", [], max_new_tokens=2)
    finally:
        _Endpoint.fail, _Endpoint.error_body = False, openai_style
    _Endpoint.stream_error = "CUDA out of memory.\nTried to allocate 2 GiB"
    pieces: list[str] = []
    try:
        with pytest.raises(
            UnavailableError, match=r"failed while answering: CUDA out of memory. Tried to allocate 2 GiB$"
        ):
            RemoteAnswerer(endpoint, "m").answer_clips("Q?", [], max_new_tokens=2, on_text=pieces.append)
    finally:
        _Endpoint.stream_error = None
    assert pieces == ["At"]  # what had streamed before the error
