"""`Conversations`: the one entry point for multi-turn questions over memory.

`tempo chat`, `tempo ask --stream S --thread ID`, the LangChain tools and the MCP server all call
`Conversations.ask`, so a question on a thread gets the same answer whichever way it arrives:

    conv = Conversations(TempoService(model="ckpt"))
    first = conv.ask("cam1", "When does the truck arrive?")
    follow = conv.ask("cam1", "and when does it leave?", thread_id=first["thread_id"])
    once = conv.ask_once("cam1", "Is the gate open?", settings=AskSettings(top_k=8))  # no thread

Every form returns the one `TurnResult` (tempo.engine.result), with the turn's `AskSettings` (the
conversation's defaults unless a question brings its own) passed down whole.

Threads persist in Redis (the memory's own server): the graph state through `RedisCheckpointSaver`,
the transcript through `ThreadStore`, so a thread continues in another process.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from typing import Any

from tempo.agent.checkpoint import RedisCheckpointSaver
from tempo.agent.cross import alerts_across, choose_stream_infos
from tempo.agent.errors import InvalidQuestionError
from tempo.agent.graph import build_agent_graph
from tempo.agent.memory_backend import MemoryBackend
from tempo.agent.monitoring.alert_answers import answer_alert_question, is_alert_question
from tempo.agent.stream_scopes import stream_ranges
from tempo.agent.threads import ThreadStore, check_thread_id
from tempo.agent.turn import final_state, turn_result
from tempo.engine.result import TEMPO_FAMILY, TEMPO_TOKENS_UNIT, TurnResult, family_of
from tempo.inputs import QUESTION_MAX_CHARS, check_time_range
from tempo.memory.store_types import StreamInfo
from tempo.service import TempoService
from tempo.settings import AskSettings


def check_question(question: Any) -> str:
    """The question with its whitespace collapsed; InvalidQuestionError when it is empty or longer than
    tempo.inputs.QUESTION_MAX_CHARS (the one question limit of every way in)."""
    if not isinstance(question, str) or not question.strip():
        raise InvalidQuestionError("the question is empty; ask something about the video")
    if len(question) > QUESTION_MAX_CHARS:
        raise InvalidQuestionError(f"the question is longer than {QUESTION_MAX_CHARS} characters")
    return " ".join(question.split())


class Conversations:
    """Questions about one memory, on threads or one-shot.

    Args:
        service: the memory and model (`TempoService`); only Redis is touched until a question is asked.
        checkpointer / threads: where graph state and transcripts live (default: the memory's Redis).
        backend: the model + memory the graph runs on (default `MemoryBackend(service)`).
        settings: the per-question defaults (`AskSettings`); a question may bring its own.
    """

    def __init__(
        self,
        service: TempoService,
        *,
        checkpointer: RedisCheckpointSaver | None = None,
        threads: ThreadStore | None = None,
        backend: MemoryBackend | None = None,
        settings: AskSettings | None = None,
    ) -> None:
        self.service = service
        self._checkpointer = checkpointer
        self._threads = threads
        self._backend = backend
        self.settings = settings or AskSettings()
        self._graphs: dict[tuple[AskSettings, bool], Any] = {}
        self._graphs_lock = threading.Lock()

    @cached_property
    def checkpointer(self) -> RedisCheckpointSaver:
        return self._checkpointer or RedisCheckpointSaver(self.service.store.client)

    @cached_property
    def threads(self) -> ThreadStore:
        return self._threads or ThreadStore(self.service.store.client, checkpointer=self.checkpointer)

    @cached_property
    def backend(self) -> MemoryBackend:
        return self._backend or MemoryBackend(self.service)

    def graph(self, settings: AskSettings | None = None, *, threaded: bool = True) -> Any:
        """The agent graph compiled for `settings` (with the checkpointer when `threaded`), compiled
        once per distinct settings."""
        key = (settings or self.settings, threaded)
        with self._graphs_lock:
            if key not in self._graphs:
                checkpointer = self.checkpointer if threaded else None
                self._graphs[key] = build_agent_graph(self.backend, checkpointer=checkpointer, settings=key[0])
            return self._graphs[key]

    # ----- questions --------------------------------------------------------------------------------

    def ask(
        self,
        stream: str,
        question: str,
        *,
        thread_id: str | None = None,
        time_range: tuple[float | None, float | None] | None = None,
        settings: AskSettings | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> TurnResult:
        """Answer `question` about `stream` on a thread (a new one when `thread_id` is None; an unknown
        id starts a thread with that id), recorded in the thread's transcript. Answer text goes to
        `on_text` as it is generated. `time_range` is (start, end) in stream seconds, either bound None
        for the stream's edge; it is checked here (tempo.inputs.check_time_range), the graph takes it
        as valid."""
        question, info, scope = self._checked(stream, question, time_range, thread_id)  # before a thread is made
        fresh = thread_id is None or not self.threads.exists(thread_id)
        record = self.threads.open(stream, thread_id)
        if is_alert_question(question):  # "what alerts fired last night?": from the alert log
            return self._answer_from_alerts(record.id, stream, question)
        with self._forgotten_unless_answered(record.id if fresh else None):
            result = self._run(info, question, record.id, scope, settings or self.settings, on_text)
        self.threads.append_turn(
            record.id, result["question"], result["standalone_question"], result["answer"], result["citations"]
        )
        return result

    def ask_once(
        self,
        stream: str,
        question: str,
        *,
        time_range: tuple[float | None, float | None] | None = None,
        settings: AskSettings | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> TurnResult:
        """Answer one question outside any thread: the same graph as a thread's first turn (time words,
        retrieval, query-aware pass, widening, ATA, answer), nothing stored but the caches."""
        question, info, scope = self._checked(stream, question, time_range)
        return self._run(info, question, None, scope, settings or self.settings, on_text)

    def ask_streams(
        self,
        streams: Sequence[str] | None,
        question: str,
        *,
        thread_id: str | None = None,
        new_thread: bool = False,
        time_range: tuple[float | None, float | None] | None = None,
        settings: AskSettings | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> TurnResult:
        """Answer `question` across `streams` (None: every stream; on a thread's follow-up, the thread's
        streams unless the question names others), tempo.engine.multi: one embedding, one FAISS top-K over
        them all, one ATA budget, segments tagged with stream and time, citations naming their stream.
        On a thread when `thread_id` is given (an unknown id starts one) or `new_thread`; else one-shot
        (no thread is made). One stream is exactly `ask`/`ask_once` on it."""
        question = check_question(question)
        if thread_id is not None:
            check_thread_id(thread_id)
        previous = None
        if thread_id is not None and streams is None and self.threads.exists(thread_id):
            previous = self.threads.get(thread_id).streams
        infos = choose_stream_infos(self.service, streams, question, previous)  # the question's one read
        names = list(infos)
        ends = [i.end for i in infos.values() if i.end is not None]
        scope = check_time_range(time_range[0], time_range[1], max(ends) if ends else None) if time_range else None
        fresh = new_thread or (thread_id is not None and not self.threads.exists(thread_id))
        record = self.threads.open_streams(names, thread_id) if thread_id is not None or new_thread else None
        tid = record.id if record is not None else None
        if is_alert_question(question):
            return self._answer_from_alerts(tid, names, question)
        with self._forgotten_unless_answered(tid if fresh else None):
            result = self._run(infos[names[0]], question, tid, scope, settings or self.settings, on_text, names, infos)
        if tid is not None:
            self.threads.append_turn(
                tid, result["question"], result["standalone_question"], result["answer"], result["citations"]
            )
        return result

    @contextlib.contextmanager
    def _forgotten_unless_answered(self, thread_id: str | None) -> Iterator[None]:
        """Within: a thread this question just started (`thread_id`; None: nothing to do) is deleted again
        if its first question does not finish (cancelled, failed): no thread without a turn is left behind
        in `tempo threads` or the console."""
        try:
            yield
        except BaseException:
            if thread_id is not None:
                with contextlib.suppress(Exception):  # the question's own error is the one to report
                    if not self.threads.turns(thread_id, last=1):
                        self.threads.delete(thread_id)
            raise

    def _checked(
        self,
        stream: str,
        question: str,
        time_range: tuple[float | None, float | None] | None,
        thread_id: str | None = None,
    ) -> tuple[str, StreamInfo, tuple[float, float] | None]:
        """The question (whitespace collapsed), the thread id when one is given, the stream
        (UnknownStreamError names the known ones) and the time range, checked in that order."""
        question = check_question(question)
        if thread_id is not None:
            check_thread_id(thread_id)
        info = self.service.stream(stream)
        scope = check_time_range(time_range[0], time_range[1], info.end) if time_range is not None else None
        return question, info, scope

    def _run(
        self,
        info: StreamInfo,
        question: str,
        thread_id: str | None,
        time_range: tuple[float, float] | None,
        settings: AskSettings,
        on_text: Callable[[str], None] | None,
        streams: list[str] | None = None,
        infos: dict[str, StreamInfo] | None = None,
    ) -> TurnResult:
        t0 = time.perf_counter()
        stream = info.name
        graph = self.graph(settings, threaded=thread_id is not None)
        final = final_state(
            graph, thread_id=thread_id, stream=stream, question=question, time_range=time_range, on_text=on_text,
            streams=streams, stream_infos=infos,
        )  # fmt: skip
        # Each stream's gaps within its own scope (tempo.agent.stream_scopes): none for a stream that added nothing.
        names = streams or [stream]
        per_stream = stream_ranges(final.get("time_scope"), names)  # type: ignore[arg-type]
        spans: dict[str, list[Any]] = per_stream or {s: [(None, None)] for s in names}  # type: ignore[assignment]
        gaps = [g for s in names for a, b in spans[s] for g in self.service.store.gaps(s, a, b)]
        return turn_result(
            final,
            thread_id=thread_id,
            model=self.service.model_name,
            budget=settings.budget,
            fps=info.settings.sample_fps,
            window=info.settings.window,
            gaps=gaps,
            timings={"total_s": time.perf_counter() - t0},
            family=family_of(self.service.model),  # issue 23: the family that answered
            tokens_unit=getattr(self.service.model, "tokens_unit", TEMPO_TOKENS_UNIT),
        )

    def _answer_from_alerts(self, thread_id: str | None, streams: str | list[str], question: str) -> TurnResult:
        """A turn answered from the alerts of `streams` (tempo.agent.monitoring.alert_answers); one-shot
        when `thread_id` is None."""
        names = [streams] if isinstance(streams, str) else list(streams)
        stream = names[0]
        found = alerts_across(self.service.alerts, names, question) if len(names) > 1 else dict(
            answer_alert_question(self.service.alerts, stream, question)
        )
        found["citations"] = [{**c, "stream": c.get("stream", stream)} for c in found["citations"]]
        if thread_id is not None:
            self.threads.append_turn(thread_id, question, question, found["answer"], found["citations"])
        return TurnResult(
            thread_id=thread_id,
            stream=stream,
            source=None,
            model=self.service.model_name,
            sampling="stream",
            real_fps=None,
            question=question,
            standalone_question=question,
            rewrite_source="alerts",
            time_scope=None,  # the alerts' scope is wall clock: in `alerts_scope`
            alerts_scope=found["scope"],
            answer=found["answer"],
            citations=found["citations"],
            segments=[],
            evidence=[],
            candidates=[],
            top_relevance=None,
            widened=False,
            widen_reason=None,
            budget=self.settings.budget,
            tokens=0,
            avg_tokens_per_frame=0.0,
            anchors_dropped=0,
            gaps=[],
            cache_hits=0,
            compressed=0,
            answer_cached=False,
            timings={},
            family=TEMPO_FAMILY,
            tokens_unit=TEMPO_TOKENS_UNIT,
            streams=names,
        )

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
