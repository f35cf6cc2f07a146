"""Issue 8 §2–3 on the HTTP servers (`tempo mcp --http`; `tempo serve` shares the same guard): where
the token comes from, short tokens refused, `bearer` in any case, Host/Origin checks on every route
(loopback parsed, not spelled), and /metrics through prometheus_client with known tool names only.

The MCP app runs in process here (httpx over ASGI) on a toolkit factory that is never called: none of
these requests reaches a tool.
"""

from __future__ import annotations

import anyio
import httpx
import pytest
from tempo.tools.http_metrics import UNKNOWN_TOOL, ToolMetrics
from tempo.tools.http_security import HTTPConfigError, host_name, is_loopback, resolve_token
from tempo.tools.mcp_server import TOOL_NAMES, build_server, http_app

TOKEN = "s3cret-token-0123456789"


def no_toolkit():
    raise AssertionError("no tool should run in these tests")


def request(app, method: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765") as client:
            return await client.request(method, path, headers=headers or {})

    return anyio.run(go)


@pytest.fixture()
def open_app():
    """`tempo mcp --http` on loopback without a token."""
    return http_app(build_server(no_toolkit), host="127.0.0.1", token=None)


@pytest.fixture()
def token_app():
    return http_app(build_server(no_toolkit), host="0.0.0.0", token=TOKEN)


# ----- token sources ---------------------------------------------------------------------------------


def test_token_from_the_environment(capsys):
    assert resolve_token(environ={"TEMPO_MCP_TOKEN": TOKEN}) == TOKEN
    assert capsys.readouterr().err == ""


def test_token_from_a_file_wins_and_loses_its_trailing_newline(tmp_path, capsys):
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    assert resolve_token(token_file=str(path), environ={"TEMPO_MCP_TOKEN": "other-token-abcdefghij"}) == TOKEN
    assert capsys.readouterr().err == ""


def test_token_on_the_command_line_warns_that_ps_shows_it(capsys):
    assert resolve_token(flag=TOKEN, environ={}) == TOKEN
    err = capsys.readouterr().err
    assert err.startswith("tempo: warning: --token is visible to other users in `ps`")
    assert TOKEN not in err


@pytest.mark.parametrize("bad", ["", "   ", "\t\n", "short-token", "x" * 15])
def test_blank_or_short_tokens_are_refused(bad):
    with pytest.raises(HTTPConfigError) as exc:
        resolve_token(environ={"TEMPO_MCP_TOKEN": bad})
    message = str(exc.value)
    assert "blank" in message or "shorter than 16 characters" in message
    if bad.strip():
        assert bad not in message  # the (bad) secret is not echoed


def test_an_unreadable_token_file_is_one_sentence(tmp_path):
    with pytest.raises(HTTPConfigError, match=r"^cannot read the token file .*missing: FileNotFoundError$"):
        resolve_token(token_file=str(tmp_path / "missing"), environ={})


def test_cli_refuses_a_short_token_in_one_line(monkeypatch, capsys):
    from tempo.tools.cli import main

    monkeypatch.setenv("TEMPO_MCP_TOKEN", "abc")
    code = main(["mcp", "--http", "--port", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [
        "tempo: error: the bearer token from $TEMPO_MCP_TOKEN is shorter than 16 characters; use a long random one"
    ]


# ----- bearer scheme --------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_accepted_in_any_case(token_app, scheme):
    got = request(token_app, "GET", "/metrics", {"Authorization": f"{scheme} {TOKEN}"})
    assert got.status_code == 200


@pytest.mark.parametrize(
    "value", ["", TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer", "Bearer  "]
)
def test_anything_but_the_token_is_refused(token_app, value):
    got = request(token_app, "GET", "/metrics", {"Authorization": value} if value else {})
    assert got.status_code == 401
    assert got.headers["www-authenticate"].startswith("Bearer")
    assert got.headers["content-type"] == "application/problem+json"


def test_health_needs_no_token(token_app):
    assert request(token_app, "GET", "/health").json() == {"status": "ok", "server": "tempo"}


# ----- Host / Origin without a token --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/metrics", "/health", "/mcp"])
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "10.0.0.1:8765", "127.0.0.1.evil.example"])
def test_a_foreign_host_is_refused_on_every_route(open_app, path, host):
    got = request(open_app, "GET", path, {"Host": host})
    assert got.status_code == 421
    assert got.json()["status"] == 421


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8765", "127.0.0.2:8765", "localhost:8765", "[::1]:8765", "[0:0:0:0:0:0:0:1]:8765", "127.1.2.3"]
)
def test_loopback_hosts_in_any_spelling_are_served(open_app, host):
    assert request(open_app, "GET", "/metrics", {"Host": host}).status_code == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "https://127.0.0.1.evil.example", "null"])
def test_a_foreign_origin_is_refused(open_app, origin):
    got = request(open_app, "GET", "/metrics", {"Host": "127.0.0.1:8765", "Origin": origin})
    assert got.status_code == 403


def test_a_loopback_origin_is_served(open_app):
    got = request(open_app, "GET", "/metrics", {"Host": "127.0.0.1:8765", "Origin": "http://127.0.0.2:3000"})
    assert got.status_code == 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("127.0.0.2", True),
        ("0:0:0:0:0:0:0:1", True),
        ("[0:0:0:0:0:0:0:1]", True),
        ("0.0.0.0", False),
        ("192.168.1.10", False),
        ("example.com", False),
        ("127.0.0.1.nip.io", False),
        ("", False),
    ],
)
def test_loopback_addresses_are_parsed(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:80", "127.0.0.1"),
        ("[::1]:8000", "::1"),
        ("[0:0:0:0:0:0:0:1]", "0:0:0:0:0:0:0:1"),
        ("evil.example", "evil.example"),
        ("::1", "::1"),
    ],
)
def test_host_header_names(header, name):
    assert host_name(header) == name


# ----- metrics ------------------------------------------------------------------------------------------


def test_unknown_tool_names_share_one_label():
    metrics = ToolMetrics(TOOL_NAMES)
    for i in range(200):
        metrics.record(f"forged_{i}_" + "x" * 1000, 0.0, error=True)
    metrics.record("list_streams", 0.5, error=False)
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode()
    assert "forged" not in text and len(text) < 4000
    assert f'tempo_tool_calls_total{{tool="{UNKNOWN_TOOL}"}} 200.0' in text
    assert 'tempo_tool_calls_total{tool="list_streams"} 1.0' in text
    assert 'tempo_tool_seconds_total{tool="list_streams"} 0.5' in text


# ----- request bodies (`tempo mcp --http --max-body`) -------------------------------------------------


def post(app, body, headers: dict[str, str]) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765") as client:
            return await client.post("/mcp", content=body, headers=headers)

    return anyio.run(go)


MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def test_an_mcp_body_over_the_limit_is_413_by_its_length_and_when_chunked():
    app = http_app(build_server(no_toolkit), host="127.0.0.1", token=None, max_body=1024)
    big = b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "' + b"x" * 4096 + b'"}}'
    by_length = post(app, big, MCP_HEADERS)
    assert by_length.status_code == 413
    assert "larger than 1024 bytes" in by_length.json()["detail"]

    async def chunks():
        for start in range(0, len(big), 512):
            yield big[start : start + 512]

    chunked = post(app, chunks(), MCP_HEADERS)  # no Content-Length: read up to the limit, then refused
    assert chunked.status_code == 413
