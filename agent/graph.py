"""The agent: one LangGraph StateGraph, wired in `build_agent_graph`, over a `MemoryBackend`.

    rewrite -> retrieve -> compress -(weak evidence, first time)-> widen -> retrieve -> ...
                                    \\-(otherwise)-> allocate -> answer -> cite -> remember

- rewrite: a follow-up becomes a standalone question (the model's rewrite if the validator accepts
  it, else the deterministic fallback), and the time scope is resolved (explicit `time_range`, else
  time words of the question, else of the standalone question, else — for a follow-up — the previous
  turn's scope).
- retrieve: FAISS top-K within the scope, plus temporal neighbours (the backend's job).
- compress: the query-aware SVLM pass on the candidates (cached by the backend), giving relevance.
- widen: when the highest relevance is under `weak_evidence`, once per turn: K × `widen_factor`
  (skipped when fewer than K candidates came back: the scope was already seen whole); when the time
  scope held no segment at all, the whole stream. The result says so (`widened`, `widen_reason`).
- allocate: ATA over the whole timeline. answer: the global LLM, its text streamed through
  LangGraph's custom stream (`{"answer_text": piece}`). cite: times in the answer -> citations on the
  allocation's segments; the compressed candidates are attached as evidence. remember: the turn is
  appended to the thread's history, which the checkpointer keeps for the next turn's rewrite.

State is one typed dict. The steps' typed results (`compression`: the candidates' query-aware
tokens; `plan`: the ATA plan) pass whole from node to node in channels that are never checkpointed
(LangGraph's `UntrackedValue`); every other value is JSON-friendly and checkpointed (indices, times,
scores, counts, texts). Input keys persist in the thread's state like any other, so every turn must
pass all of them (`turn_input` does).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

from langgraph.channels import UntrackedValue
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from tempo.agent.backend import AllocatedSegment, HistoryTurn, SegmentHit
from tempo.agent.citations import cite as cite_answer
from tempo.agent.errors import InvalidTimeScopeError
from tempo.agent.rewrite import choose_standalone, needs_context
from tempo.agent.threads import ThreadStore
from tempo.agent.timescope import extract_time_scope
from tempo.engine.recall import AllocationPlan, Compression, RecallSettings
from tempo.errors import TempoError

if TYPE_CHECKING:
    from tempo.agent.memory_backend import MemoryBackend

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentSettings:
    top_k: int = RecallSettings.top_k  # candidates retrieved per question (before neighbours)
    widen_factor: int = 4  # K multiplier for the one widening step
    weak_evidence: float = 0.5  # highest candidate relevance under this widens once
    history_turns: int = 4  # previous turns the rewrite model sees
    evidence_segments: int = 8  # candidates attached to the result as evidence


class TimeScopeDict(TypedDict):
    start: float  # seconds
    end: float  # seconds
    phrase: str  # words of the question, "explicit" for a given range, "previous turn" when inherited


class RelevanceEntry(TypedDict):
    index: int
    relevance: float


class AgentState(TypedDict, total=False):
    # Input of a turn (pass all of them every turn: state persists in the thread).
    stream: str
    question: str
    time_range: list[float] | None  # [start, end] seconds from a tool or CLI option; overrides words
    top_k: int | None  # None: the settings' top_k
    # The thread: its last `AgentSettings.history_turns` turns, oldest first, kept by the
    # checkpointer. Only these are read (by the rewrite), and a checkpoint stores a channel's whole
    # value each time it changes: an ever-growing list would make a thread's checkpoints O(n²).
    # The whole transcript lives in the ThreadStore.
    history: list[HistoryTurn]
    # Working values of the current turn.
    standalone_question: str
    rewrite_source: str  # "question" | "model" | "fallback"
    time_scope: TimeScopeDict | None
    k: int
    candidates: list[SegmentHit]
    relevance: list[RelevanceEntry]  # by segment index
    top_relevance: float | None
    widened: bool
    widen_reason: str | None
    compression: Annotated[Compression | None, UntrackedValue(object)]  # never checkpointed (tokens)
    plan: Annotated[AllocationPlan | None, UntrackedValue(object)]  # never checkpointed
    allocation: list[AllocatedSegment]  # the plan's rows, for citations
    answer: str
    citations: list[dict[str, Any]]
    evidence: list[AllocatedSegment]


def turn_input(
    stream: str, question: str, *, time_range: tuple[float, float] | None = None, top_k: int | None = None
) -> AgentState:
    """The input of one turn, every input key set (so nothing leaks in from the previous turn)."""
    if time_range is not None:
        start, end = float(time_range[0]), float(time_range[1])
        if not (0 <= start < end):
            raise InvalidTimeScopeError(f"time range {start:g}-{end:g} s is not an interval of stream time")
        time_range_list: list[float] | None = [start, end]
    else:
        time_range_list = None
    if top_k is not None and top_k < 1:
        raise InvalidTimeScopeError("top_k must be at least 1")
    return {"stream": stream, "question": question, "time_range": time_range_list, "top_k": top_k}


# ----- nodes --------------------------------------------------------------------------------------------


def rewrite(state: AgentState, *, backend: MemoryBackend, settings: AgentSettings) -> dict[str, Any]:
    question = state["question"]
    history = state.get("history", [])[-settings.history_turns :] if settings.history_turns > 0 else []
    llm_output: str | None = None
    # A question that stands alone is asked as it is: no model call (a turn's fixed cost), and the
    # same words as before reuse the cached query-aware pass and answer.
    if history and needs_context(question):
        try:
            llm_output = backend.rewrite_with_llm(history, question)
        except TempoError:
            raise
        except Exception:  # the rewrite is an optimisation: a failing model falls back, never fails the turn
            log.warning("rewrite model failed; using the deterministic rewrite", exc_info=True)
    standalone, source = choose_standalone(
        llm_output,
        question,
        [h["standalone_question"] for h in history],
        [h["answer"] for h in history],
    )

    scope: TimeScopeDict | None = None
    if state.get("time_range"):
        start, end = state["time_range"]  # type: ignore[misc]
        scope = {"start": start, "end": end, "phrase": "explicit"}
    else:
        clock = backend.stream_clock(state["stream"])
        found = extract_time_scope(question, clock) or extract_time_scope(standalone, clock)
        if found is not None:
            scope = {"start": found.start, "end": found.end, "phrase": found.phrase}
        elif history and needs_context(question) and state.get("time_scope"):
            previous = state["time_scope"]
            scope = {"start": previous["start"], "end": previous["end"], "phrase": "previous turn"}  # type: ignore[index]
    return {
        "standalone_question": standalone,
        "rewrite_source": source,
        "time_scope": scope,
        "k": state.get("top_k") or settings.top_k,
        "widened": False,
        "widen_reason": None,
    }


def retrieve(state: AgentState, *, backend: MemoryBackend) -> dict[str, Any]:
    scope = state.get("time_scope")
    time_range = (scope["start"], scope["end"]) if scope else None
    hits = backend.retrieve(state["stream"], state["standalone_question"], state["k"], time_range)
    return {"candidates": [SegmentHit(**h) for h in hits]}


def compress(state: AgentState, *, backend: MemoryBackend) -> dict[str, Any]:
    compression = _recompress(state, backend)
    entries = [RelevanceEntry(index=int(i), relevance=float(r)) for i, r in sorted(compression.relevance.items())]
    top = max((e["relevance"] for e in entries), default=None)
    return {"compression": compression, "relevance": entries, "top_relevance": top}


def _recompress(state: AgentState, backend: MemoryBackend) -> Compression:
    indices = [h["index"] for h in state.get("candidates", [])]
    return backend.compress(state["stream"], state["standalone_question"], indices) if indices else Compression({}, 0)


def evidence_is_weak(state: AgentState, settings: AgentSettings) -> bool:
    top = state.get("top_relevance")
    return top is None or top < settings.weak_evidence


def after_compress(state: AgentState, *, settings: AgentSettings) -> str:
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


def widen(state: AgentState, *, settings: AgentSettings) -> dict[str, Any]:
    if not state.get("candidates"):
        return {
            "widened": True,
            "time_scope": None,
            "widen_reason": "no segment in the asked time scope; searched the whole stream",
        }
    top = state.get("top_relevance")
    k = state["k"] * settings.widen_factor
    why = "no relevance" if top is None else f"highest relevance {top:.2f} < {settings.weak_evidence:.2f}"
    reason = f"{why}; retrieved {k} candidates instead of {state['k']}"
    return {"widened": True, "k": k, "widen_reason": reason}


def allocate(state: AgentState, *, backend: MemoryBackend) -> dict[str, Any]:
    compression = state.get("compression")
    if compression is None:  # a turn resumed from a checkpoint (the cache makes this cheap)
        compression = _recompress(state, backend)
    plan = backend.allocate(state["stream"], compression)
    # Anchors were not scored for this question: their rows carry the weakest candidate's relevance.
    floor = min(compression.relevance.values(), default=0.0)
    rows = [
        AllocatedSegment(
            index=int(i), start=float(s), end=float(e), relevance=float(floor if math.isnan(r) else r), tokens=int(k)
        )
        for i, s, e, r, k in zip(plan.indices, plan.starts, plan.ends, plan.relevance, plan.counts, strict=True)
    ]
    return {"plan": plan, "allocation": rows}


def answer(state: AgentState, *, backend: MemoryBackend) -> dict[str, Any]:
    writer = get_stream_writer()

    def on_text(piece: str) -> None:
        writer({"answer_text": piece})

    compression, plan = state.get("compression"), state.get("plan")
    if compression is None or plan is None:  # a turn resumed from a checkpoint: they are not in it
        compression = _recompress(state, backend)
        plan = backend.allocate(state["stream"], compression)
    text = backend.answer(state["stream"], state["standalone_question"], plan, compression, on_text)
    return {"answer": text}


def cite(state: AgentState, *, settings: AgentSettings) -> dict[str, Any]:
    allocation = state.get("allocation", [])
    citations = [c.to_dict() for c in cite_answer(state.get("answer", ""), allocation)]
    relevance = {e["index"]: e["relevance"] for e in state.get("relevance", [])}
    compressed = [a for a in allocation if a["index"] in relevance]
    compressed.sort(key=lambda a: (-relevance[a["index"]], a["index"]))
    return {"citations": citations, "evidence": compressed[: settings.evidence_segments]}


def remember(state: AgentState, *, settings: AgentSettings) -> dict[str, Any]:
    turn = HistoryTurn(
        question=state["question"],
        standalone_question=state["standalone_question"],
        answer=state.get("answer", ""),
    )
    kept = [*state.get("history", []), turn][-settings.history_turns :] if settings.history_turns > 0 else []
    # The allocation covers the whole timeline (21 600 entries for 24 h of 4 s segments): drop it once
    # the turn is answered so the thread's stored state stays small (evidence keeps what was used).
    return {"history": kept, "allocation": []}


# ----- wiring -------------------------------------------------------------------------------------------


def build_agent_graph(
    backend: MemoryBackend,
    *,
    checkpointer: BaseCheckpointSaver | None = None,
    settings: AgentSettings | None = None,
):  # -> CompiledStateGraph (its generic parameters change between LangGraph releases)
    """The compiled agent graph; with a checkpointer, threads (config thread_id) persist."""
    s = settings or AgentSettings()
    p = functools.partial
    graph = StateGraph(AgentState)
    graph.add_node("rewrite", p(rewrite, backend=backend, settings=s))
    graph.add_node("retrieve", p(retrieve, backend=backend))
    graph.add_node("compress", p(compress, backend=backend))
    graph.add_node("widen", p(widen, settings=s))
    graph.add_node("allocate", p(allocate, backend=backend))
    graph.add_node("answer", p(answer, backend=backend))
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


# ----- running a turn -----------------------------------------------------------------------------------

RESULT_KEYS = (
    "question",
    "standalone_question",
    "rewrite_source",
    "time_scope",
    "answer",
    "citations",
    "evidence",
    "candidates",
    "top_relevance",
    "widened",
    "widen_reason",
)


def _result(final: dict[str, Any]) -> dict[str, Any]:
    return {key: final.get(key) for key in RESULT_KEYS}


def _record(threads: ThreadStore | None, thread_id: str, result: dict[str, Any]) -> None:
    if threads is not None:
        threads.append_turn(
            thread_id,
            result["question"],
            result["standalone_question"] or result["question"],
            result["answer"] or "",
            result["citations"] or [],
        )


def run_turn(
    graph: Any,
    *,
    thread_id: str,
    stream: str,
    question: str,
    time_range: tuple[float, float] | None = None,
    top_k: int | None = None,
    on_text: Callable[[str], None] | None = None,
    threads: ThreadStore | None = None,
    durability: str = "exit",
) -> dict[str, Any]:
    """Run one question through the graph on a thread; answer text goes to `on_text` as it comes.

    `durability="exit"` stores the thread's state once, when the turn ends, rather than after every
    node: a crashed turn is simply asked again (the backend's cache makes that cheap), and the large
    intermediate values (the whole-timeline allocation) are never written to Redis. Pass "async" to
    keep a checkpoint per node (time travel inside a turn, resuming a failed turn: the untracked
    `compression` and `plan` are then recomputed, from the caches, by the node that needs them).

    With `threads`, the answered turn is appended to the thread's transcript (the thread must exist:
    `ThreadStore.open` it first). Returns the turn's result: question, standalone_question,
    rewrite_source, time_scope, answer, citations, evidence, candidates, top_relevance, widened,
    widen_reason.
    """
    final = final_state(
        graph, thread_id=thread_id, stream=stream, question=question, time_range=time_range, top_k=top_k,
        on_text=on_text, durability=durability,
    )
    result = _result(final)
    _record(threads, thread_id, result)
    return result


def final_state(
    graph: Any,
    *,
    thread_id: str | None,
    stream: str,
    question: str,
    time_range: tuple[float, float] | None = None,
    top_k: int | None = None,
    on_text: Callable[[str], None] | None = None,
    durability: str = "exit",
) -> AgentState:
    """The graph's whole final state for one question (typed values included); `thread_id` None for a
    graph compiled without a checkpointer (a single question, no thread)."""
    config = {"configurable": {"thread_id": thread_id}} if thread_id is not None else {}
    persist = {"durability": durability} if getattr(graph, "checkpointer", None) is not None else {}
    final: dict[str, Any] = {}
    events: Iterator[tuple[str, Any]] = graph.stream(
        turn_input(stream, question, time_range=time_range, top_k=top_k),
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
