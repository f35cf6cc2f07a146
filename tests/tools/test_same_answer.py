"""One question, one answer, whichever way it arrives: `tempo ask --stream`, `tempo ask --thread`,
`tempo chat`, MCP and LangChain all run the same recall pipeline with the same settings.

The answer cache is off everywhere (in-process: `AskSettings(answer_cache=False)`; for the CLI
subprocesses its keys are deleted before each call), so every answer is generated again and
equality is a real check of the plan each entry point made.
"""

from __future__ import annotations

import json

import anyio
import redis
from mcp import Client
from tempo.agent.conversations import Conversations
from tempo.agent.threads import ThreadStore
from tempo.agent.toolkit import VideoToolkit
from tempo.settings import AskSettings
from tempo.tools.langchain_tools import tempo_tools
from tempo.tools.mcp_server import build_server

QUESTION = "Where is the square in the middle of the video?"
MAX_NEW = "12"


def _drop_answer_cache(url: str) -> None:
    client = redis.Redis.from_url(url)
    for key in client.scan_iter("tempo:ac:*"):
        client.delete(key)


def test_every_entry_point_gives_the_same_answer(live_memory, live_service, tempo_cli) -> None:
    answers: dict[str, str] = {}

    _drop_answer_cache(live_memory.url)
    done = tempo_cli("ask", "--stream", "cam", "--json", "--max-new-tokens", MAX_NEW, QUESTION)
    assert done.returncode == 0, done.stderr
    answers["tempo ask --stream"] = json.loads(done.stdout)["answer"]

    _drop_answer_cache(live_memory.url)
    done = tempo_cli("ask", "--stream", "cam", "--thread", "same-1", "--json", "--max-new-tokens", MAX_NEW, QUESTION)
    assert done.returncode == 0, done.stderr
    answers["tempo ask --thread"] = json.loads(done.stdout)["answer"]

    _drop_answer_cache(live_memory.url)
    chat = ("chat", "--stream", "cam", "--thread", "same-2", "--max-new-tokens", MAX_NEW)
    done = tempo_cli(*chat, stdin=QUESTION + "\n")
    assert done.returncode == 0, done.stderr
    answers["tempo chat"] = ThreadStore(redis.Redis.from_url(live_memory.url)).show("same-2")["turns"][0]["answer"]

    settings = AskSettings(max_new_tokens=int(MAX_NEW), answer_cache=False)
    toolkit = VideoToolkit(Conversations(live_service, settings=settings))

    async def over_mcp() -> str:
        async with Client(build_server(toolkit), read_timeout_seconds=120) as client:
            result = await client.call_tool("ask_video", {"question": QUESTION, "stream": "cam"})
            return result.structured_content["answer"]

    answers["MCP"] = anyio.run(over_mcp)
    ask_video = tempo_tools(toolkit)[0]
    answers["LangChain"] = json.loads(ask_video.invoke({"question": QUESTION, "stream": "cam"}))["answer"]
    answers["Conversations.ask_once"] = Conversations(live_service, settings=settings).ask_once("cam", QUESTION)[
        "answer"
    ]

    assert len(set(answers.values())) == 1, answers
