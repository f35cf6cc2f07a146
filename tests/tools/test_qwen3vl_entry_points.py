"""Every way in, in the open-weights family (issue 23): threads and `tempo chat`, `tempo serve` (REST and
the console's timeline in Qwen3-VL tokens), `tempo worker` (the queue path), the MCP server and the
lmms-eval plugin, each run on the tiny Qwen3-VL checkpoint (`tempo model tiny --family qwen3-vl`).

One memory for the module: its own redis-server, one tiny Qwen3-VL directory, and the stream "qcam"
(a 20 s generated video, 5 segments) ingested by that family; one `tempo serve` on it.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import redis
from tempo.memory.store import RedisMemoryStore
from tempo.streaming.synthetic import write_test_video
from tempo.tools.launch import ServerProcess

live_memory_module = sys.modules["agent_live_memory"]  # loaded by tests/conftest.py

STREAM = "qcam"
UNIT = "qwen3-vl visual tokens"
MAX_NEW = "6"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def qmemory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A LiveMemory whose model is a tiny Qwen3-VL and whose stream "qcam" that family ingested."""
    from tempo.memory.embedded import spawn_redis_server
    from tempo.models.qwen3vl_tiny import write_tiny_qwen3vl
    from tempo.service import TempoService

    root = tmp_path_factory.mktemp("qwen-entry")
    proc, url = spawn_redis_server(root, appendonly=False)
    model_dir = write_tiny_qwen3vl(root / "qwen3-vl-tiny", seed=0)
    (root / "media").mkdir()
    video = write_test_video(root / "media" / "qcam.mp4", duration=20.0, fps=10.0, size=(160, 96))
    TempoService(model=str(model_dir), redis_url=url, home=root / "home").ingest(str(video), STREAM, progress=False)
    memory = live_memory_module.LiveMemory(
        root=root, url=url, model_dir=Path(model_dir), stream=STREAM, duration=20.0, process=proc
    )
    yield memory
    memory.stop()


@pytest.fixture(scope="module")
def qserver(qmemory: Any) -> Iterator[ServerProcess]:
    server = ServerProcess(
        ["serve", "--max-new-tokens", MAX_NEW, "--media-root", str(qmemory.root / "media")], env=qmemory.env()
    )
    yield server
    server.stop()


def _main(
    qmemory: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str, stdin: str = ""
) -> tuple[int, str, str]:
    from tempo.tools.cli import main

    for key, value in qmemory.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_open_rows(rows: list[dict[str, Any]], segments: int = 5) -> None:
    """Rows of a qwen3-vl timeline: one per segment, each priced by its rendition's cost."""
    from tempo.models.renditions import rendition_cost

    assert [r["index"] for r in rows] == list(range(segments))
    for r in rows:
        rend = r["rendition"]
        assert rend is not None, r
        assert r["tokens"] == rendition_cost(rend["frames"], rend["height"], rend["width"])


def test_chat_and_threads_answer_from_a_qwen3vl_stream(qmemory, monkeypatch, capsys) -> None:
    thread = "q-chat"
    for question in ("Where is the square at the beginning?", "and after that?"):
        code, out, err = _main(
            qmemory,
            monkeypatch,
            capsys,
            "chat",
            "--stream",
            STREAM,
            "--thread",
            thread,
            "--max-new-tokens",
            MAX_NEW,
            stdin=question + "\n",
        )
        assert code == 0, err
    code, out, err = _main(qmemory, monkeypatch, capsys, "threads", "show", thread, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["stream"] == STREAM and len(shown["turns"]) == 2
    assert shown["turns"][1]["question"] == "and after that?"
    code, out, err = _main(
        qmemory,
        monkeypatch,
        capsys,
        "ask",
        "--stream",
        STREAM,
        "--thread",
        thread,
        "and at the end?",
        "--max-new-tokens",
        MAX_NEW,
        "--json",
    )
    assert code == 0, err
    third = json.loads(out)
    assert (third["family"], third["tokens_unit"], third["thread_id"]) == ("qwen3-vl", UNIT, thread)
    _assert_open_rows(third["segments"])
    code, out, err = _main(qmemory, monkeypatch, capsys, "ask", "--stream", STREAM, "What moves?", "--max-new-tokens",
                           MAX_NEW)  # fmt: skip
    assert code == 0, err
    assert re.search(r"^tokens: \d+ of budget 8192 \(qwen3-vl visual tokens\);", out, re.M), out  # the text report


def _sse(response: Any) -> list[tuple[str, Any]]:
    buffer = "".join(response.iter_text())
    events = []
    for block in buffer.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_serve_rest_asks_a_qwen3vl_stream_in_its_own_tokens(qserver: ServerProcess) -> None:
    base = qserver.base
    listed = {s["name"]: s for s in httpx2.get(f"{base}/v1/streams").json()}
    assert listed[STREAM]["family"] == "qwen3-vl"
    got = httpx2.post(
        f"{base}/v1/streams/{STREAM}/ask", json={"question": "Where is the square?", "new_thread": True}, timeout=300
    )
    assert got.status_code == 200, got.text
    body = got.json()
    assert (body["family"], body["tokens_unit"]) == ("qwen3-vl", UNIT) and body["thread_id"]
    _assert_open_rows(body["segments"])
    follow = httpx2.post(
        f"{base}/v1/threads/{body['thread_id']}/ask", json={"question": "and after that?"}, timeout=300
    )
    assert follow.status_code == 200, follow.text
    assert follow.json()["tokens_unit"] == UNIT
    _assert_open_rows(follow.json()["segments"])
    with httpx2.stream(
        "POST",
        f"{base}/v1/streams/{STREAM}/ask",
        json={"question": "What moves?"},
        headers={"Accept": "text/event-stream"},
        timeout=300,
    ) as response:
        assert response.status_code == 200
        events = _sse(response)
    assert [k for k, _ in events][-3:] == ["allocation", "citations", "done"]
    assert events[-3][1]["segments"] == events[-1][1]["segments"]
    _assert_open_rows(events[-3][1]["segments"])
    across = httpx2.post(
        f"{base}/v1/ask", json={"question": "Which stream shows a square?", "streams": [STREAM]}, timeout=300
    )
    assert across.status_code == 200, across.text
    assert across.json()["tokens_unit"] == UNIT
    _assert_open_rows(across.json()["segments"])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium) when run as root")
        pytest.skip(f"{CHROMIUM} is not installed (make test installs it when run as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        yield chromium
        chromium.close()


def test_console_timeline_shows_qwen3vl_tokens_for_a_qwen3vl_stream(browser: Any, qserver: ServerProcess) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(qserver.base + "/")
    page.wait_for_selector(f'#streams li[data-name="{STREAM}"]', timeout=30_000)
    page.click(f'#streams li[data-name="{STREAM}"]')
    page.fill("#question", "Where is the square?")
    page.click("#ask-button")
    page.wait_for_selector("#messages li[data-done]", timeout=300_000)
    cells = page.query_selector_all("#timeline .cell")
    assert [float(c.get_attribute("data-start")) for c in cells] == [0.0, 4.0, 8.0, 12.0, 16.0]
    for cell in cells:
        cell.hover()
        tip = page.inner_text("#tip")
        tokens = cell.get_attribute("data-tokens")
        assert f"· {tokens} Qwen3-VL tokens (" in tip and " frames at " in tip, tip
    assert page.inner_text("#tokens-unit") == "Qwen3-VL visual tokens"
    assert not errors, errors


def _cli(qmemory: Any, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tempo.tools.cli", *args],
        env=qmemory.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_the_queue_path_commits_a_qwen3vl_stream_that_answers_as_the_direct_ingest(qmemory) -> None:
    video = str(qmemory.root / "media" / "qcam.mp4")
    produced = _cli(qmemory, "ingest", video, "--stream", "qqueue", "--queue", "--json")
    assert produced.returncode == 0, produced.stderr[-2000:]
    worker = _cli(qmemory, "worker", "--idle-exit", "2", "--batch-size", "4", "--json")
    assert worker.returncode == 0, worker.stderr[-2000:]
    assert json.loads(worker.stdout.strip().splitlines()[-1])["segments"] == 5
    streams = _cli(qmemory, "streams", "--json")
    by_name = {s["name"]: s for s in json.loads(streams.stdout)["streams"]}
    assert by_name["qqueue"]["family"] == by_name[STREAM]["family"] == "qwen3-vl"
    assert by_name["qqueue"]["segments"] == 5
    # The workers stored each segment's anchor thumbnail, the same as the direct ingest's.
    store = RedisMemoryStore(redis.Redis.from_url(qmemory.url))
    thumbs = store.anchor_thumbnails("qqueue", range(5))
    assert all(thumbs) and thumbs == store.anchor_thumbnails(STREAM, range(5))
    asked = [
        json.loads(
            _cli(
                qmemory,
                "ask",
                "--stream",
                name,
                "What is shown?",
                "--json",
                "--max-new-tokens",
                MAX_NEW,
                "--top-k",
                "50",
            ).stdout
        )
        for name in ("qqueue", STREAM)
    ]
    keys = ("index", "start", "end", "tokens", "kind", "rendition")
    assert [{k: r[k] for k in keys} for r in asked[0]["segments"]] == [
        {k: r[k] for k in keys} for r in asked[1]["segments"]
    ]
    assert asked[0]["answer"] == asked[1]["answer"] and asked[0]["tokens_unit"] == UNIT
    _assert_open_rows(asked[0]["segments"])


def test_mcp_tools_answer_from_a_qwen3vl_stream(qmemory) -> None:
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable, env=qmemory.env(), args=["-m", "tempo.tools.mcp_server", "--max-new-tokens", MAX_NEW]
    )

    async def script() -> dict[str, Any]:
        async with Client(params, read_timeout_seconds=300) as client:
            streams = (await client.call_tool("list_streams", {})).structured_content
            asked = await client.call_tool(
                "ask_video", {"question": "Where is the square?", "stream": STREAM, "thread_id": "q-mcp"}
            )
            moments = await client.call_tool("search_moments", {"query": "a square", "stream": STREAM, "top_k": 2})
            return {"streams": streams, "ask": asked.structured_content, "moments": moments.structured_content}

    # In a thread of its own: the module's Playwright browser keeps an event loop running on this one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        out = pool.submit(anyio.run, script).result()
    listed = {s["name"]: s for s in out["streams"]["streams"]}
    assert listed[STREAM]["family"] == "qwen3-vl"
    ask = out["ask"]
    assert ask["stream"] == STREAM and ask["thread_id"] == "q-mcp" and isinstance(ask["answer"], str)
    assert all(r["rendition"] is not None for r in ask["evidence"])
    assert 1 <= len(out["moments"]["moments"]) <= 2


def _lmms_plugin_test_module() -> Any:
    """tests/eval/test_lmms_plugin.py (its task files and the lmms-eval venv's place), loaded by path."""
    import importlib.util

    name = "lmms_plugin_test_module"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "eval" / "test_lmms_plugin.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_the_lmms_eval_plugin_answers_with_a_qwen3vl_checkpoint(qmemory, tmp_path: Path) -> None:
    from tempo.eval.harness import ReferencePipeline
    from tempo.eval.prompts import lvbench_prompt
    from tempo.models import TempoInferenceConfig
    from tempo.settings import AskSettings

    plugin = _lmms_plugin_test_module()
    task = tmp_path / "task"
    task.mkdir()
    video = qmemory.root / "media" / "qcam.mp4"
    docs = [{"video": str(video), "question": "What moves?", "options": ["a", "b", "c", "d"], "answer": "B"}]
    (task / "docs.json").write_text(json.dumps(docs))
    (task / "tempo_tiny.yaml").write_text(plugin.TASK_YAML.format(docs=task / "docs.json"))
    (task / "utils.py").write_text(plugin.TASK_UTILS)
    out = tmp_path / "out"
    # The lmms-eval venv sees the project's venv; PYTHONPATH carries the tree under test too.
    path = os.pathsep.join([str(task), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": path}  # fmt: skip
    argv = [plugin._lmms_bin("lmms-eval"), "eval", "--model", "tempo",
            "--model_args", f"pretrained={qmemory.model_dir},visual_token_budget=64", "--tasks", "tempo_tiny_mcq",
            "--include_path", str(task), "--batch_size", "1", "--output_path", str(out), "--log_samples"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    samples = [json.loads(line) for line in next(out.rglob("*samples_tempo_tiny_mcq.jsonl")).read_text().splitlines()]
    pipeline = ReferencePipeline(
        str(qmemory.model_dir), TempoInferenceConfig(context_limit=32768), AskSettings(budget=64)
    )
    assert pipeline.model.family == "qwen3-vl"
    expected = pipeline.ask(str(video), lvbench_prompt(docs[0]), max_new_tokens=8)
    assert expected["tokens_unit"] == UNIT and expected["tokens"] <= 64
    assert samples[0]["filtered_resps"] == expected["answer"].strip()
