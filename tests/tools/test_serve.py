"""`tempo serve` (issue 12): the REST API on a real memory and the tiny model, its errors as problem
details, ingest jobs, clips with Range, and the security rules (token, Host/Origin, CORS, media root,
scheme allowlist, private networks, body size, no secret in responses or logs)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import time

import anyio
import av
import httpx
import httpx2
import pytest

live_memory_module = sys.modules["agent_live_memory"]
tools_conftest = sys.modules[
    next(n for n, m in sys.modules.items() if n.endswith("conftest") and hasattr(m, "ServeProcess"))
]
ServeProcess = tools_conftest.ServeProcess
SERVE_TOKEN = tools_conftest.SERVE_TOKEN


def problem_of(response) -> dict:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body = response.json()
    assert set(body) >= {"type", "title", "status", "detail"}
    assert body["status"] == response.status_code
    assert "\n" not in body["detail"] and "Traceback" not in body["detail"]
    return body


def wait_job(base: str, job_id: str, states: tuple[str, ...], timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = httpx2.get(f"{base}/v1/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.3)


@pytest.fixture(scope="module")
def walk_stream(serve_server):
    """walk.mp4 (20 s) ingested through the API as a background job."""
    started = httpx2.post(f"{serve_server.base}/v1/streams/walk/ingest", json={"source": "walk.mp4"})
    assert started.status_code == 202, started.text
    job = wait_job(serve_server.base, started.json()["id"], ("done", "failed"))
    assert job["state"] == "done", job
    return job


# ----- service routes ------------------------------------------------------------------------------------


def test_health_docs_and_openapi(serve_server):
    assert httpx2.get(f"{serve_server.base}/health").json() == {"status": "ok", "server": "tempo", "ready": True}
    assert "swagger" in httpx2.get(f"{serve_server.base}/docs").text.lower()
    paths = httpx2.get(f"{serve_server.base}/openapi.json").json()["paths"]
    for path in ("/v1/streams", "/v1/streams/{stream}/ask", "/v1/search", "/v1/streams/{stream}/clip", "/v1/threads"):
        assert path in paths


def test_the_mcp_endpoint_is_mounted(serve_server):
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def call() -> dict:
        client = httpx2.AsyncClient(timeout=httpx2.Timeout(60))
        async with Client(streamable_http_client(f"{serve_server.base}/mcp", http_client=client)) as mcp:
            return (await mcp.call_tool("list_streams", {})).structured_content

    assert "cam" in [s["name"] for s in anyio.run(call)["streams"]]


# ----- streams and jobs ---------------------------------------------------------------------------------------


def test_streams_list_and_show(serve_server):
    streams = {s["name"]: s for s in httpx2.get(f"{serve_server.base}/v1/streams").json()}
    cam = streams["cam"]
    assert (cam["segments"], cam["start"], cam["end"], cam["live"]) == (10, 0.0, 40.0, False)
    assert httpx2.get(f"{serve_server.base}/v1/streams/cam").json()["segments"] == 10
    missing = httpx2.get(f"{serve_server.base}/v1/streams/nope")
    assert missing.status_code == 404
    assert "'nope'" in problem_of(missing)["detail"]


def test_ingest_job_runs_to_the_end_of_the_file(serve_server, walk_stream):
    assert walk_stream["segments"] == 5 and walk_stream["source"].endswith("walk.mp4")
    info = httpx2.get(f"{serve_server.base}/v1/streams/walk").json()
    assert (info["segments"], info["end"]) == (5, 20.0)
    assert info["job"]["state"] == "done"


def test_a_second_job_on_a_busy_stream_is_a_conflict_and_jobs_stop(serve_server):
    url = "rtsp://127.0.0.1:9/cam"  # nothing listens: the live job retries with backoff
    first = httpx2.post(f"{serve_server.base}/v1/streams/busy/ingest", json={"source": url})
    assert first.status_code == 202
    second = httpx2.post(f"{serve_server.base}/v1/streams/busy/ingest", json={"source": url})
    assert second.status_code == 409
    assert problem_of(second)["detail"].startswith("the stream 'busy' is already being ingested")
    job = wait_job(serve_server.base, first.json()["id"], ("retrying",))
    assert job["live"] and job["attempts"] >= 1 and job["error"]
    stopped = httpx2.post(f"{serve_server.base}/v1/jobs/{job['id']}/stop").json()
    assert stopped["state"] == "stopped"
    assert httpx2.delete(f"{serve_server.base}/v1/jobs/{job['id']}").status_code == 204
    assert httpx2.get(f"{serve_server.base}/v1/jobs/{job['id']}").status_code == 404


def test_live_jobs_are_resumed_by_a_restarted_server(serve_memory):
    first = ServeProcess(serve_memory)
    url = "rtsp://127.0.0.1:9/resume"
    job = httpx2.post(f"{first.base}/v1/streams/resume/ingest", json={"source": url}).json()
    wait_job(first.base, job["id"], ("retrying",))
    first.stop()
    second = ServeProcess(serve_memory)
    try:
        before = httpx2.get(f"{second.base}/v1/jobs/{job['id']}").json()
        assert before["state"] in ("running", "retrying")
        deadline = time.monotonic() + 60
        while httpx2.get(f"{second.base}/v1/jobs/{job['id']}").json()["updated"] <= before["updated"]:
            assert time.monotonic() < deadline, "the resumed job never ran"
            time.sleep(0.3)
        assert httpx2.delete(f"{second.base}/v1/jobs/{job['id']}").status_code == 204
    finally:
        second.stop()


def test_sigterm_stops_the_server_cleanly_with_exit_code_0(serve_memory):
    # `docker stop` / systemd send SIGTERM: the server shuts down, its retention thread ends through
    # its `with` block, and the process exits 0 (uvicorn alone re-raises the signal: exit -15).
    server = ServeProcess(serve_memory)
    err = server.stop()
    assert server.proc.returncode == 0, err
    assert "Traceback" not in err


def test_an_address_in_use_is_one_sentence(serve_memory):
    import socket
    import subprocess

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(serve_memory.cli("serve", "--port", str(port)), env=serve_memory.env(),
                              capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if "WARNING" not in line]
    assert lines == [f"tempo: error: cannot listen on 127.0.0.1:{port}: Address already in use"], done.stderr


def test_delete_a_stream(serve_server, serve_memory):
    from tempo.streaming.synthetic import write_test_video

    write_test_video(serve_memory.root / "media" / "short.mp4", duration=8.0, fps=30, size=(160, 96))
    job = httpx2.post(f"{serve_server.base}/v1/streams/short/ingest", json={"source": "short.mp4"}).json()
    assert wait_job(serve_server.base, job["id"], ("done", "failed"))["state"] == "done"
    assert httpx2.delete(f"{serve_server.base}/v1/streams/short").status_code == 204
    assert httpx2.get(f"{serve_server.base}/v1/streams/short").status_code == 404
    assert httpx2.get(f"{serve_server.base}/v1/jobs/{job['id']}").status_code == 404


# ----- questions and threads --------------------------------------------------------------------------------


def test_ask_returns_the_answer_the_timeline_and_a_thread(serve_server):
    got = httpx2.post(
        f"{serve_server.base}/v1/streams/cam/ask", json={"question": "Where is the square?", "new_thread": True},
        timeout=120,
    )  # fmt: skip
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["stream"] == "cam" and body["answer"] and body["thread_id"]
    cells = body["segments"]
    assert [c["index"] for c in cells] == list(range(10))  # one cell per segment
    assert all(c["tokens"] >= 1 for c in cells)
    assert any(c["kind"] == "candidate" for c in cells)
    assert all((c["relevance"] is None) == (c["kind"] == "anchor") for c in cells)
    threads = httpx2.get(f"{serve_server.base}/v1/threads", params={"stream": "cam"}).json()
    assert body["thread_id"] in [t["id"] for t in threads]
    listed = next(t for t in threads if t["id"] == body["thread_id"])
    assert listed["title"] == "Where is the square?" and listed["last_turn_at"] is not None


def test_a_one_shot_ask_makes_no_thread_and_ask_across_streams_names_them(serve_server):
    before = httpx2.get(f"{serve_server.base}/v1/threads").json()
    once = httpx2.post(f"{serve_server.base}/v1/streams/cam/ask", json={"question": "Is it red?"}, timeout=120)
    assert once.status_code == 200, once.text
    assert once.json()["thread_id"] is None
    across = httpx2.post(f"{serve_server.base}/v1/ask", json={"question": "Which stream shows a square?"}, timeout=120)
    assert across.status_code == 200, across.text
    body = across.json()
    names = sorted(s["name"] for s in httpx2.get(f"{serve_server.base}/v1/streams").json())
    assert body["thread_id"] is None and body["streams"] == names  # absent = all streams
    assert {r["stream"] for r in body["segments"]} <= set(names)
    assert httpx2.get(f"{serve_server.base}/v1/threads").json() == before
    bad = httpx2.post(f"{serve_server.base}/v1/ask", json={"question": "q", "streams": ["cam", "nope"]})
    assert bad.status_code == 404 and "nope" in bad.json()["detail"]
    empty = httpx2.post(f"{serve_server.base}/v1/ask", json={"question": "q", "streams": []})
    assert empty.status_code == 422


def test_ask_streams_text_then_allocation_citations_and_done(serve_server):
    events = []
    with httpx2.stream(
        "POST",
        f"{serve_server.base}/v1/streams/cam/ask",
        json={"question": "What moves in the video?"},
        headers={"Accept": "text/event-stream"},
        timeout=120,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        buffer = ""
        for chunk in response.iter_text():
            buffer += chunk
        for block in buffer.strip().split("\n\n"):
            lines = dict(line.split(": ", 1) for line in block.splitlines())
            events.append((lines["event"], json.loads(lines["data"])))
    kinds = [k for k, _ in events]
    assert kinds[-3:] == ["allocation", "citations", "done"]
    assert set(kinds[:-3]) == {"text"} and len(kinds) > 4
    done = events[-1][1]
    assert "".join(d["text"] for k, d in events if k == "text").strip() == done["answer"].strip()
    assert events[-3][1]["segments"] == done["segments"] and len(done["segments"]) == 10


def test_threads_show_ask_in_thread_and_delete(serve_server):
    first = httpx2.post(
        f"{serve_server.base}/v1/streams/cam/ask", json={"question": "Where is the square?", "thread_id": "t-serve"},
        timeout=120,
    )  # fmt: skip
    thread = first.json()["thread_id"]
    follow = httpx2.post(
        f"{serve_server.base}/v1/threads/{thread}/ask", json={"question": "and after that?"}, timeout=120
    )
    assert follow.status_code == 200, follow.text
    assert follow.json()["thread_id"] == thread
    shown = httpx2.get(f"{serve_server.base}/v1/threads/{thread}").json()
    assert shown["stream"] == "cam" and [t["question"] for t in shown["turns"]] == [
        "Where is the square?",
        "and after that?",
    ]
    assert httpx2.delete(f"{serve_server.base}/v1/threads/{thread}").status_code == 204
    assert httpx2.get(f"{serve_server.base}/v1/threads/{thread}").status_code == 404
    assert httpx2.delete(f"{serve_server.base}/v1/threads/{thread}").status_code == 404


def test_follow_ups_move_in_time_and_report_their_ranges_over_rest(serve_server):
    ask = f"{serve_server.base}/v1/streams/cam/ask"
    first = httpx2.post(ask, json={"question": "What happens in the first 12 seconds?", "new_thread": True},
                        timeout=120).json()
    assert first["thread_id"] and first["rewrite_source"] == "question"
    assert first["time_scope"]["ranges"] == [{"start": 0.0, "end": 12.0}]
    after = max((c["end"] for c in first["citations"]), default=12.0)  # "that": the cited range, else the scope
    follow = httpx2.post(
        f"{serve_server.base}/v1/threads/{first['thread_id']}/ask",
        json={"question": "and in the 8 seconds after that?"},
        timeout=120,
    ).json()
    if after < 40.0:  # cam is 40 s long
        assert follow["time_scope"]["ranges"] == [{"start": after, "end": min(40.0, after + 8.0)}]
        assert follow["rewrite_source"] == "fallback" and "12 seconds" not in follow["standalone_question"]
    both = httpx2.post(ask, json={"question": "compare the first and the last 10 seconds"}, timeout=120).json()
    assert both["time_scope"]["ranges"] == [{"start": 0.0, "end": 10.0}, {"start": 30.0, "end": 40.0}]
    assert all(c["start"] < 10.0 or c["end"] > 30.0 for c in both["candidates"]), both["candidates"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"question": ""}, "invalid 'question': string should have at least 1 character."),
        ({"question": "x" * 4001}, "invalid 'question': string should have at most 4000 characters."),
        ({"question": "x", "start": 30, "end": 10}, "the time scope must end after it starts (got 30 s to 10 s)"),
        ({"question": "x", "colour": "red"}, "unknown field 'colour'."),
        ({}, "'question' is required."),
    ],
)
def test_bad_questions_are_one_sentence_422(serve_server, body, detail):
    got = httpx2.post(f"{serve_server.base}/v1/streams/cam/ask", json=body)
    assert got.status_code == 422
    assert problem_of(got)["detail"] == detail


# ----- search -------------------------------------------------------------------------------------------------


def test_search_one_several_or_all_streams(serve_server, walk_stream):
    def search(**body) -> list[dict]:
        got = httpx2.post(f"{serve_server.base}/v1/search", json={"query": "a square", "top_k": 50, **body})
        assert got.status_code == 200, got.text
        return got.json()["moments"]

    every = search()
    assert {m["stream"] for m in every} >= {"cam", "walk"}
    assert [m["score"] for m in every] == sorted((m["score"] for m in every), reverse=True)
    assert {m["stream"] for m in search(streams=["walk"])} == {"walk"}
    both = search(streams=["cam", "walk"])
    assert len(both) == 15
    one = httpx2.post(f"{serve_server.base}/v1/search", json={"query": "x", "streams": ["nope"]})
    assert one.status_code == 404


def test_ask_across_streams_reports_each_streams_own_time_scope(serve_server, walk_stream):
    ends = {s["name"]: s["end"] for s in httpx2.get(f"{serve_server.base}/v1/streams").json()}
    got = httpx2.post(f"{serve_server.base}/v1/ask", timeout=120,
                      json={"question": "What happens in the last 8 seconds?", "streams": ["cam", "walk"]})  # fmt: skip
    assert got.status_code == 200, got.text
    scope = got.json()["time_scope"]
    for name in ("cam", "walk"):  # each stream's own last 8 seconds
        assert scope["streams"][name]["ranges"] == [{"start": ends[name] - 8, "end": ends[name]}], name


# ----- clips ----------------------------------------------------------------------------------------------


def test_clip_is_playable_mp4_with_stream_times(serve_server):
    got = httpx2.get(f"{serve_server.base}/v1/streams/cam/clip", params={"start": 8, "end": 16})
    assert got.status_code == 200 and got.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(got.content)) as container:
        times = [float(f.pts * f.time_base) for f in container.decode(video=0)]
    assert times[0] == 0.0 and abs(times[-1] - 8.0) < 1e-3  # clip time t = stream time 8 + t
    assert len(times) == 17  # 16 sampled frames at 2 fps, and the last one held to the end


def test_clip_answers_range_requests(serve_server):
    url = f"{serve_server.base}/v1/streams/cam/clip?start=0&end=40"
    whole = httpx2.get(url).content
    part = httpx2.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole)}"
    assert part.content == whole[100:200]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"start": 50}, 422),
        ({"start": 10, "end": 5}, 422),
        ({"start": -1}, 422),
        ({"start": "nan"}, 422),
        ({"end": "inf"}, 422),
    ],
)
def test_bad_clip_ranges(serve_server, params, status):
    got = httpx2.get(f"{serve_server.base}/v1/streams/cam/clip", params=params)
    assert got.status_code == status
    problem_of(got)


# ----- security ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "../cam.mp4",
        "/etc/passwd",
        "nothere.mp4",
        "-",
        "/dev/video0",
        "file:///etc/passwd",
        "ftp://example.com/a.mp4",
        "concat:walk.mp4|walk.mp4",
        "subfile,,start,0,end,0,,:walk.mp4",
    ],
)
def test_sources_outside_the_policy_are_refused(serve_server, source):
    got = httpx2.post(f"{serve_server.base}/v1/streams/bad/ingest", json={"source": source})
    assert got.status_code == 422, got.text
    problem_of(got)
    assert httpx2.get(f"{serve_server.base}/v1/streams/bad").status_code == 404


def test_symlinks_out_of_the_media_root_and_fifos_are_refused(serve_server, serve_memory):
    media = serve_memory.root / "media"
    (media / "escape.mp4").symlink_to(serve_memory.root / "cam.mp4")
    os.mkfifo(media / "pipe.mp4")
    for source, detail in (("escape.mp4", "outside the media root"), ("pipe.mp4", "not a regular file")):
        got = httpx2.post(f"{serve_server.base}/v1/streams/bad/ingest", json={"source": source})
        assert got.status_code == 422
        assert detail in problem_of(got)["detail"]


def test_private_networks_are_refused_for_http_sources_when_asked():
    from tempo.tools.server_sources import SourceNotAllowedError, check_source

    for url in (
        "http://127.0.0.1/v.mp4",
        "https://10.1.2.3/v.m3u8",
        "http://[::1]:8080/v",
        "http://169.254.169.254/x",
        "http://localhost/v.mp4",
        "http://[::ffff:192.168.0.1]/v",
        "http://0.0.0.0/v",
        "rtsp://192.168.1.20/stream",  # every scheme (issue 26)
    ):
        with pytest.raises(SourceNotAllowedError, match="--deny-private-networks"):
            check_source(url, media_root=None, deny_private_networks=True)
        if "169.254.169.254" in url:  # the cloud metadata service: refused even without the flag
            with pytest.raises(SourceNotAllowedError, match="metadata"):
                check_source(url, media_root=None, deny_private_networks=False)
        else:
            assert check_source(url, media_root=None, deny_private_networks=False) == url


def test_no_secret_in_responses_or_logs(serve_memory):
    secret = "pa55w0rd-do-not-show"
    server = ServeProcess(serve_memory, env={"TEMPO_MCP_TOKEN": SERVE_TOKEN})
    auth = {"Authorization": f"Bearer {SERVE_TOKEN}"}
    try:
        job = httpx2.post(
            f"{server.base}/v1/streams/secret/ingest",
            json={"source": f"rtsp://admin:{secret}@127.0.0.1:9/x"},
            headers=auth,
        )
        assert job.status_code == 202
        job = job.json()
        deadline = time.monotonic() + 60
        while httpx2.get(f"{server.base}/v1/jobs/{job['id']}", headers=auth).json()["attempts"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        texts = [
            httpx2.get(f"{server.base}{path}", headers=auth).text
            for path in ("/v1/jobs", f"/v1/jobs/{job['id']}", "/v1/streams", "/metrics", "/openapi.json")
        ]
        assert httpx2.delete(f"{server.base}/v1/jobs/{job['id']}", headers=auth).status_code == 204
    finally:
        log = server.stop()
    assert all(secret not in t and SERVE_TOKEN not in t for t in texts)
    assert "rtsp://admin:***@127.0.0.1:9/x" in texts[1]
    assert secret not in log and SERVE_TOKEN not in log


def test_off_loopback_needs_a_token(tempo_main, monkeypatch):
    monkeypatch.delenv("TEMPO_MCP_TOKEN", raising=False)
    code, _, err = tempo_main("serve", "--host", "0.0.0.0", "--port", "1")
    assert code == 2
    assert err.strip().splitlines() == [
        "tempo: error: serving tempo on 0.0.0.0 (not loopback) needs a bearer token: set $TEMPO_MCP_TOKEN or pass "
        "--token-file"
    ]


# In-process app (no lifespan: these requests never reach the model or Redis).


def inproc(serve_memory, **settings):
    from tempo.tools.server import ServeSettings, create_app

    return create_app(serve_memory.service(), ServeSettings(warm=False, resume_jobs=False, **settings))


def call(app, method: str, path: str, **kwargs) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as c:
            return await c.request(method, path, **kwargs)

    return anyio.run(go)


@pytest.mark.parametrize("path", ["/health", "/metrics", "/v1/streams", "/docs", "/", "/static/console.js", "/mcp"])
def test_every_route_checks_the_host_without_a_token(serve_memory, path):
    app = inproc(serve_memory)
    assert call(app, "GET", path, headers={"Host": "evil.example"}).status_code == 421
    assert call(app, "GET", path, headers={"Host": "127.0.0.1", "Origin": "http://evil.example"}).status_code == 403


def test_with_a_token_everything_but_health_and_the_console_files_needs_it(serve_memory):
    app = inproc(serve_memory, token=SERVE_TOKEN)
    for path in ("/metrics", "/v1/streams", "/docs", "/openapi.json", "/v1/streams/cam/clip"):
        assert call(app, "GET", path).status_code == 401
    assert call(app, "GET", "/metrics", headers={"Authorization": f"bearer {SERVE_TOKEN}"}).status_code == 200
    assert call(app, "GET", "/metrics", headers={"Cookie": f"tempo_token={SERVE_TOKEN}"}).status_code == 200
    for path in ("/health", "/", "/static/console.js"):
        assert call(app, "GET", path).status_code == 200


def test_cors_is_off_unless_an_origin_is_given(serve_memory):
    preflight = {"Origin": "https://ops.example.com", "Access-Control-Request-Method": "POST"}
    off = call(inproc(serve_memory, token=SERVE_TOKEN), "OPTIONS", "/v1/search", headers=preflight)
    assert off.status_code == 403 and "access-control-allow-origin" not in off.headers
    on = inproc(serve_memory, token=SERVE_TOKEN, cors_origins=("https://ops.example.com",))
    allowed = call(on, "OPTIONS", "/v1/search", headers=preflight)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://ops.example.com"
    other = call(on, "OPTIONS", "/v1/search", headers={**preflight, "Origin": "https://evil.example"})
    assert other.status_code == 403


def test_large_bodies_are_refused(serve_memory):
    app = inproc(serve_memory, max_body_bytes=1000)
    got = call(
        app, "POST", "/v1/search", content=b"{" + b" " * 5000 + b"}", headers={"Content-Type": "application/json"}
    )
    assert got.status_code == 413
    assert problem_of(got)["detail"] == "the request body is larger than 1000 bytes"


def test_metrics_label_routes_not_raw_paths(serve_server):
    for i in range(5):
        httpx2.get(f"{serve_server.base}/v1/streams/forged-{i}-" + "y" * 100)
        httpx2.get(f"{serve_server.base}/no/such/path/{i}")
    text = httpx2.get(f"{serve_server.base}/metrics").text
    assert "forged" not in text and "no/such" not in text
    assert 'route="/v1/streams/{stream}"' in text


# ----- the model queue -----------------------------------------------------------------------------------------


def test_the_model_queue_is_fifo_bounded_and_times_out():
    import threading

    from tempo.tools.errors import ModelTimeoutError, QueueFullError
    from tempo.tools.model_queue import ModelQueue
    from tempo.tools.server_problems import problem, status_of

    async def scenario() -> dict:
        queue = ModelQueue(max_waiting=2, timeout=2.0)
        release = threading.Event()
        order: list[int] = []

        def hold(i: int) -> None:
            order.append(i)
            if i == 0:
                release.wait(5)

        first = asyncio.ensure_future(queue(lambda: hold(0)))
        await asyncio.sleep(0.05)
        waiting = [asyncio.ensure_future(queue(lambda i=i: hold(i))) for i in (1, 2)]
        await asyncio.sleep(0.05)
        out: dict = {"waiting": queue.waiting}
        try:
            queue.reserve()
        except QueueFullError as exc:
            out["full"] = exc
        release.set()
        await asyncio.gather(first, *waiting)
        out["order"] = order
        slow = ModelQueue(max_waiting=2, timeout=0.2)
        try:
            await slow(lambda: time.sleep(0.6))
        except ModelTimeoutError as exc:
            out["timeout"] = exc
        return out

    out = asyncio.run(scenario())
    assert out["waiting"] == 2 and out["full"].retry_after >= 1
    assert status_of(out["full"]) == 429 and status_of(out["timeout"]) == 504
    from tempo.memory.errors import ColdShardCorruptError, MemoryUnavailableError
    from tempo.models.errors import ModelNotAvailableError

    for unavailable in (MemoryUnavailableError("Redis is down"), ColdShardCorruptError("shard 3 fails its checksum"),
                        ModelNotAvailableError("no model directory")):
        assert status_of(unavailable) == 503  # the server's trouble, not the request's
    assert out["order"] == [0, 1, 2]  # first come, first served
    response = problem(429, str(out["full"]), headers={"Retry-After": str(out["full"].retry_after)})
    assert response.headers["retry-after"] == str(out["full"].retry_after)


def test_a_full_queue_answers_429_with_retry_after(serve_memory):
    """The HTTP side: the route turns QueueFullError into 429 + Retry-After (queue of 0 places)."""
    from tempo.tools.server import ServeSettings, create_app

    app = create_app(serve_memory.service(), ServeSettings(warm=False, resume_jobs=False, max_queue=1))
    app_queue = _inner_app(app).state.tempo.queue
    app_queue.waiting = 1  # one question already waiting
    got = call(app, "POST", "/v1/streams/cam/ask", json={"question": "Where is the square?"})
    assert got.status_code == 429
    assert int(got.headers["retry-after"]) >= 1
    assert problem_of(got)["detail"] == "too many questions are waiting for the model; try again later"


def _inner_app(app):
    while not hasattr(app, "state"):
        app = app.app
    return app


def test_metrics_include_the_work_queue(serve_memory):
    import redis as redis_client
    from tempo.memory.jobqueue import JobQueue

    queue = JobQueue(redis_client.Redis.from_url(serve_memory.url))
    queue.register("queued-cam")
    try:
        text = call(inproc(serve_memory), "GET", "/metrics").text
        assert 'tempo_queue_queued{stream="queued-cam"} 0.0' in text
        assert 'tempo_queue_dead_letters{stream="queued-cam"} 0.0' in text
    finally:
        queue.delete("queued-cam")
