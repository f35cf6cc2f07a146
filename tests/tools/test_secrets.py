"""Credentials in URLs never reach a user or a remote client (issue 8 §2): one rule (`redact_url`),
applied to error messages, `tempo memory status [--json]`, listed sources, and MCP / LangChain tool
errors."""

from __future__ import annotations

import json
import subprocess
import sys

import anyio
import pytest
from langchain_core.messages import ToolMessage
from mcp import Client, StdioServerParameters
from tempo.errors import redact_secrets, redact_url

SECRET = "hunter2-S3cret"
CLOSED = "127.0.0.1:1"  # nothing listens on port 1


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://:{SECRET}@10.0.0.5:6379/0", "redis://:***@10.0.0.5:6379/0"),
        (f"rediss://default:{SECRET}@cache.example:6380", "rediss://default:***@cache.example:6380"),
        (f"unix://:{SECRET}@/run/redis.sock", "unix://:***@/run/redis.sock"),
        (f"rtsp://admin:{SECRET}@192.168.1.20:554/stream1", "rtsp://admin:***@192.168.1.20:554/stream1"),
        (f"https://{SECRET}@cdn.example/live.m3u8", "https://***@cdn.example/live.m3u8"),
        (f"https://cdn.example/v.mp4?token={SECRET}&t=3", "https://cdn.example/v.mp4?token=***&t=3"),
        (f"s3://b/v.mp4?X-Amz-Signature={SECRET}", "s3://b/v.mp4?X-Amz-Signature=***"),
        (f"rtsp://u:p@ss:{SECRET}@cam/1", "rtsp://u:***@cam/1"),  # '@' in the password
        ("rtsp://camera.local:554/stream1", "rtsp://camera.local:554/stream1"),
        ("/videos/a:b@c.mp4", "/videos/a:b@c.mp4"),  # a path, not a URL
        ("-", "-"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_redact_secrets_finds_every_url_in_a_message():
    message = f"stream 's' was ingested from 'rtsp://a:{SECRET}@cam/1', not 'rtsp://a:{SECRET}@cam/2'; use another"
    shown = "stream 's' was ingested from 'rtsp://a:***@cam/1', not 'rtsp://a:***@cam/2'; use another"
    assert redact_secrets(message) == shown


def tempo(*args: str, env: dict[str, str], cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tempo.tools.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60
    )


@pytest.fixture()
def secret_env(live_memory, tmp_path) -> dict[str, str]:
    return {**live_memory.env(), "TEMPO_HOME": str(tmp_path), "TEMPO_REDIS_URL": f"redis://:{SECRET}@{CLOSED}/0"}


def test_the_redis_password_is_not_in_cli_errors(secret_env):
    for args in (("streams",), ("streams", "--json"), ("threads",), ("ask", "--stream", "cam", "what?")):
        done = tempo(*args, env=secret_env)
        assert done.returncode == 2
        assert SECRET not in done.stderr + done.stdout
        (line,) = done.stderr.splitlines()
        assert line.startswith(f"tempo: error: cannot reach Redis at redis://:***@{CLOSED}/0 (")
        assert line.endswith("); start it or fix TEMPO_REDIS_URL")
    done = tempo("streams", "--redis-url", f"redis://u:{SECRET}@{CLOSED}/0", env=secret_env)
    assert done.returncode == 2 and SECRET not in done.stderr and "redis://u:***@" in done.stderr


def test_the_redis_password_is_not_in_memory_status(secret_env):
    done = tempo("memory", "status", "--json", env=secret_env)
    assert done.returncode == 0 and SECRET not in done.stdout + done.stderr
    assert json.loads(done.stdout)["external_url"] == f"redis://:***@{CLOSED}/0"
    done = tempo("memory", "status", env=secret_env)
    assert done.returncode == 0 and SECRET not in done.stdout + done.stderr
    assert f"Tempo uses redis://:***@{CLOSED}/0 instead" in done.stdout


def test_a_camera_password_is_not_in_source_errors(secret_env, live_memory, tmp_path):
    for source in (f"rtsp://admin:{SECRET}@{CLOSED}/live", f"http://{SECRET}@{CLOSED}/live.m3u8"):
        done = tempo("segments", source, env=secret_env)
        assert done.returncode == 2 and SECRET not in done.stderr
        (line,) = done.stderr.splitlines()
        assert line.startswith("tempo: error: could not connect to '") and "***@127.0.0.1:1/live" in line


def test_the_redis_password_is_not_in_mcp_tool_errors(secret_env):
    async def calls() -> list:
        params = StdioServerParameters(command=sys.executable, args=["-m", "tempo.tools.mcp_server"], env=secret_env)
        async with Client(params, read_timeout_seconds=60) as client:
            return [
                await client.call_tool("list_streams", {}),
                await client.call_tool("ask_video", {"question": "What happens?", "stream": "cam"}),
            ]

    for result in anyio.run(calls):
        assert result.is_error
        (content,) = result.content
        assert SECRET not in content.text
        # The SDK prefixes "Error executing tool NAME: "; the sentence after it is ours, redacted.
        assert f": cannot reach Redis at redis://:***@{CLOSED}/0 (" in content.text


def test_the_redis_password_is_not_in_langchain_tool_errors(live_memory):
    from tempo.service import TempoService
    from tempo.tools.langchain_tools import tempo_tools

    service = TempoService(model=str(live_memory.model_dir), redis_url=f"redis://:{SECRET}@{CLOSED}/0")
    tools = {t.name: t for t in tempo_tools(service)}
    call = {"name": "list_streams", "args": {}, "id": "c1", "type": "tool_call"}
    message = tools["list_streams"].invoke(call)
    assert isinstance(message, ToolMessage) and message.status == "error"
    assert SECRET not in message.content and message.content.startswith("cannot reach Redis at redis://:***@")


def test_log_records_are_redacted():
    import logging

    from tempo.tools.cli import _redact_record

    url = f"rtsp://a:{SECRET}@cam/1"
    record = logging.LogRecord("tempo", logging.WARNING, __file__, 1, "reconnecting to %s", (url,), None)
    assert _redact_record(record) and record.getMessage() == "reconnecting to rtsp://a:***@cam/1"
