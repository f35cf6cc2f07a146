"""One set of input limits on every entry point (issue 8 §4, issue 9): the question is not blank,
at most QUESTION_MAX_CHARS characters, and must leave room for video in the LLM context; the MCP
tool schemas are generated from the same pydantic models, limits included."""

from __future__ import annotations

import sys

import anyio
from langchain_core.messages import ToolMessage
from mcp import Client, StdioServerParameters
from tempo.inputs import QUESTION_MAX_CHARS, TOOL_INPUTS

TOO_LONG = "Where is the square? " * (QUESTION_MAX_CHARS // 20)  # > QUESTION_MAX_CHARS characters
NO_ROOM = "tempo: error: the question is too long: it leaves no room for video in the model's 24-token context"


def test_cli_ask_refuses_blank_and_overlong_questions(tempo_main, live_memory):
    video = str(live_memory.root / "cam.mp4")
    for args in ((video,), ("--stream", "cam"), ("--stream", "cam", "--thread", "limits-1")):
        for question, problem in (
            ("", "string should have at least 1 character"),
            ("  \n ", "string should have at least 1 character"),
            (TOO_LONG, f"string should have at most {QUESTION_MAX_CHARS} characters"),
        ):
            code, out, err = tempo_main("ask", *args, question)
            assert (code, out) == (2, "")
            assert err.splitlines() == [f"tempo: error: invalid question: {problem}"]


def test_cli_ask_refuses_a_question_that_leaves_no_room_for_video(tempo_main, live_memory):
    video = str(live_memory.root / "cam.mp4")
    for args in ((video,), ("--stream", "cam"), ("--stream", "cam", "--thread", "limits-2")):
        code, out, err = tempo_main("ask", *args, "What is in the picture?", "--context-limit", "24")
        # (in this process transformers may print its loading bar before the error line)
        assert (code, out, err.splitlines()[-1]) == (2, "", NO_ROOM) and "Traceback" not in err
    # The same question with room for video is answered.
    code, out, err = tempo_main("ask", "--stream", "cam", "What is in the picture?", "--max-new-tokens", "4", "--json")
    assert code == 0, err


def test_chat_refuses_an_overlong_line_and_carries_on(tempo_main):
    lines = f"{TOO_LONG}\nWhat is in the picture?\n"
    code, out, err = tempo_main("chat", "--stream", "cam", "--thread", "limits-3", "--max-new-tokens", "4", stdin=lines)
    assert code == 0, err
    assert f"error: invalid question: string should have at most {QUESTION_MAX_CHARS} characters" in out
    assert out.count("tempo> ") == 1 and "citations: " in out


def test_langchain_tools_apply_the_same_limits(live_service):
    from tempo.tools.langchain_tools import tempo_tools

    tools = {t.name: t for t in tempo_tools(live_service)}
    for name, args, expected in (
        ("ask_video", {"question": TOO_LONG, "stream": "cam"},
         f"ask_video: invalid 'question': string should have at most {QUESTION_MAX_CHARS} characters."),
        ("ask_video", {"question": "   ", "stream": "cam"},
         "ask_video: invalid 'question': string should have at least 1 character."),
        ("search_moments", {"query": "a square", "stream": "bad name!"},
         "search_moments: invalid 'stream': use 1-128 letters, digits, '.', '_' or '-', starting with a letter or "
         "digit."),
        ("search_moments", {"query": "a square", "stream": "cam", "start": float("nan")},
         "search_moments: invalid 'start': input should be a finite number."),
    ):
        message = tools[name].invoke({"name": name, "args": args, "id": "c1", "type": "tool_call"})
        assert isinstance(message, ToolMessage) and message.content == expected


def test_mcp_tool_schemas_are_the_input_models_and_apply_their_limits(live_memory):
    async def session() -> tuple[dict, list]:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "tempo.tools.mcp_server"], env=live_memory.env()
        )
        async with Client(params, read_timeout_seconds=120) as client:
            schemas = {t.name: t.input_schema for t in (await client.list_tools()).tools}
            results = [
                await client.call_tool("ask_video", {"question": TOO_LONG, "stream": "cam"}),
                await client.call_tool("ask_video", {"question": "", "stream": "cam"}),
                await client.call_tool("search_moments", {"query": "square", "stream": "cam", "top_k": 51}),
            ]
            return schemas, results

    schemas, results = anyio.run(session)
    for name, model in TOOL_INPUTS.items():
        expected = model.model_json_schema()["properties"]
        published = schemas[name]["properties"]
        assert set(published) == set(expected)
        for field, spec in expected.items():  # the same types, limits, patterns and defaults
            assert {k: v for k, v in published[field].items() if k != "title"} == {
                k: v for k, v in spec.items() if k != "title"
            }, field
    assert schemas["ask_video"]["properties"]["question"]["maxLength"] == QUESTION_MAX_CHARS
    texts = [r.content[0].text for r in results]
    assert all(r.is_error for r in results)
    assert texts == [
        f"ask_video: invalid 'question': string should have at most {QUESTION_MAX_CHARS} characters.",
        "ask_video: invalid 'question': string should have at least 1 character.",
        "search_moments: invalid 'top_k': input should be less than or equal to 50.",
    ]
