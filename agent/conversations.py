"""`Conversations`: the one entry point for multi-turn questions over memory.

`tempo chat`, `tempo ask --stream S --thread ID`, the LangChain tools and the MCP server all call
`Conversations.ask`, so a question on a thread gets the same answer whichever way it arrives:

    conv = Conversations(TempoService(model="ckpt"))
    first = conv.ask("cam1", "When does the truck arrive?")
    follow = conv.ask("cam1", "and when does it leave?", thread_id=first["thread_id"])

Threads persist in Redis (the memory's own server): the graph state through `RedisCheckpointSaver`,
the transcript through `ThreadStore`, so a thread continues in another process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from tempo.agent.checkpoint import RedisCheckpointSaver
from tempo.agent.errors import InvalidQuestionError, InvalidTimeScopeError
from tempo.agent.graph import AgentSettings, build_agent_graph, run_turn
from tempo.agent.memory_backend import MemoryBackend, track_turn
from tempo.agent.monitoring.alert_answers import answer_alert_question, is_alert_question
from tempo.agent.threads import ThreadStore, check_thread_id
from tempo.engine.recall import RecallSettings

if TYPE_CHECKING:
    from tempo.service import TempoService

MAX_QUESTION_CHARS = 2000


def check_question(question: Any) -> str:
    if not isinstance(question, str) or not question.strip():
        raise InvalidQuestionError("the question is empty; ask something about the video")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidQuestionError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
    return " ".join(question.split())


def check_time_range(
    start: float | None, end: float | None, duration: float | None = None
) -> tuple[float, float] | None:
    """A [start, end) scope in stream seconds from optional bounds (a missing one is the stream's edge)."""
    if start is None and end is None:
        return None
    lo = 0.0 if start is None else float(start)
    hi = float(duration if duration is not None else float("inf")) if end is None else float(end)
    if lo != lo or hi != hi or lo < 0:  # NaN or negative
        raise InvalidTimeScopeError("start and end must be seconds of stream time, 0 or more")
    if hi <= lo:
        raise InvalidTimeScopeError(f"the time scope must end after it starts (got {lo:g} s to {hi:g} s)")
    return lo, hi


class Conversations:
    """Threads of questions about one memory.

    Args:
        service: the memory and model (`TempoService`); only Redis is touched until a question is asked.
        checkpointer / threads: where graph state and transcripts live (default: the memory's Redis).
        backend: the model + memory the graph runs on (default `MemoryBackend(service, recall)`).
        settings: the graph's knobs (widening threshold, history, ...; top-K from `recall` by default).
        recall: the answer path's settings (`RecallSettings`: top-K, budget, answer cache, ...).
        max_new_tokens: longest answer (overrides `recall.max_new_tokens`).
    """

    def __init__(
        self,
        service: TempoService,
        *,
        checkpointer: RedisCheckpointSaver | None = None,
        threads: ThreadStore | None = None,
        backend: MemoryBackend | None = None,
        settings: AgentSettings | None = None,
        recall: RecallSettings | None = None,
        max_new_tokens: int | None = None,
    ) -> None:
        self.service = service
        self._checkpointer = checkpointer
        self._threads = threads
        self._backend = backend
        self.recall = recall or RecallSettings()
        if max_new_tokens is not None:
            self.recall = dataclasses.replace(self.recall, max_new_tokens=max_new_tokens)
        self.settings = settings or AgentSettings(top_k=self.recall.top_k)

    @cached_property
    def checkpointer(self) -> RedisCheckpointSaver:
        return self._checkpointer or RedisCheckpointSaver(self.service.store.client)

    @cached_property
    def threads(self) -> ThreadStore:
        return self._threads or ThreadStore(self.service.store.client, checkpointer=self.checkpointer)

    @cached_property
    def backend(self) -> MemoryBackend:
        return self._backend or MemoryBackend(self.service, self.recall)

    @cached_property
    def graph(self) -> Any:
        return build_agent_graph(self.backend, checkpointer=self.checkpointer, settings=self.settings)

    # ----- questions --------------------------------------------------------------------------------

    def ask(
        self,
        stream: str,
        question: str,
        *,
        thread_id: str | None = None,
        time_range: tuple[float, float] | None = None,
        top_k: int | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Answer `question` about `stream` on a thread (a new one when `thread_id` is None; an unknown
        id starts a thread with that id). Answer text goes to `on_text` as it is generated.

        Returns {"thread_id", "stream", "question", "standalone_question", "rewrite_source",
        "time_scope", "answer", "citations", "segments" (evidence: compressed segments used, most
        relevant first), "gaps" (stretches with no video in scope, each with a "no video from t1 to
        t2" note), "candidates" (retrieved segments), "top_relevance", "widened",
        "widen_reason", "cache_hits", "compressed", "answer_cached", "timings"}.
        """
        question = check_question(question)
        if thread_id is not None:
            check_thread_id(thread_id)
        info = self.service.stream(stream)  # UnknownStreamError before a thread is made for it
        if time_range is not None:
            time_range = check_time_range(time_range[0], time_range[1], info.end)
        record = self.threads.open(stream, thread_id)
        if is_alert_question(question):  # "what alerts fired last night?": from the alert log
            return self._answer_from_alerts(record.id, stream, question)
        with track_turn() as stats:
            result = run_turn(
                self.graph,
                thread_id=record.id,
                stream=stream,
                question=question,
                time_range=time_range,
                top_k=top_k,
                on_text=on_text,
                threads=self.threads,
            )
        evidence = result.pop("evidence") or []
        gaps = self.service.store.gaps(stream, *(time_range or (None, None)))
        return {
            "thread_id": record.id,
            "stream": stream,
            **result,
            "candidates": result.get("candidates") or [],
            "segments": evidence,
            "gaps": [{**g.to_dict(), "note": g.describe()} for g in gaps],  # "no video from t1 to t2"
            **stats.to_dict(),
        }

    def _answer_from_alerts(self, thread_id: str, stream: str, question: str) -> dict[str, Any]:
        """A turn answered from the alerts of `stream` (tempo.agent.monitoring.alert_answers)."""
        found = answer_alert_question(self.service.alerts, stream, question)
        self.threads.append_turn(thread_id, question, question, found["answer"], found["citations"])
        return {
            "thread_id": thread_id,
            "stream": stream,
            "question": question,
            "standalone_question": question,
            "rewrite_source": "alerts",
            "time_scope": None,  # the alerts' scope is wall clock: in `alerts_scope`
            "alerts_scope": found["scope"],
            "answer": found["answer"],
            "citations": found["citations"],
            "candidates": [],
            "top_relevance": None,
            "widened": False,
            "widen_reason": None,
            "segments": [],
            "cache_hits": 0,
            "compressed": 0,
            "answer_cached": False,
            "timings": {},
        }

    # ----- threads ----------------------------------------------------------------------------------

    def list_threads(self, stream: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Threads, most recently updated first: {"id", "stream", "created", "updated", "turns"}."""
        return [r.to_dict() for r in self.threads.list(stream, limit)]

    def show_thread(self, thread_id: str) -> dict[str, Any]:
        """{"id", "stream", "turns": [{"question", "standalone_question", "answer", "citations"}]}."""
        return self.threads.show(thread_id)

    def delete_thread(self, thread_id: str) -> bool:
        """Remove a thread's transcript and graph state; False when there was none."""
        return self.threads.delete(thread_id)
