"""Real compiled LangGraph graphs persisting through RedisCheckpointSaver."""

from __future__ import annotations

import asyncio
import json
import operator
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Annotated, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from tempo.agent.checkpoint import RedisCheckpointSaver


class ChatState(TypedDict):
    question: str
    history: Annotated[list[str], operator.add]  # every turn appends
    answer: str


def answer_node(state: ChatState) -> dict[str, object]:
    # Deterministic stand-in for a model: the answer depends on how much history the node received.
    return {"answer": f"turn {len(state.get('history', [])) + 1}: {state['question']}"}


def record_node(state: ChatState) -> dict[str, object]:
    return {"history": [state["question"]]}


def build_chat(saver: RedisCheckpointSaver):
    builder = StateGraph(ChatState)
    builder.add_node("answer", answer_node)
    builder.add_node("record", record_node)
    builder.add_edge(START, "answer")
    builder.add_edge("answer", "record")
    builder.add_edge("record", END)
    return builder.compile(checkpointer=saver)


def thread(thread_id: str) -> dict[str, object]:
    return {"configurable": {"thread_id": thread_id}}


def test_state_persists_across_two_saver_instances(redis_url: str) -> None:
    first = RedisCheckpointSaver.from_url(redis_url)
    out1 = build_chat(first).invoke({"question": "who came in?"}, thread("conv"))
    first.close()
    second = RedisCheckpointSaver.from_url(redis_url)
    out2 = build_chat(second).invoke({"question": "and after that?"}, thread("conv"))
    assert out1["answer"] == "turn 1: who came in?"
    assert out2["answer"] == "turn 2: and after that?"
    assert out2["history"] == ["who came in?", "and after that?"]
    other = build_chat(second).invoke({"question": "hello"}, thread("other"))
    assert other["history"] == ["hello"]


SCRIPT = textwrap.dedent(
    """
    import json, sys
    from typing import Annotated, TypedDict
    import operator
    from langgraph.graph import END, START, StateGraph
    from tempo.agent.checkpoint import RedisCheckpointSaver

    class ChatState(TypedDict):
        question: str
        history: Annotated[list[str], operator.add]

    def record(state):
        return {"history": [state["question"]]}

    url, thread_id, question = sys.argv[1:4]
    builder = StateGraph(ChatState)
    builder.add_node("record", record)
    builder.add_edge(START, "record")
    builder.add_edge("record", END)
    graph = builder.compile(checkpointer=RedisCheckpointSaver.from_url(url))
    out = graph.invoke({"question": question}, {"configurable": {"thread_id": thread_id}})
    print(json.dumps(out["history"]))
    """
)


def test_state_persists_across_two_processes(redis_url: str, tmp_path: Path) -> None:
    script = tmp_path / "turn.py"
    script.write_text(SCRIPT)
    outputs = []
    for question in ("what happened at the door?", "who was it?"):
        done = subprocess.run(
            [sys.executable, str(script), redis_url, "conv", question],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        outputs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert outputs == [
        ["what happened at the door?"],
        ["what happened at the door?", "who was it?"],
    ]


class ApprovalState(TypedDict):
    request: str
    decision: str


def ask_human(state: ApprovalState) -> dict[str, str]:
    decision = interrupt(f"approve {state['request']}?")
    return {"decision": decision}


def build_approval(saver: RedisCheckpointSaver):
    builder = StateGraph(ApprovalState)
    builder.add_node("ask_human", ask_human)
    builder.add_edge(START, "ask_human")
    builder.add_edge("ask_human", END)
    return builder.compile(checkpointer=saver)


def test_interrupt_then_resume_from_another_saver_instance(redis_url: str) -> None:
    first = RedisCheckpointSaver.from_url(redis_url)
    paused = build_approval(first).invoke({"request": "export"}, thread("approval"))
    assert [i.value for i in paused["__interrupt__"]] == ["approve export?"]
    state = build_approval(first).get_state(thread("approval"))
    assert state.next == ("ask_human",)
    first.close()

    second = RedisCheckpointSaver.from_url(redis_url)
    resumed = build_approval(second).invoke(Command(resume="yes"), thread("approval"))
    assert resumed == {"request": "export", "decision": "yes"}
    assert build_approval(second).get_state(thread("approval")).next == ()


def test_interrupt_inside_a_subgraph_uses_its_own_namespace(redis_url: str) -> None:
    saver = RedisCheckpointSaver.from_url(redis_url)
    inner = StateGraph(ApprovalState)
    inner.add_node("ask_human", ask_human)
    inner.add_edge(START, "ask_human")
    inner.add_edge("ask_human", END)
    outer = StateGraph(ApprovalState)
    outer.add_node("inner", inner.compile())
    outer.add_edge(START, "inner")
    outer.add_edge("inner", END)
    graph = outer.compile(checkpointer=saver)

    paused = graph.invoke({"request": "delete"}, thread("nested"))
    assert [i.value for i in paused["__interrupt__"]] == ["approve delete?"]
    namespaces = {t.config["configurable"]["checkpoint_ns"] for t in saver.list(thread("nested"))}
    assert "" in namespaces and any(ns.startswith("inner:") for ns in namespaces)
    assert graph.invoke(Command(resume="no"), thread("nested")) == {"request": "delete", "decision": "no"}


def history_summary(graph, config) -> list[tuple]:
    return [
        (s.metadata["source"], s.metadata["step"], s.next, s.values)
        for s in graph.get_state_history(config)
    ]


def test_state_history_matches_langgraphs_in_memory_saver(redis_url: str) -> None:
    redis_graph = build_chat(RedisCheckpointSaver.from_url(redis_url))
    memory_graph = build_chat(InMemorySaver())
    for graph in (redis_graph, memory_graph):
        graph.invoke({"question": "q1"}, thread("hist"))
        graph.invoke({"question": "q2"}, thread("hist"))
    history = history_summary(redis_graph, thread("hist"))
    assert history == history_summary(memory_graph, thread("hist"))
    # Per invoke 4 checkpoints: the input, the loop start, after 'answer', after 'record'.
    assert len(history) == 8
    assert [h[1] for h in history] == [6, 5, 4, 3, 2, 1, 0, -1]
    assert history[0] == ("loop", 6, (), {"question": "q2", "history": ["q1", "q2"], "answer": "turn 2: q2"})


def test_time_travel_to_an_earlier_checkpoint(redis_url: str) -> None:
    graph = build_chat(RedisCheckpointSaver.from_url(redis_url))
    graph.invoke({"question": "q1"}, thread("tt"))
    graph.invoke({"question": "q2"}, thread("tt"))
    snaps = list(graph.get_state_history(thread("tt")))
    after_first = next(s for s in snaps if s.values.get("history") == ["q1"] and s.next == ())
    assert graph.get_state(after_first.config).values["answer"] == "turn 1: q1"
    # Replaying a new question from there forks: the branch does not see q2.
    forked = graph.invoke({"question": "q2-bis"}, after_first.config)
    assert forked["history"] == ["q1", "q2-bis"]
    assert [s.config for s in graph.get_state_history(thread("tt"), limit=2)] == [
        s.config for s in list(graph.get_state_history(thread("tt")))[:2]
    ]


def test_async_invoke_persists_and_resumes(redis_url: str) -> None:
    saver = RedisCheckpointSaver.from_url(redis_url)

    async def scenario() -> tuple[dict, dict, list]:
        graph = build_chat(saver)
        a = await graph.ainvoke({"question": "first"}, thread("async"))
        b = await graph.ainvoke({"question": "second"}, thread("async"))
        snaps = [s async for s in graph.aget_state_history(thread("async"))]
        return a, b, snaps

    a, b, snaps = asyncio.run(scenario())
    assert a["answer"] == "turn 1: first"
    assert b["history"] == ["first", "second"]
    assert len(snaps) == 8
    # What the async run wrote, a sync reader sees.
    assert build_chat(saver).get_state(thread("async")).values["history"] == ["first", "second"]


def test_update_state_forks_a_new_checkpoint(redis_url: str) -> None:
    saver = RedisCheckpointSaver.from_url(redis_url)
    graph = build_chat(saver)
    graph.invoke({"question": "q1"}, thread("upd"))
    graph.update_state(thread("upd"), {"history": ["edited"]})
    state = graph.get_state(thread("upd"))
    assert state.values["history"] == ["q1", "edited"]
    assert state.metadata["source"] == "update"


def test_copy_thread_forks_a_conversation(redis_url: str) -> None:
    saver = RedisCheckpointSaver.from_url(redis_url)
    graph = build_chat(saver)
    graph.invoke({"question": "q1"}, thread("orig"))
    saver.copy_thread("orig", "copy")
    assert graph.invoke({"question": "q2-copy"}, thread("copy"))["history"] == ["q1", "q2-copy"]
    assert graph.invoke({"question": "q2-orig"}, thread("orig"))["history"] == ["q1", "q2-orig"]
    assert len(list(graph.get_state_history(thread("copy")))) == 8


class FanState(TypedDict):
    items: Annotated[list[str], operator.add]


def test_a_failed_parallel_task_resumes_without_rerunning_the_one_that_succeeded(redis_url: str) -> None:
    runs: list[str] = []
    fail = {"flaky": True}

    def steady(state: FanState) -> dict[str, list[str]]:
        runs.append("steady")
        return {"items": ["steady"]}

    def flaky(state: FanState) -> dict[str, list[str]]:
        runs.append("flaky")
        if fail["flaky"]:
            raise RuntimeError("transient failure")
        return {"items": ["flaky"]}

    builder = StateGraph(FanState)
    builder.add_node("steady", steady)
    builder.add_node("flaky", flaky)
    builder.add_edge(START, "steady")
    builder.add_edge(START, "flaky")
    builder.add_edge("steady", END)
    builder.add_edge("flaky", END)

    first = builder.compile(checkpointer=RedisCheckpointSaver.from_url(redis_url))
    try:
        first.invoke({"items": []}, thread("fan"))
    except RuntimeError:
        pass
    else:
        raise AssertionError("the flaky node should have failed")
    # The successful task's writes were saved as pending writes of the checkpoint.
    pending = RedisCheckpointSaver.from_url(redis_url).get_tuple(thread("fan")).pending_writes
    assert ("items", ["steady"]) in [(channel, value) for _, channel, value in pending]

    fail["flaky"] = False
    second = builder.compile(checkpointer=RedisCheckpointSaver.from_url(redis_url))
    out = second.invoke(None, thread("fan"))
    assert sorted(out["items"]) == ["flaky", "steady"]
    assert sorted(runs) == ["flaky", "flaky", "steady"]  # 'steady' ran once
