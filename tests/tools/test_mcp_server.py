"""The MCP server through the SDK's own client, over stdio (a `python -m tempo.tools.mcp_server`
subprocess) and streamable HTTP (a `tempo mcp --http` subprocess on 127.0.0.1, with a bearer token)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from tempo.tools.launch import ServerProcess

FIRST_QUESTION = "Where is the square at the beginning?"  # the cli_thread fixture's questions
FOLLOW_UP = "and after that?"
TOKEN = "test-token-0123456789"


@pytest.fixture(scope="module")
def http_server(live_memory) -> Iterator[str]:
    server = ServerProcess(
        ["mcp", "--http", "--max-new-tokens", "12"], env={**live_memory.env(), "TEMPO_MCP_TOKEN": TOKEN}
    )
    yield server.base
    server.stop(timeout=20)


def stdio_client(live_memory) -> Client:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "tempo.tools.mcp_server", "--max-new-tokens", "12"],
        env=live_memory.env(),
    )
    return Client(params, read_timeout_seconds=120)


def http_client(base: str, token: str | None = TOKEN) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    client = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(120))
    return Client(streamable_http_client(f"{base}/mcp", http_client=client), read_timeout_seconds=120)


async def session_script(client: Client, thread: str) -> dict:
    """What every transport is asked: list tools, call each (two turns on a thread), bad calls."""
    out: dict = {}
    async with client:
        tools = (await client.list_tools()).tools
        out["tools"] = {t.name: t.input_schema for t in tools}
        out["streams"] = (await client.call_tool("list_streams", {})).structured_content
        first = await client.call_tool("ask_video", {"question": FIRST_QUESTION, "stream": "cam", "thread_id": thread})
        second = await client.call_tool("ask_video", {"question": FOLLOW_UP, "stream": "cam", "thread_id": thread})
        out["turns"] = [json.loads(first.content[0].text), second.structured_content]
        out["moments"] = await client.call_tool("search_moments", {"query": "a square", "stream": "cam", "top_k": 2})
        out["across"] = (await client.call_tool("search_moments", {"query": "a square", "top_k": 2})).structured_content
        out["bad"] = [
            await client.call_tool("search_moments", {"query": "square", "stream": "cam", "top_k": 0}),
            await client.call_tool("ask_video", {"question": "What happens?", "stream": "nope"}),
            await client.call_tool("ask_video", {"stream": "cam"}),
            await client.call_tool("list_streams", {"verbose": True}),
            await client.call_tool("ask_video", {"question": "x", "stream": "cam", "start": 30, "end": 10}),
            await client.call_tool("no_such_tool", {}),
        ]
        out["after_bad"] = (await client.call_tool("list_streams", {})).structured_content
    return out


def check_script(out: dict, cli_thread: dict, thread: str) -> None:
    assert out["tools"]["ask_video"]["required"] == ["question"]  # no stream: across all streams
    assert set(out["tools"]) == {"ask_video", "search_moments", "list_streams", "list_alerts", "transcript"}
    assert out["tools"]["search_moments"]["properties"]["top_k"]["maximum"] == 50
    assert [s["name"] for s in out["streams"]["streams"]] == ["cam"]
    first, second = out["turns"]
    cli_first, cli_second = cli_thread["turns"]
    # Same questions and thread state as the two `tempo chat` processes: same rewrite, answers, citations.
    assert first["thread_id"] == second["thread_id"] == thread
    assert (first["answer"], first["citations"]) == (cli_first["answer"], cli_first["citations"])
    assert second["standalone_question"] == cli_second["standalone_question"]
    assert (second["answer"], second["citations"]) == (cli_second["answer"], cli_second["citations"])
    # The scope read and how the question was rewritten come back too ("at the beginning": 0-30 s of 40 s).
    assert first["time_scope"]["ranges"] == [{"start": 0.0, "end": 30.0}] and first["rewrite_source"] == "question"
    assert second["rewrite_source"] in ("model", "fallback") and "time_scope" in second
    moments = out["moments"]
    assert not moments.is_error and len(moments.structured_content["moments"]) == 2
    assert out["across"]["moments"] == moments.structured_content["moments"]  # every stream: here only "cam"
    texts = []
    for result in out["bad"]:
        assert result.is_error
        (content,) = result.content
        assert "\n" not in content.text and "Traceback" not in content.text
        texts.append(content.text)
    assert texts[0] == "search_moments: invalid 'top_k': input should be greater than or equal to 1."
    assert "'nope'" in texts[1]
    assert texts[2] == "ask_video: the argument 'question' is required."
    assert texts[3] == "list_streams: unknown argument 'verbose' (allowed: none)."
    assert texts[4].endswith("the time scope must end after it starts (got 30 s to 10 s)")
    assert texts[5].startswith("unknown tool 'no_such_tool'")
    assert out["after_bad"] == out["streams"]  # the server carried on


def test_stdio_transport(live_memory, cli_thread):
    out = anyio.run(session_script, stdio_client(live_memory), "mcp-stdio-thread")
    check_script(out, cli_thread, "mcp-stdio-thread")


def test_streamable_http_transport(http_server, cli_thread):
    out = anyio.run(session_script, http_client(http_server), "mcp-http-thread")
    check_script(out, cli_thread, "mcp-http-thread")


def test_http_needs_the_bearer_token_but_health_does_not(http_server):
    assert httpx2.get(f"{http_server}/health").json() == {"status": "ok", "server": "tempo"}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        refused = httpx2.post(f"{http_server}/mcp", json=body, headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")


def test_metrics_count_tool_calls_and_need_the_token(http_server):
    async def calls() -> None:
        async with http_client(http_server) as client:
            await client.call_tool("list_streams", {})
            await client.call_tool("search_moments", {"query": "", "stream": "cam"})  # rejected input

    assert httpx2.get(f"{http_server}/metrics").status_code == 401
    before = httpx2.get(f"{http_server}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    anyio.run(calls)
    after = httpx2.get(f"{http_server}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text

    def value(text: str, series: str) -> float:
        found = [line.split()[-1] for line in text.splitlines() if line.startswith(series + " ")]
        return float(found[0]) if found else 0.0

    calls_series = 'tempo_tool_calls_total{tool="list_streams"}'
    errors_series = 'tempo_tool_errors_total{tool="search_moments"}'
    assert value(after, calls_series) == value(before, calls_series) + 1
    assert value(after, errors_series) == value(before, errors_series) + 1
    assert "# TYPE tempo_tool_seconds_total counter" in after


def test_a_non_loopback_address_needs_a_token(tempo_main, monkeypatch):
    monkeypatch.delenv("TEMPO_MCP_TOKEN", raising=False)
    code, _, err = tempo_main("mcp", "--http", "--host", "0.0.0.0", "--port", "1")
    assert code == 2
    assert err.strip().splitlines() == [
        "tempo: error: serving MCP on 0.0.0.0 (not loopback) needs a bearer token: set $TEMPO_MCP_TOKEN or pass "
        "--token-file"
    ]


def test_forged_tool_names_do_not_make_metric_series(http_server):
    """Issue 8 §3: 200 calls with long invented names used to add 200 series to /metrics."""
    auth = {"Authorization": f"Bearer {TOKEN}"}

    async def forged() -> None:
        async with http_client(http_server) as client:
            for i in range(20):
                result = await client.call_tool(f"forged_{i}_" + "x" * 5000, {})
                assert result.is_error

    before = httpx2.get(f"{http_server}/metrics", headers=auth).text
    anyio.run(forged)
    after = httpx2.get(f"{http_server}/metrics", headers=auth).text
    assert "forged" not in after
    assert len(after) < len(before) + 2000
    assert 'tempo_tool_errors_total{tool="_unknown"}' in after
