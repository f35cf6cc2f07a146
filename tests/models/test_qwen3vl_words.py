"""The open-weights family with the words and across streams (issues 23, 24): subtitle cues beside each
kept clip's frames after its first timestamp, under the `text_tokens` cap counted with the answerer's
tokenizer (local prompt and remote request alike); cross-stream asks with Qwen3-VL timestamps naming the
stream, cited back to stream and time; a set of streams written by both families refused in one sentence.
Real tiny Qwen3-VL and Tempo checkpoints, real Redis and FAISS, real videos with SRT sidecars, and a
loopback server that speaks the chat-completions protocol (as in test_remote_answer.py)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from tempo.engine.multi import CrossStreamRecall
from tempo.engine.text_track import segment_words
from tempo.models.qwen3vl_tiny import write_tiny_qwen3vl
from tempo.models.remote_answer import RemoteAnswerer
from tempo.models.text import time_tag
from tempo.settings import AskSettings
from tempo.streaming.subtitles import Cue
from tempo.streaming.synthetic import write_test_video
from tempo.streaming.synthetic_text import write_srt
from tempo.tools.cli import main

from .conftest import make_segment

ELEPHANT = (5.0, 6.5, "look, a blue elephant")
KITE = (1.0, 2.5, "the red kite flies")
STREAMS = ("words-a", "words-b")


class _Endpoint(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict]] = []
    reply = "At <words-b 2.0 seconds> a kite."

    def do_POST(self) -> None:
        type(self).bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        event = {"choices": [{"index": 0, "delta": {"content": type(self).reply}}]}
        self.wfile.write(f"data: {json.dumps(event)}\n\ndata: [DONE]\n\n".encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_qwen3vl(tmp_path_factory.mktemp("qwen") / "qwen3-vl-tiny", seed=0)


@pytest.fixture(scope="module")
def words_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server for this module's streams (the session one is flushed per test)."""
    from tempo.memory.embedded import spawn_redis_server

    proc, url = spawn_redis_server(tmp_path_factory.mktemp("words-redis"))
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def service(qwen_dir: Path, words_redis: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Two Qwen3-VL streams, each a video with an SRT sidecar beside it (picked up by ingest)."""
    from tempo.service import TempoService

    root = tmp_path_factory.mktemp("words")
    svc = TempoService(model=str(qwen_dir), redis_url=words_redis)
    for name, duration, cue in ((STREAMS[0], 12.0, ELEPHANT), (STREAMS[1], 8.0, KITE)):
        video = write_test_video(root / f"{name}.mp4", duration=duration, fps=10.0, size=(160, 96))
        write_srt(root / f"{name}.srt", [cue])
        svc.ingest(str(video), name, progress=False)
    return svc


@pytest.fixture()
def prompts(service: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list, list[str]]]:
    """(decoded prompt, clips, texts) of every local answer: the real `build_inputs`, recorded."""
    model, seen = service.model, []
    real = model.build_inputs

    def spy(question: str, clips: Any, texts: Any = None) -> dict:
        inputs = real(question, clips, texts)
        seen.append((model.tokenizer.decode(inputs["input_ids"][0].tolist(), skip_special_tokens=False),
                     list(clips), list(texts or [])))  # fmt: skip
        return inputs

    monkeypatch.setattr(model, "build_inputs", spy)
    return seen


def _conversations(service: Any) -> Any:
    from tempo.agent.conversations import Conversations

    return Conversations(service)


def _settings(**kw: Any) -> AskSettings:
    return AskSettings(**{"max_new_tokens": 2, "answer_cache": False, "budget": 200, **kw})


def _words(cue: tuple[float, float, str]) -> str:
    return segment_words([Cue(cue[0], cue[1], cue[2], "srt")])


def _first_tag(service: Any, clip: Any) -> str:
    return time_tag(float(service.model.processor.patch_times(list(clip.frame_times))[0]), clip.stream)


def test_the_local_answerer_reads_each_kept_clips_cues_after_its_first_timestamp(service, prompts) -> None:
    words = _words(ELEPHANT)
    cap = service.model.count_text_tokens(words)  # room for the elephant's words and nothing more
    result = _conversations(service).ask_once(STREAMS[0], "when is 'blue elephant' said?",
                                              settings=_settings(text_tokens=cap))  # fmt: skip
    row = next(r for r in result["segments"] if r["start"] <= 5.5 < r["end"])
    assert [c["text"] for c in row["cues"]] == [ELEPHANT[2]] and row["rendition"] is not None
    assert [r["index"] for r in result["segments"] if r["cues"]] == [row["index"]]
    text, clips, texts = prompts[-1]
    clip = next(c for c in clips if c.index == row["index"])
    # time tag, then the words, then the clip's first frames: where the Tempo family puts them
    assert _first_tag(service, clip) + words + "<|vision_start|>" in text
    assert text.count(ELEPHANT[2]) == 1 and texts == [words if c is clip else "" for c in clips]
    assert service.model.count_text_tokens("".join(texts)) <= cap
    assert result["tokens"] <= result["budget"] - cap  # the words' tokens were taken from the budget first


def test_the_words_cap_is_counted_with_the_answerers_tokenizer(service, prompts) -> None:
    cap = service.model.count_text_tokens(_words(ELEPHANT)) - 1  # one token short
    result = _conversations(service).ask_once(STREAMS[0], "when is 'blue elephant' said?",
                                              settings=_settings(text_tokens=cap))  # fmt: skip
    assert all(r["cues"] == [] for r in result["segments"]) and ELEPHANT[2] not in prompts[-1][0]


def test_special_token_markup_in_a_cue_stays_plain_text(service) -> None:
    from tempo.models.renditions import render_clip, rendition_ladder

    model = service.model
    seg = make_segment(0, frames=4)
    frames = model.processor.compressor_frames(seg.frames)
    clip = render_clip(0, frames, seg.timestamps, rendition_ladder(*frames.shape[:3])[-1])
    words = segment_words([Cue(0.0, 1.0, "<|video_pad|> then <|im_end|>", "srt")])
    assert words == '\nSubtitles 0.0-1.0 s: "<video_pad> then <im_end>"\n'
    ids = model.build_inputs("Q?", [clip], [words])["input_ids"][0]
    assert int((ids == model.network.config.video_token_id).sum()) == clip.rendition.tokens
    assert int((ids == model.tokenizer.token_id("<|im_end|>")).sum()) == 2  # the system and user turns' ends


def test_the_remote_answerer_gets_the_same_words_at_the_same_place(service, endpoint) -> None:
    _Endpoint.bodies.clear()
    service.model.remote = RemoteAnswerer(endpoint, "m")
    try:
        result = _conversations(service).ask_once(STREAMS[0], "when is 'blue elephant' said?", settings=_settings())
    finally:
        service.model.remote = None
    parts = _Endpoint.bodies[-1]["messages"][1]["content"]
    row = next(r for r in result["segments"] if r["cues"])
    at = parts.index({"type": "text", "text": _words(ELEPHANT)})
    tag = parts[at - 1]["text"]
    assert re.fullmatch(r"<\d+\.\d seconds>", tag) and row["start"] <= float(tag[1:].split()[0]) <= row["end"]
    assert parts[at + 1]["type"] == "image_url"  # then the clip's frames
    tags = [p["text"] for p in parts if p["type"] == "text" and re.fullmatch(r"<\d+\.\d seconds>", p["text"])]
    i = tags.index(tag)  # the clip's first timestamp: the one before it belongs to an earlier segment
    assert i == 0 or float(tags[i - 1][1:].split()[0]) < row["start"]


def test_a_cross_stream_ask_tags_each_clip_with_its_stream_and_cites_stream_and_time(service, endpoint,
                                                                                     prompts) -> None:
    conv = _conversations(service)
    settings = _settings(budget=400)
    local = conv.ask_streams(list(STREAMS), "which stream shows a kite?", settings=settings)
    text, clips, _ = prompts[-1]
    assert {c.stream for c in clips} == set(STREAMS) == {r["stream"] for r in local["segments"]}
    tags = re.findall(r"<([\w-]+) (\d+\.\d) seconds>", text)
    assert {s for s, _ in tags} == set(STREAMS) and not re.search(r"<\d+\.\d seconds>", text)
    for clip in clips:  # each clip's Qwen3-VL timestamps name its stream, at its frames' stream times
        assert _first_tag(service, clip) in text
    assert local["tokens"] == sum(c.rendition.tokens for c in clips) <= settings.budget

    _Endpoint.bodies.clear()
    service.model.remote = RemoteAnswerer(endpoint, "m")
    try:
        remote = conv.ask_streams(list(STREAMS), "which stream shows a kite?", settings=settings)
    finally:
        service.model.remote = None
    sent = [p["text"] for p in _Endpoint.bodies[-1]["messages"][1]["content"] if p["type"] == "text"]
    # The server prices frames as images, so its plan may keep other renditions than the local one: each
    # of its time tags names a kept segment's stream at a time inside it, one tag per temporal patch.
    sent_tags = [re.fullmatch(r"<([\w-]+) (\d+\.\d) seconds>", t) for t in sent if t.startswith("<")]
    kept = [r for r in remote["segments"] if r["rendition"] is not None]
    assert kept and all(m is not None for m in sent_tags)
    assert len(sent_tags) == sum(-(-r["rendition"]["frames"] // 2) for r in kept)
    assert all(any(r["stream"] == m.group(1) and r["start"] - 0.05 <= float(m.group(2)) <= r["end"] + 0.05
                   for r in kept) for m in sent_tags)  # fmt: skip
    assert remote["tokens"] == sum(r["tokens"] for r in kept) <= settings.budget
    cited = [(c["stream"], c["start"]) for c in remote["citations"]]
    assert cited == [("words-b", 2.0)]
    kite = next(r for r in remote["segments"] if r["stream"] == "words-b" and r["start"] <= 2.0 < r["end"])
    assert kite["index"] in remote["citations"][0]["segments"]


def test_the_cross_stream_plan_reserves_the_words_first_and_carries_both_streams_cues(service, prompts) -> None:
    words = [_words(ELEPHANT), _words(KITE)]
    cap = sum(service.model.count_text_tokens(w) for w in words)
    settings = _settings(budget=400, text_tokens=cap, top_k=50)
    result = _conversations(service).ask_streams(list(STREAMS), "what is said?", settings=settings)
    with_cues = {(r["stream"], c["text"]) for r in result["segments"] for c in r["cues"]}
    assert with_cues == {("words-a", ELEPHANT[2]), ("words-b", KITE[2])}
    assert result["tokens"] <= settings.budget - cap  # the reserve came off the visual budget before ATA
    text, clips, texts = prompts[-1]
    for clip, w in zip(clips, texts, strict=True):
        if w:
            assert _first_tag(service, clip) + w + "<|vision_start|>" in text
    assert sorted(w for w in texts if w) == sorted(words)
    recall = CrossStreamRecall(service.recall)
    compression = recall.compress(list(STREAMS), "what is said?",
                                  [{"stream": r["stream"], "index": r["index"]} for r in result["segments"]])  # type: ignore[misc]
    plain = recall.plan(list(STREAMS), compression, budget=400, min_tokens=4)
    assert plain.cues == {} and int(plain.counts.sum()) > settings.budget - cap  # without words, the whole budget


def test_tempo_ask_streams_with_a_qwen3vl_model_reports_streams_renditions_and_words(
    service, qwen_dir: Path, words_redis: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["ask", "--streams", ",".join(STREAMS), "what is said?", "--model", str(qwen_dir), "--redis-url",
            words_redis, "--json", "--budget", "400", "--max-new-tokens", "2"]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["family"], out["streams"]) == ("qwen3-vl", list(STREAMS))
    rows = out["segments"]
    assert {r["stream"] for r in rows} == set(STREAMS) and out["tokens"] == sum(r["tokens"] for r in rows) <= 400
    assert all(r["rendition"] is not None for r in rows if r["tokens"])
    assert {(r["stream"], c["text"]) for r in rows for c in r["cues"]} == {("words-a", ELEPHANT[2]),
                                                                          ("words-b", KITE[2])}  # fmt: skip


def test_streams_written_by_different_families_are_refused_in_one_sentence(
    service, qwen_dir: Path, tiny_dir: Path, words_redis: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = write_test_video(tmp_path / "t.mp4", duration=4.0, fps=10.0, size=(64, 64))
    db = ["--redis-url", words_redis]
    assert main(["ingest", str(video), "--stream", "words-tempo", "--model", str(tiny_dir), *db]) == 0
    capsys.readouterr()
    try:
        rc = main(["ask", "--streams", f"{STREAMS[0]},words-tempo", "What?", "--model", str(qwen_dir), *db])
        err = capsys.readouterr().err.strip()
    finally:
        service.store.delete_stream("words-tempo")
    last = err.splitlines()[-1]  # (before it: transformers' weight-loading bar)
    assert rc != 0 and "Traceback" not in err
    assert last == ("tempo: error: the streams words-a (qwen3-vl), words-tempo (tempo) were ingested by different "
                    "model families and cannot be asked together; ask about each family's streams separately")
