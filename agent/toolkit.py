"""The three operations Tempo offers other agents, with their typed inputs (LangChain tools and MCP).

`VideoToolkit` validates inputs with the pydantic models of tempo.inputs and returns JSON-ready dicts, so the
LangChain tools (tempo.tools.langchain_tools) and the MCP server (tempo.tools.mcp_server) are thin
adapters that cannot disagree. A user mistake raises `ToolInputError` or another `TempoError` with
one sentence; the adapters turn it into a tool error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from tempo.agent.conversations import Conversations
from tempo.agent.cross import search_streams
from tempo.agent.errors import ToolInputError
from tempo.engine.timeexpr import format_clock
from tempo.inputs import (
    MAX_TOP_K,
    TOOL_INPUTS,
    AskVideoInput,
    ListStreamsInput,
    SearchMomentsInput,
    ToolInput,
    check_time_range,
    describe_error,
)
from tempo.memory.alerts import parse_since
from tempo.memory.text_index import read_cues

if TYPE_CHECKING:
    from tempo.service import TempoService

__all__ = ["MAX_TOP_K", "AskVideoInput", "ListStreamsInput", "SearchMomentsInput", "ToolInputError", "VideoToolkit"]


# The inputs, with their limits, are defined once in tempo.inputs (shared with the CLI).
INPUTS: dict[str, type[ToolInput]] = TOOL_INPUTS

DESCRIPTIONS = {
    "ask_video": (
        "Answer a question about a video stream held in Tempo's memory (omit stream to ask across all "
        "streams), with citations (stream, start/end seconds, segment indices). Without thread_id the question "
        "is one-shot; pass a thread_id (an unknown one starts the thread) to ask follow-ups on the same thread: "
        "'and after that?' moves on from the previous answer's time. time_scope lists the ranges looked at."
    ),
    "search_moments": (
        "Find the moments (segments with stream, start/end seconds and a similarity score) of a video "
        "stream, or of all streams when stream is omitted, that best match a description or the words said "
        "or subtitled there, best first; a moment lists the words it holds."
    ),
    "transcript": (
        "What was said or subtitled in a stream between start and end (seconds; both optional): the cues "
        "(text, start, end, source, language) in time order."
    ),
    "list_streams": "List the video streams in Tempo's memory with their covered time (seconds) and size.",
    "list_alerts": (
        "List the alerts Tempo's monitoring rules raised (one per episode: rule text, stream times start/end "
        "in seconds with the segments to cite, wall-clock opened/closed, peak relevance, LLM verification)."
    ),
}


def describe_validation_error(tool: str, exc: ValidationError) -> str:
    """One sentence for the first problem pydantic found."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "input"
    kind = err.get("type", "")
    if kind == "missing":
        return f"{tool}: the argument {where!r} is required."
    if kind == "extra_forbidden":
        allowed = ", ".join(INPUTS[tool].model_fields) or "none"
        return f"{tool}: unknown argument {where!r} (allowed: {allowed})."
    return f"{tool}: invalid {where!r}: {describe_error(err)}."


def validate(tool: str, arguments: Any) -> Any:
    """The tool's input model from raw arguments; ToolInputError (one sentence) when they do not fit."""
    if tool not in INPUTS:
        raise ToolInputError(f"unknown tool {tool!r} (tools: {', '.join(INPUTS)})")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise ToolInputError(f"{tool}: arguments must be an object of named values.")
    try:
        return INPUTS[tool].model_validate(arguments)
    except ValidationError as exc:
        raise ToolInputError(describe_validation_error(tool, exc)) from None


class VideoToolkit:
    """ask_video / search_moments / list_streams over one `Conversations` (and its service)."""

    def __init__(self, conversations: Conversations) -> None:
        self.conversations = conversations

    @classmethod
    def for_service(cls, service: TempoService, **conversation_options: Any) -> VideoToolkit:
        return cls(Conversations(service, **conversation_options))

    @property
    def service(self) -> TempoService:
        return self.conversations.service

    def call(self, tool: str, arguments: Any) -> dict[str, Any]:
        """Validate and run a tool by name (what the MCP server and tests use)."""
        args = validate(tool, arguments)
        return getattr(self, tool)(**args.model_dump())

    def ask_video(
        self,
        question: str,
        stream: str | None = None,
        thread_id: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> dict[str, Any]:
        conv = self.conversations
        if stream is not None and thread_id is not None:
            result = conv.ask(stream, question, thread_id=thread_id, time_range=(start, end))
        else:  # one-shot (no thread), or across streams (stream omitted: all, or a thread's own streams)
            streams = None if stream is None else [stream]
            result = conv.ask_streams(streams, question, thread_id=thread_id, time_range=(start, end))
        keep = (
            "thread_id",
            "stream",
            "streams",
            "question",
            "standalone_question",
            "answer",
            "citations",
            "evidence",
            "time_scope",
            "rewrite_source",
            "widened",
            "widen_reason",
        )
        return {k: result[k] for k in keep}

    def search_moments(
        self,
        query: str,
        stream: str | None = None,
        start: float | None = None,
        end: float | None = None,
        top_k: int = 5,
    ) -> dict[str, Any]:
        streams = None if stream is None else [stream]  # None: every stream, one FAISS search over them all
        hits = search_streams(self.service, streams, query, top_k=top_k, start=start, end=end)
        words = {
            name: read_cues(self.service.store, name, [int(h.index) for h in hits if h.stream == name])
            for name in dict.fromkeys(h.stream for h in hits)
        }
        return {
            "stream": stream,
            "query": query,
            "moments": [
                {
                    "stream": h.stream,
                    "index": int(h.index),
                    "start": round(float(h.start), 3),
                    "end": round(float(h.end), 3),
                    "clock": format_clock(h.start),
                    "score": round(float(h.score), 6),
                    "words": [c.text for c in words[h.stream].get(int(h.index), ())],
                }
                for h in hits
            ],
        }

    def transcript(self, stream: str, start: float | None = None, end: float | None = None) -> dict[str, Any]:
        info = self.service.stream(stream)
        time_range = check_time_range(start, end, info.end)
        cues = self.service.transcript(stream, time_range)
        return {"stream": stream, "start": None if time_range is None else time_range[0],
                "end": None if time_range is None else time_range[1], "cues": [c.to_dict() for c in cues]}

    def list_streams(self) -> dict[str, Any]:
        return {"streams": [s.summary(self.service.store.gaps(s.name)) for s in self.service.streams()]}

    def list_alerts(self, stream: str | None = None, since: str | None = None, limit: int = 20) -> dict[str, Any]:
        if stream is not None:
            self.service.stream(stream)  # UnknownStreamError listing the known ones
        found = self.service.alerts.alerts(stream, since=None if since is None else parse_since(since), limit=limit)
        keep = ("id", "stream", "rule", "text", "opened_at", "closed_at", "start", "end", "start_wallclock",
                "end_wallclock", "peak", "segments", "verified", "explanation", "acked")  # fmt: skip
        return {
            "alerts": [
                {
                    **{k: a.get(k) for k in keep},
                    "citation": {
                        "start": round(float(a["start"]), 3),
                        "end": round(float(a["end"]), 3),
                        "segments": list(range(int(a["first_segment"]), int(a["last_segment"]) + 1)),
                    },
                }
                for a in found
            ]
        }
