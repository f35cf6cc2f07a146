"""The agent: one LangGraph StateGraph, wired in `build_agent_graph`, over a `MemoryBackend`.

    rewrite -> retrieve -> compress -(weak evidence, first time)-> widen -> retrieve -> ...
                                    \\-(otherwise)-> allocate -> answer -> cite -> remember

- rewrite: a follow-up becomes a standalone question (the model's rewrite if the validator accepts
  it, else the deterministic fallback; a follow-up that moves in time, "and after that?", is always
  rewritten deterministically with clock times), and the time scope is resolved (explicit
  `time_range`, else time words of the question — several ranges, relative words resolved against
  the previous turn, tempo.agent.scopes — else of the standalone question, else — for a follow-up —
  the previous turn's ranges). Across streams each stream's time words are read on its own clock
  (tempo.agent.stream_scopes): "the last minute" is each stream's last minute, "after that" follows
  each stream's own cited range; `time_scope.streams` says what each stream was searched in.
- retrieve: FAISS top-K within the scope (from each of its ranges; across streams each stream within
  its own), plus temporal neighbours.
- compress: the query-aware SVLM pass on the candidates (cached by the backend), giving relevance.
- widen: when the highest relevance is under `weak_evidence`, once per turn: K × `widen_factor`
  (skipped when fewer than K candidates came back: the scope was already seen whole); when the time
  scope held no segment at all, the whole stream. The result says so (`widened`, `widen_reason`).
- allocate: ATA over the whole timeline. answer: the global LLM, its text streamed through
  LangGraph's custom stream (`{"answer_text": piece}`). cite: times in the answer -> citations on the
  allocation's segments; the compressed candidates are attached as evidence. remember: the turn is
  appended to the thread's history, which the checkpointer keeps for the next turn's rewrite.

State is one typed dict. The steps' typed results (`compression`: the candidates' query-aware
tokens; `plan`: the ATA plan; `timeline`: its rows) pass whole from node to node in channels that are
never checkpointed (LangGraph's `UntrackedValue`); every other value is JSON-friendly and checkpointed
(indices, times, scores, counts, texts). What a turn cost (cache hits, segments compressed, seconds
per step) is state too, written by the nodes that spend it. Input keys persist in the thread's state
like any other, so every turn must pass all of them (`turn_input` does).

The graph is compiled for one `AskSettings` (the per-question settings: top-K, widening, budget, ...);
`Conversations` keeps one compiled graph per settings it has seen.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import replace
from typing import Annotated, Any, TypedDict

from langgraph.channels import UntrackedValue
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from tempo.agent.memory_backend import MemoryBackend
from tempo.agent.rewrite import HistoryTurn, choose_standalone, needs_context
from tempo.agent.scopes import (
    ScopeReading,
    cited_range,
    read_scope,
    reference_of,
    retrieve_in_ranges,
    scope_dict,
    scope_ranges,
    standalone_for,
    turn_scope,
)
from tempo.agent.stream_scopes import (
    CrossReading,
    asked_per_stream,
    cited_per_stream,
    cross_turn_scope,
    read_across,
    retrieve_across,
    stream_ranges,
    turn_on_stream,
)
from tempo.agent.timescope import StreamClock
from tempo.engine.citations import cite as cite_answer
from tempo.engine.multi import stream_rows
from tempo.engine.multi_cite import cite_streams
from tempo.engine.recall import AllocationPlan, Compression
from tempo.engine.result import SegmentHit, TimelineRow, TimeScope, evidence_rows, timeline_rows
from tempo.errors import TempoError
from tempo.memory.store_types import StreamInfo
from tempo.settings import AskSettings

log = logging.getLogger(__name__)


class RelevanceEntry(TypedDict):
    index: int
    relevance: float


class AgentState(TypedDict, total=False):
    # Input of a turn (pass all of them every turn: state persists in the thread).
    stream: str
    question: str
    time_range: list[float] | None  # [start, end] seconds, checked at the edge; overrides time words
    streams: list[str] | None  # cross-stream (issue 22): two or more streams asked together; else None
    # The thread: its last `AskSettings.history_turns` turns, oldest first, kept by the
    # checkpointer. Only these are read (by the rewrite), and a checkpoint stores a channel's whole
    # value each time it changes: an ever-growing list would make a thread's checkpoints O(n²).
    # The whole transcript lives in the ThreadStore.
    history: list[HistoryTurn]
    # Working values of the current turn.
    standalone_question: str
    rewrite_source: str  # "question" | "model" | "fallback"
    time_scope: TimeScope | None
    asked_ranges: list[list[float]]  # the ranges the question asked about (kept when widening drops them)
    k: int  # candidates to retrieve: the settings' top-K, times the widening factor once widened
    candidates: list[SegmentHit]
    relevance: list[RelevanceEntry]  # by segment index
    top_relevance: float | None
    widened: bool
    widen_reason: str | None
    compression: Annotated[Compression | None, UntrackedValue(object)]  # never checkpointed (tokens)
    plan: Annotated[AllocationPlan | None, UntrackedValue(object)]  # never checkpointed
    timeline: Annotated[list[TimelineRow], UntrackedValue(list)]  # the plan's rows: the whole timeline
    answer: str
    answer_cached: bool
    citations: list[dict[str, Any]]
    evidence: list[TimelineRow]
    # What the turn cost (reset by `turn_input`).
    cache_hits: int  # candidates whose query-aware pass came from the cache
    compressed: int  # candidates that ran through the compressor
    timings: dict[str, float]  # seconds per step, summed over widening
    # Across streams: the chosen streams' headers, read once per question (given by the caller or read
    # by the rewrite) and reused by every step; never checkpointed (a resumed turn reads them again).
    stream_infos: Annotated[dict[str, StreamInfo] | None, UntrackedValue(object)]
    asked_stream_ranges: dict[str, list[list[float]]] | None  # per stream, when each had its own scope


def _streams(state: AgentState) -> list[str] | None:
    """The stream set of a cross-stream turn (tempo.engine.multi), None for one stream (`stream`)."""
    streams = state.get("streams")
    return list(streams) if streams and len(streams) > 1 else None


def _timed(state: AgentState, step: str, t0: float) -> dict[str, dict[str, float]]:
    """The state update adding the seconds since `t0` to `step`'s time."""
    timings = dict(state.get("timings") or {})
    timings[step] = timings.get(step, 0.0) + time.perf_counter() - t0
    return {"timings": timings}


# ----- nodes --------------------------------------------------------------------------------------------


def rewrite(state: AgentState, *, backend: MemoryBackend, settings: AskSettings) -> dict[str, Any]:
    t0 = time.perf_counter()
    question = state["question"]
    history = state.get("history", [])[-settings.history_turns :] if settings.history_turns > 0 else []
    previous = history[-1] if history else None
    streams = _streams(state)
    infos = (state.get("stream_infos") or backend.stream_headers(streams)) if streams else None
    clock: StreamClock | None = None
    reading: ScopeReading | None = None
    across: CrossReading | None = None
    if state.get("time_range"):
        pass  # an explicit range: no time words are read
    elif streams:  # each stream's time words on its own clock (tempo.agent.stream_scopes)
        across = read_across(question, backend.streams_clocks(streams, infos), previous)
    else:  # time words of the question, relative ones ("after that") resolved against the previous turn
        clock = backend.stream_clock(state["stream"])
        previous = turn_on_stream(previous, state["stream"], clock)  # after a cross-stream turn: its own part
        reading = read_scope(question, clock, reference_of(previous))
    if across is not None:
        moved = previous is not None and across.relative
    else:
        moved = previous is not None and reading is not None and reading.relative
    llm_output: str | None = None
    # A question that stands alone is asked as it is: no model call (a turn's fixed cost), and the
    # same words as before reuse the cached query-aware pass and answer. A follow-up that moves in
    # time is rewritten deterministically (its relative words become clock times).
    if history and needs_context(question) and not moved:
        try:
            llm_output = backend.rewrite_with_llm(history, question)
        except TempoError:
            raise
        except Exception:  # the rewrite is an optimisation: a failing model falls back, never fails the turn
            log.warning("rewrite model failed; using the deterministic rewrite", exc_info=True)
    if moved and previous is not None and across is not None:
        standalone, source = across.standalone(previous["standalone_question"]), "fallback"
    elif moved and reading is not None and previous is not None and clock is not None:
        standalone, source = standalone_for(question, reading, previous["standalone_question"], clock), "fallback"
    else:
        standalone, source = choose_standalone(
            llm_output,
            question,
            [h["standalone_question"] for h in history],
            [h["answer"] for h in history],
        )

    scope: TimeScope | None = None
    if state.get("time_range"):
        start, end = state["time_range"]  # type: ignore[misc]
        scope = scope_dict([(start, end)], "explicit")  # type: ignore[assignment]
    elif across is not None:
        scope = cross_turn_scope(question, standalone, across, previous)  # type: ignore[arg-type,assignment]
    elif clock is not None:
        scope = turn_scope(question, standalone, reading, clock, previous)  # type: ignore[arg-type,assignment]
    update = {
        "standalone_question": standalone,
        "rewrite_source": source,
        "time_scope": scope,
        "asked_ranges": [list(r) for r in scope_ranges(scope) or []],  # type: ignore[arg-type]
        "asked_stream_ranges": asked_per_stream(scope),  # type: ignore[arg-type]
        "stream_infos": infos,
        "k": settings.top_k,
        "widened": False,
        "widen_reason": None,
    }
    return {**update, **(_timed(state, "rewrite_s", t0) if llm_output is not None else {})}


def retrieve(state: AgentState, *, backend: MemoryBackend, settings: AskSettings) -> dict[str, Any]:
    t0 = time.perf_counter()
    query = state["standalone_question"]
    ranges = scope_ranges(state.get("time_scope"))  # type: ignore[arg-type]
    if streams := _streams(state):
        infos = state.get("stream_infos")
        per_stream = stream_ranges(state.get("time_scope"), streams)  # type: ignore[arg-type]
        hits = retrieve_across(
            lambda rs, k: backend.retrieve_streams(list(rs), query, k, None, settings, time_ranges=rs, infos=infos),
            per_stream,
            streams,
            state["k"],
        )
    else:
        stream = state["stream"]
        hits = retrieve_in_ranges(lambda r, k: backend.retrieve(stream, query, k, r, settings), ranges, state["k"])
    return {"candidates": hits, **_timed(state, "retrieve_s", t0)}


def compress(state: AgentState, *, backend: MemoryBackend) -> dict[str, Any]:
    t0 = time.perf_counter()
    compression = _recompress(state, backend)
    entries = [RelevanceEntry(index=int(i), relevance=float(r)) for i, r in sorted(compression.relevance.items())]
    top = max((e["relevance"] for e in entries), default=None)
    return {
        "compression": compression,
        "relevance": entries,
        "top_relevance": top,
        "cache_hits": state.get("cache_hits", 0) + compression.cache_hits,
        "compressed": state.get("compressed", 0) + len(compression.results) - compression.cache_hits,
        **_timed(state, "compress_s", t0),
    }


def _recompress(state: AgentState, backend: MemoryBackend) -> Compression:
    if (streams := _streams(state)) and state.get("candidates"):
        infos = state.get("stream_infos")
        return backend.compress_streams(streams, state["standalone_question"], state["candidates"], infos=infos)
    indices = [h["index"] for h in state.get("candidates", [])]
    return backend.compress(state["stream"], state["standalone_question"], indices) if indices else Compression({}, 0)


def evidence_is_weak(state: AgentState, settings: AskSettings) -> bool:
    top = state.get("top_relevance")
    return top is None or top < settings.weak_evidence


def after_compress(state: AgentState, *, settings: AskSettings) -> str:
    """Widen once, and only when it can find something new: weak evidence with a full candidate
    list (more may exist), or no candidate at all inside a time scope (the stream may have some)."""
    if state.get("widened") or not evidence_is_weak(state, settings):
        return "allocate"
    candidates = state.get("candidates", [])
    if not candidates:
        return "widen" if state.get("time_scope") else "allocate"
    if len(candidates) < state["k"]:  # the scope had fewer segments than K: all were seen already
        return "allocate"
    return "widen"


def widen(state: AgentState, *, settings: AskSettings) -> dict[str, Any]:
    if not state.get("candidates"):
        return {
            "widened": True,
            "time_scope": None,
            "widen_reason": "no segment in the asked time scope; searched the whole "
            + ("of every stream" if _streams(state) else "stream"),
        }
    top = state.get("top_relevance")
    k = state["k"] * settings.widen_factor
    why = "no relevance" if top is None else f"highest relevance {top:.2f} < {settings.weak_evidence:.2f}"
    reason = f"{why}; retrieved {k} candidates instead of {state['k']}"
    return {"widened": True, "k": k, "widen_reason": reason}


def allocate(state: AgentState, *, backend: MemoryBackend, settings: AskSettings) -> dict[str, Any]:
    t0 = time.perf_counter()
    compression = state.get("compression")
    if compression is None:  # a turn resumed from a checkpoint (the cache makes this cheap)
        compression = _recompress(state, backend)
    streams = _streams(state)
    if streams:
        plan = backend.allocate_streams(streams, compression, settings, infos=state.get("stream_infos"))
    else:
        plan = backend.allocate(state["stream"], compression, settings)
    return {
        "compression": compression,
        "plan": plan,
        "timeline": stream_rows(plan, streams) if streams else timeline_rows(plan, state["stream"]),
        **_timed(state, "allocate_s", t0),
    }


def answer(state: AgentState, *, backend: MemoryBackend, settings: AskSettings) -> dict[str, Any]:
    writer = get_stream_writer()

    def on_text(piece: str) -> None:
        writer({"answer_text": piece})

    update: dict[str, Any] = {}
    compression, plan = state.get("compression"), state.get("plan")
    if compression is None or plan is None:  # a turn resumed from a checkpoint: they are not in it
        update = allocate(state, backend=backend, settings=settings)
        compression, plan = update["compression"], update["plan"]
    t0 = time.perf_counter()
    question = state["standalone_question"]
    if streams := _streams(state):
        text, cached = backend.answer_streams(
            streams, question, plan, compression, on_text, settings, infos=state.get("stream_infos")
        )
    else:
        text, cached = backend.answer(state["stream"], question, plan, compression, on_text, settings)
    # Timed on top of the allocation's update, so a resumed turn keeps its allocate_s too.
    return {**update, "answer": text, "answer_cached": cached, **_timed({**state, **update}, "answer_s", t0)}


def cite(state: AgentState, *, settings: AskSettings) -> dict[str, Any]:
    timeline = state.get("timeline") or []
    if streams := _streams(state):
        found = cite_streams(state.get("answer", ""), timeline, streams)
    else:
        found = [replace(c, stream=state.get("stream")) for c in cite_answer(state.get("answer", ""), timeline)]
    citations = [c.to_dict() for c in found]
    return {"citations": citations, "evidence": evidence_rows(timeline, settings.evidence_segments)}


def remember(state: AgentState, *, settings: AskSettings) -> dict[str, Any]:
    turn = HistoryTurn(
        question=state["question"],
        standalone_question=state["standalone_question"],
        answer=state.get("answer", ""),
        ranges=state.get("asked_ranges") or [],
        cited=cited_range(state.get("citations") or []),
    )
    if _streams(state):  # each stream's own "that" for the next turn (tempo.agent.stream_scopes)
        turn["stream_ranges"] = state.get("asked_stream_ranges")
        turn["stream_cited"] = cited_per_stream(state.get("citations") or [])
    kept = [*state.get("history", []), turn][-settings.history_turns :] if settings.history_turns > 0 else []
    return {"history": kept}


# ----- wiring -------------------------------------------------------------------------------------------


def build_agent_graph(
    backend: MemoryBackend,
    *,
    checkpointer: BaseCheckpointSaver | None = None,
    settings: AskSettings | None = None,
):  # -> CompiledStateGraph (its generic parameters change between LangGraph releases)
    """The compiled agent graph for one `AskSettings`; with a checkpointer, threads (config thread_id)
    persist."""
    s = settings or AskSettings()
    p = functools.partial
    graph = StateGraph(AgentState)
    graph.add_node("rewrite", p(rewrite, backend=backend, settings=s))
    graph.add_node("retrieve", p(retrieve, backend=backend, settings=s))
    graph.add_node("compress", p(compress, backend=backend))
    graph.add_node("widen", p(widen, settings=s))
    graph.add_node("allocate", p(allocate, backend=backend, settings=s))
    graph.add_node("answer", p(answer, backend=backend, settings=s))
    graph.add_node("cite", p(cite, settings=s))
    graph.add_node("remember", p(remember, settings=s))

    graph.add_edge(START, "rewrite")
    graph.add_edge("rewrite", "retrieve")
    graph.add_edge("retrieve", "compress")
    graph.add_conditional_edges("compress", p(after_compress, settings=s), ["widen", "allocate"])
    graph.add_edge("widen", "retrieve")
    graph.add_edge("allocate", "answer")
    graph.add_edge("answer", "cite")
    graph.add_edge("cite", "remember")
    graph.add_edge("remember", END)
    return graph.compile(checkpointer=checkpointer)
