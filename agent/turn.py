"""Running one question through the agent graph and turning its final state into the `TurnResult`.

    final = final_state(graph, thread_id=None, stream="cam1", question="When does the truck arrive?")
    result = turn_result(final, thread_id=None, model="ckpt", budget=8192, fps=2.0, window=8, gaps=[])

The answer text is streamed through LangGraph's custom stream (`{"answer_text": piece}`) to `on_text`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from tempo.agent.graph import AgentState
from tempo.engine.result import TEMPO_FAMILY, TEMPO_TOKENS_UNIT, TurnResult, rounded_timings, tokens_per_frame
from tempo.memory.records import Gap
from tempo.memory.store_types import StreamInfo


def turn_input(
    stream: str,
    question: str,
    *,
    time_range: tuple[float, float] | None = None,
    streams: list[str] | None = None,
    stream_infos: dict[str, StreamInfo] | None = None,
) -> AgentState:
    """The input of one turn, every input key set (so nothing leaks in from the previous turn) and
    the turn's costs reset. `time_range` was checked at the edge (`tempo.inputs.check_time_range`);
    `streams`: two or more streams asked together (`stream` is then the first of them);
    `stream_infos`: their headers as the caller just read them (else the graph reads them, once)."""
    cross = streams is not None and len(streams) > 1
    return {
        **({"stream_infos": dict(stream_infos)} if stream_infos and cross else {}),  # untracked: never kept
        "stream": stream,
        "streams": list(streams) if streams and len(streams) > 1 else None,
        "question": question,
        "time_range": None if time_range is None else [float(time_range[0]), float(time_range[1])],
        "cache_hits": 0,
        "compressed": 0,
        "answer_cached": False,
        "timings": {},
    }


def final_state(
    graph: Any,
    *,
    thread_id: str | None,
    stream: str,
    question: str,
    time_range: tuple[float, float] | None = None,
    on_text: Callable[[str], None] | None = None,
    durability: str = "exit",
    streams: list[str] | None = None,
    stream_infos: dict[str, StreamInfo] | None = None,
) -> AgentState:
    """The graph's whole final state for one question (typed values included); `thread_id` None for a
    graph compiled without a checkpointer (a question outside any thread).

    `durability="exit"` stores a thread's state once, when the turn ends, rather than after every
    node: a crashed turn is simply asked again (the caches make that cheap). Pass "async" to keep a
    checkpoint per node (the untracked `compression`, `plan` and `timeline` are then recomputed, from
    the caches, by the node that needs them).
    """
    config = {"configurable": {"thread_id": thread_id}} if thread_id is not None else {}
    persist = {"durability": durability} if getattr(graph, "checkpointer", None) is not None else {}
    final: dict[str, Any] = {}
    events: Iterator[tuple[str, Any]] = graph.stream(
        turn_input(stream, question, time_range=time_range, streams=streams, stream_infos=stream_infos),
        config,
        stream_mode=["custom", "values"],
        **persist,
    )
    for mode, payload in events:
        if mode == "custom" and on_text is not None and "answer_text" in payload:
            on_text(payload["answer_text"])
        elif mode == "values":
            final = payload
    return final  # type: ignore[return-value]


def turn_result(
    final: AgentState,
    *,
    thread_id: str | None,
    model: str,
    budget: int,
    fps: float,
    window: int,
    gaps: Sequence[Gap],
    timings: dict[str, float] | None = None,
    family: str = TEMPO_FAMILY,
    tokens_unit: str = TEMPO_TOKENS_UNIT,
) -> TurnResult:
    """The one result of a question answered by the graph (`final`: its final state); `family` and
    `tokens_unit` name the model family that answered and the unit of its tokens."""
    plan = final.get("plan")
    return TurnResult(
        thread_id=thread_id,
        stream=final["stream"],
        source=None,
        model=model,
        sampling="stream",
        real_fps=float(fps),
        question=final["question"],
        standalone_question=final.get("standalone_question") or final["question"],
        rewrite_source=final.get("rewrite_source") or "question",
        time_scope=final.get("time_scope"),
        alerts_scope=None,
        answer=final.get("answer", ""),
        citations=final.get("citations") or [],
        segments=final.get("timeline") or [],
        evidence=final.get("evidence") or [],
        candidates=final.get("candidates") or [],
        top_relevance=final.get("top_relevance"),
        widened=bool(final.get("widened")),
        widen_reason=final.get("widen_reason"),
        budget=int(budget),
        tokens=int(plan.counts.sum()) if plan is not None else 0,
        avg_tokens_per_frame=round(tokens_per_frame(plan, fps, window), 4) if plan is not None else 0.0,
        anchors_dropped=int(plan.anchors_dropped) if plan is not None else 0,
        gaps=[{**g.to_dict(), "note": g.describe()} for g in gaps],  # "no video from t1 to t2"
        cache_hits=int(final.get("cache_hits", 0)),
        compressed=int(final.get("compressed", 0)),
        answer_cached=bool(final.get("answer_cached")),
        timings=rounded_timings({**(final.get("timings") or {}), **(timings or {})}),
        family=family,
        tokens_unit=tokens_unit,
        streams=list(final.get("streams") or [final["stream"]]),
    )
