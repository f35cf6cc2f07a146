"""The remote answerer against a real `transformers serve` (issue 23), loopback only.

One `transformers serve` process per module, from the serving venv that `make serve-venv` builds
(`make test` does): the project's torch and transformers plus the rest of transformers' `serving`
extra, pinned in requirements-serve.txt. It serves the tiny Qwen3-VL from a local directory the
supported way: the directory is the command's model argument (transformers' `parse_model_id` takes an
existing path as it is), which pins the server to it, so requests name that same path as their
`model` (`--answer-model DIR`); any other name is refused with HTTP 400. Offline: HF_HUB_OFFLINE and
HF_HUB_DISABLE_UPDATE_CHECK (its CLI otherwise asks PyPI for a newer transformers once a day).

A recording pass-through proxy sits between `tempo ask` and the server, to read the request on the
wire; the answer is the server's own."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from PIL import Image
from tempo.errors import UnavailableError
from tempo.models.qwen3vl_family import IMAGE_TOKENS_UNIT, Qwen3VLFamily
from tempo.models.qwen3vl_tiny import write_tiny_qwen3vl
from tempo.models.remote_answer import RemoteAnswerer
from tempo.models.renditions import ImagePricing, render_clip, rendition_cost, rendition_ladder
from tempo.streaming.synthetic import write_test_video
from tempo.tools.cli import main
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

from .conftest import make_segment

SERVE_VENV = Path(__file__).resolve().parents[2] / ".venv-serve"
STARTUP_S = 240.0


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_qwen3vl(tmp_path_factory.mktemp("served") / "qwen3vl", seed=0, embedder=False)


@pytest.fixture(scope="module")
def server(qwen_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`transformers serve DIR --host 127.0.0.1 --port 0`, ready (its model loaded): its …/v1 URL."""
    exe = SERVE_VENV / "bin" / "transformers"
    if not exe.exists():
        pytest.fail(f"{exe} is missing: build the serving venv with `make serve-venv` (`make test` does)")
    logs = tmp_path_factory.mktemp("serve")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1", "HF_HOME": str(logs / "hf")}
    log = logs / "serve.log"
    cmd = [str(exe), "serve", str(qwen_dir), "--host", "127.0.0.1", "--port", "0", "--device", "cpu"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        yield _wait_ready(proc, log, str(qwen_dir))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the model's process it spawned
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_ready(proc: subprocess.Popen, log: Path, model: str) -> str:
    """The server's URL once uvicorn has bound its port (read from its log) and /v1/models lists `model` loaded."""
    deadline = time.monotonic() + STARTUP_S
    url = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"transformers serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
        if found and url is None:
            url = f"http://127.0.0.1:{found.group(1)}/v1"
        if url is not None:
            try:
                listed = httpx.get(f"{url}/models", timeout=5).json()["data"]
                if any(m["id"] == model and m["status"]["value"] == "loaded" for m in listed):
                    return url
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    pytest.fail(f"transformers serve was not ready within {STARTUP_S:g} s:\n{log.read_text()[-4000:]}")


class _Recorder(BaseHTTPRequestHandler):
    """Pass-through to `upstream`: records each request body and the server-sent lines it relays."""

    upstream: ClassVar[str] = ""
    bodies: ClassVar[list[dict]] = []
    events: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).bodies.append(json.loads(raw))
        url = type(self).upstream + self.path.removeprefix("/v1")
        with httpx.stream("POST", url, content=raw, headers={"Content-Type": "application/json"}, timeout=120) as r:
            self.send_response(r.status_code)
            self.send_header("Content-Type", r.headers.get("content-type", "application/json"))
            self.end_headers()
            for line in r.iter_lines():
                type(self).events.append(line)
                self.wfile.write(f"{line}\n".encode())
                self.wfile.flush()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def proxy(server: str) -> Iterator[str]:
    _Recorder.upstream = server
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def _ask(video: Path, qwen_dir: Path, url: str, model: str, *extra: str) -> int:
    return main(["ask", str(video), "What happens in the video?", "--model", str(qwen_dir), "--answer-url", url,
                 "--answer-model", model, "--budget", "40", "--max-new-tokens", "8", *extra])  # fmt: skip


def _streamed_text(events: list[str]) -> str:
    pieces = [json.loads(e[5:])["choices"][0]["delta"].get("content") or "" for e in events
              if e.startswith("data:") and e[5:].strip() not in ("", "[DONE]")]  # fmt: skip
    return "".join(pieces)


def _image_size(part: dict) -> tuple[int, int]:
    b64 = part["image_url"]["url"].split(",", 1)[1]
    return Image.open(io.BytesIO(base64.b64decode(b64))).size[::-1]  # (H, W)


def test_ask_answers_through_transformers_serve(qwen_dir: Path, proxy: str, tmp_path: Path, capsys) -> None:
    video = write_test_video(tmp_path / "v.mp4", duration=9.0, fps=10.0, size=(160, 96))
    _Recorder.bodies.clear()
    _Recorder.events.clear()
    assert _ask(video, qwen_dir, proxy, str(qwen_dir), "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["family"] == "qwen3-vl" and out["answer"]
    assert out["answer"] == _streamed_text(_Recorder.events).strip()  # the server's streamed text, whole
    assert sum(e.startswith("data:") for e in _Recorder.events) >= 3  # a role event, text, a finish event
    parts = _Recorder.bodies[-1]["messages"][1]["content"]
    images = [p for p in parts if p["type"] == "image_url"]
    assert len(images) == sum(s["rendition"]["frames"] for s in out["segments"])
    tags = [float(t) for p in parts[:-1] if p["type"] == "text" for t in re.findall(r"<(\d+\.\d) seconds>", p["text"])]
    assert len(tags) == sum(-(-s["rendition"]["frames"] // 2) for s in out["segments"])  # one per temporal patch
    spans = [(s["start"], s["end"]) for s in sorted(out["segments"], key=lambda s: s["start"]) for _ in
             range(-(-s["rendition"]["frames"] // 2))]  # fmt: skip
    assert all(lo - 0.05 <= t <= hi + 0.05 for t, (lo, hi) in zip(tags, spans, strict=True))  # stream times
    assert parts[-1] == {"type": "text", "text": "What happens in the video?"}


def _visual_tokens(server: str, body: dict) -> int:
    """The server's prompt tokens for the images of `body`: its prompt count less that of the same
    request with only the text parts."""
    body = {**body, "stream": False, "max_tokens": 1}
    text_only = {**body, "messages": [body["messages"][0], {"role": "user", "content": [
        p for p in body["messages"][1]["content"] if p["type"] == "text"]}]}  # fmt: skip
    counts = [httpx.post(f"{server}/chat/completions", json=b, timeout=120).json()["usage"]["prompt_tokens"]
              for b in (body, text_only)]  # fmt: skip
    return counts[0] - counts[1]


@pytest.mark.parametrize("budget", [20, 45, 100])
def test_the_servers_visual_tokens_stay_within_the_budget(
    qwen_dir: Path, proxy: str, server: str, tmp_path: Path, capsys, budget: int
) -> None:
    """ATA priced in what the server counts: its prompt tokens for the frames equal `tokens` of --json
    (the image unit) and never exceed --budget, a budget small enough to force fewer and smaller frames."""
    video = write_test_video(tmp_path / "v.mp4", duration=12.0, fps=10.0, size=(160, 96))
    _Recorder.bodies.clear()
    assert _ask(video, qwen_dir, proxy, str(qwen_dir), "--json", "--budget", str(budget)) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tokens_unit"] == IMAGE_TOKENS_UNIT
    kept = [s for s in out["segments"] if s["rendition"] is not None]
    pricing = ImagePricing.from_dir(qwen_dir)
    assert rendition_cost(8, 384, 384, images=pricing) > budget  # one segment in full would not fit
    for s in kept:  # each kept segment's tokens are its rendition's price
        r = s["rendition"]
        assert s["tokens"] == rendition_cost(r["frames"], r["height"], r["width"], images=pricing)
    body = _Recorder.bodies[-1]
    images = [_image_size(p) for p in body["messages"][1]["content"] if p["type"] == "image_url"]
    assert images == [(s["rendition"]["height"], s["rendition"]["width"]) for s in sorted(kept, key=lambda s: s[
        "start"]) for _ in range(s["rendition"]["frames"])]  # fmt: skip
    seen = _visual_tokens(server, body)
    assert seen == out["tokens"] == sum(s["tokens"] for s in kept) <= budget
    assert seen > 0 and len(kept) >= 1


def _clips(fam: Qwen3VLFamily) -> list:
    """Two kept segments: the smallest rendition of one (below the server's minimum image size) and the
    full rendition of the other, each frame with its stream time."""
    clips = []
    for i, pick in ((0, 0), (1, -1)):
        seg = make_segment(i, frames=4)
        frames = fam.processor.compressor_frames(seg.frames)
        clips.append(render_clip(i, frames, seg.timestamps, rendition_ladder(*frames.shape[:3])[pick]))
    return clips


def test_the_server_reads_every_frame_as_an_image(qwen_dir: Path, server: str) -> None:
    """The server's prompt count grows by each frame's image tokens: the frames reached the model as images
    (`<|vision_start|>`, the processor's (H'/32)(W'/32) pads at its own resize, `<|vision_end|>`)."""
    clips = _clips(Qwen3VLFamily.load(qwen_dir))
    body = RemoteAnswerer(server, str(qwen_dir)).request("Q?", clips, max_new_tokens=1)
    size = json.loads((qwen_dir / "preprocessor_config.json").read_text())["size"]
    expected = 0
    for part in body["messages"][1]["content"]:
        if part["type"] == "image_url":
            h, w = smart_resize(*_image_size(part), factor=32, min_pixels=size["shortest_edge"],
                                max_pixels=size["longest_edge"])  # fmt: skip
            expected += (h // 32) * (w // 32) + 2
    predicted = sum(rendition_cost(c.rendition.frames, c.rendition.height, c.rendition.width,
                                   images=ImagePricing.from_dir(qwen_dir)) for c in clips)  # fmt: skip
    assert _visual_tokens(server, body) == expected == predicted > 0


def test_the_python_api_streams_the_servers_answer(qwen_dir: Path, server: str) -> None:
    pieces: list[str] = []
    clips = _clips(Qwen3VLFamily.load(qwen_dir))
    answer = RemoteAnswerer(server, str(qwen_dir)).answer_clips("Q?", clips, max_new_tokens=12, on_text=pieces.append)
    assert answer and "".join(pieces) == answer and len(pieces) >= 2  # piece by piece, as the server sent them


def test_server_errors_are_one_sentence(qwen_dir: Path, server: str, tmp_path: Path, capsys) -> None:
    # The server refuses a model it does not serve (HTTP 400, FastAPI's {"detail": ...}).
    video = write_test_video(tmp_path / "v.mp4", duration=3.0, fps=10.0, size=(64, 64))
    assert _ask(video, qwen_dir, server, "not-served") != 0
    err = capsys.readouterr().err  # progress bars (loading the local router), then the one error line
    assert "Traceback" not in err and err.strip().splitlines()[-1] == (
        f"tempo: error: the answer server at {server} refused the request: HTTP 400, "
        f"Server is pinned to '{qwen_dir}'; requested 'not-served'."
    )
    # An error after the stream began (`data: {"error": ...}`) is one sentence too, not an empty answer.
    with pytest.raises(UnavailableError, match=r"failed while answering: `max_new_tokens` must be greater than 0"):
        RemoteAnswerer(server, str(qwen_dir)).answer_clips("Q?", [], max_new_tokens=0)
    # Nothing listening.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    assert _ask(video, qwen_dir, dead, str(qwen_dir)) != 0
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err and last == f"tempo: error: cannot reach the answer server at {dead} (ConnectError)"
