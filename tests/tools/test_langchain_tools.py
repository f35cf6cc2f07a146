"""Tempo's LangChain tools inside LangGraph's prebuilt ReAct agent, driven by a scripted chat model
that calls them; the tools run on the real memory and their results reach the model."""

from __future__ import annotations

import json
import warnings

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.prebuilt import create_react_agent
from tempo.agent.conversations import Conversations
from tempo.agent.toolkit import VideoToolkit
from tempo.settings import AskSettings
from tempo.tools.langchain_tools import tempo_tools

FIRST_QUESTION = "Where is the square at the beginning?"  # the cli_thread fixture's questions
FOLLOW_UP = "and after that?"



class ScriptedChatModel(GenericFakeChatModel):
    """Replies with the scripted messages in order; tools are 'bound' by being called by name."""

    def bind_tools(self, tools, **kwargs):
        return self


def call(name: str, args: dict, call_id: str) -> dict:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


@pytest.fixture()
def fresh_toolkit(live_service) -> VideoToolkit:
    # No answer cache: answers are generated again, so equality with the CLI's is a real check.
    return VideoToolkit(Conversations(live_service, settings=AskSettings(max_new_tokens=12, answer_cache=False)))


def run_agent(tools, script: list[AIMessage]) -> dict[str, ToolMessage]:
    with warnings.catch_warnings():
        # Deprecated in favour of langchain's create_agent, which is not installed here.
        warnings.simplefilter("ignore")
        agent = create_react_agent(ScriptedChatModel(messages=iter(script)), tools)
    final = agent.invoke({"messages": [HumanMessage("Tell me about the camera.")]})
    assert final["messages"][-1].content == script[-1].content
    return {m.tool_call_id: m for m in final["messages"] if isinstance(m, ToolMessage)}


def test_tools_have_typed_input_schemas(fresh_toolkit):
    tools = {t.name: t for t in tempo_tools(fresh_toolkit)}
    assert set(tools) == {"ask_video", "search_moments", "list_streams", "list_alerts", "transcript"}
    ask = tools["ask_video"].tool_call_schema.model_json_schema()
    assert ask["required"] == ["question"]  # no stream: across all streams
    assert set(ask["properties"]) == {"question", "stream", "thread_id", "start", "end"}
    search = tools["search_moments"].tool_call_schema.model_json_schema()
    assert search["properties"]["top_k"]["minimum"] == 1 and search["properties"]["top_k"]["default"] == 5


def test_react_agent_calls_the_tools_and_gets_the_cli_answers(fresh_toolkit, cli_thread):
    thread = "langchain-thread-1"
    on_thread = {"stream": "cam", "thread_id": thread}
    script = [
        AIMessage("", tool_calls=[call("list_streams", {}, "c1")]),
        AIMessage("", tool_calls=[call("ask_video", {"question": FIRST_QUESTION, **on_thread}, "c2")]),
        AIMessage("", tool_calls=[call("ask_video", {"question": FOLLOW_UP, **on_thread}, "c3")]),
        AIMessage("", tool_calls=[call("search_moments", {"query": "a square", "stream": "cam", "top_k": 3}, "c4")]),
        AIMessage("The square moves across the picture."),
    ]
    results = run_agent(tempo_tools(fresh_toolkit), script)

    streams = json.loads(results["c1"].content)["streams"]
    assert [s["name"] for s in streams] == ["cam"] and streams[0]["segments"] == 10
    first, second = json.loads(results["c2"].content), json.loads(results["c3"].content)
    cli_first, cli_second = cli_thread["turns"]
    # Same question and thread state as the two `tempo chat` processes: same rewrite, answer, citations.
    assert (first["answer"], first["citations"]) == (cli_first["answer"], cli_first["citations"])
    assert second["standalone_question"] == cli_second["standalone_question"]
    assert (second["answer"], second["citations"]) == (cli_second["answer"], cli_second["citations"])
    assert first["thread_id"] == second["thread_id"] == thread
    # The scope read and how the question was rewritten come back too ("at the beginning": 0-30 s of 40 s).
    assert first["time_scope"]["ranges"] == [{"start": 0.0, "end": 30.0}] and first["rewrite_source"] == "question"
    assert second["rewrite_source"] in ("model", "fallback") and "time_scope" in second
    moments = json.loads(results["c4"].content)["moments"]
    assert len(moments) == 3 and [m["score"] for m in moments] == sorted((m["score"] for m in moments), reverse=True)
    assert all(0 <= m["start"] < m["end"] <= 41 for m in moments)


def test_ask_video_and_search_moments_without_a_stream_cover_every_stream_one_shot(fresh_toolkit):
    script = [
        AIMessage("", tool_calls=[call("ask_video", {"question": "What moves?"}, "a1")]),
        AIMessage("", tool_calls=[call("search_moments", {"query": "a square", "top_k": 2}, "s1")]),
        AIMessage("Done."),
    ]
    before = fresh_toolkit.conversations.list_threads()
    results = run_agent(tempo_tools(fresh_toolkit), script)
    asked = json.loads(results["a1"].content)
    assert asked["streams"] == ["cam"] and asked["thread_id"] is None  # one-shot: no thread made
    assert all(c["stream"] == "cam" for c in asked["citations"])
    found = json.loads(results["s1"].content)
    assert found["stream"] is None and [m["stream"] for m in found["moments"]] == ["cam", "cam"]
    assert fresh_toolkit.conversations.list_threads() == before


def test_bad_tool_calls_come_back_as_one_sentence_errors(fresh_toolkit):
    script = [
        AIMessage(
            "",
            tool_calls=[
                call("search_moments", {"query": "square", "stream": "cam", "top_k": 0}, "e1"),
                call("ask_video", {"question": "What happens?", "stream": "nope"}, "e2"),
                call("ask_video", {"stream": "cam"}, "e3"),
                call("ask_video", {"question": "What happens?", "stream": "cam", "start": 30, "end": 10}, "e4"),
            ],
        ),
        AIMessage("Sorry."),
    ]
    results = run_agent(tempo_tools(fresh_toolkit), script)
    assert results["e1"].content == "search_moments: invalid 'top_k': input should be greater than or equal to 1."
    assert "'nope'" in results["e2"].content and results["e2"].status == "error"
    assert results["e3"].content == "ask_video: the argument 'question' is required."
    assert results["e4"].content == "the time scope must end after it starts (got 30 s to 10 s)"
    for message in results.values():
        assert "\n" not in message.content and "Traceback" not in message.content
