"""Every value a user or another agent hands Tempo, with its limits: defined once, validated once.

The annotated pydantic types below are the single definition of each input. The CLI builds its
argparse `type=` parsers from them (`arg_type`), the tool input models (`AskVideoInput`, ...) are
made of them and serve as the LangChain tools' `args_schema`, and the MCP server generates its tool
signatures from those same models (`tool_signature`), so the JSON schemas other agents see carry the
same limits. A value outside them is one sentence (`describe_error`), never a traceback.

Kept free of torch and the model stack: `tempo --help` imports it.
"""

from __future__ import annotations

import argparse
import inspect
import math
import typing
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError, model_validator
from pydantic_core import ErrorDetails
from tempo.errors import InvalidInputError, InvalidTimeScopeError

# ---- limits ---------------------------------------------------------------------------------------
QUESTION_MAX_CHARS = 4000  # about 1K LLM tokens: a question with options, never a document
STREAM_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"  # Redis key parts and file names
THREAD_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
DEVICE_PATTERN = r"^(cpu|mps|(cuda|xpu)(:[0-9]{1,3})?)$"
REDIS_URL_PATTERN = r"^(redis|rediss|unix)://\S*$"
NON_BLANK_PATTERN = r"^\S(.*\S)?$"
WEBHOOK_URL_PATTERN = r"^https?://[^\s/?#]+\S*$"
MAX_TOP_K = 50  # candidate segments recompressed per question
MIN_FPS, MAX_FPS = 0.01, 240.0  # one frame per 100 s .. more than any camera delivers
MAX_WINDOW = 256  # frames per segment
MIN_EDGE, MAX_EDGE = 16, 4096  # pixels
MAX_BUDGET = 1 << 20  # visual tokens
MAX_CONTEXT = 1 << 22  # LLM context tokens
MAX_NEW_TOKENS = 32768
MAX_SECONDS = 1e10  # stream times and ages (about 317 years)
MAX_BATCH = 1024  # segments per forward pass
MAX_COUNT = 1 << 31  # segment counts and indices
MAX_BYTES = 1 << 62
MAX_DEMO_SECONDS = 3600.0
ORIGIN_PATTERN = r"^https?://[A-Za-z0-9.:\[\]-]+$"  # a web page's origin: scheme://host[:port], no path
MAX_CRF = 51  # libx264's coarsest constant rate factor (proxy quality)
MAX_ALERTS = 200  # alerts one list_alerts call returns
MAX_RULE_TEXT = 1000  # characters of a monitoring rule's standing question
MAX_MIN_SEGMENTS = 10_000
MAX_COOLDOWN = 7 * 86400.0  # seconds

# Explanations of the patterns above, for the one sentence a mismatch gets.
PATTERN_HINTS = {
    STREAM_NAME_PATTERN: "use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
    THREAD_ID_PATTERN: "use 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit",
    DEVICE_PATTERN: "use cpu, cuda, cuda:N, mps, xpu or xpu:N",
    REDIS_URL_PATTERN: "expected a redis://, rediss:// or unix:// URL",
    NON_BLANK_PATTERN: "it must not be blank or start or end with spaces",
    ORIGIN_PATTERN: "expected an origin such as https://ops.example.com or http://localhost:3000",
    WEBHOOK_URL_PATTERN: "expected an http:// or https:// URL",
}

# ---- the types ------------------------------------------------------------------------------------
Question = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=QUESTION_MAX_CHARS),
    Field(description=f"The question about the video (1 to {QUESTION_MAX_CHARS} characters)."),
]
Query = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=QUESTION_MAX_CHARS),
    Field(description=f"What to look for, in words (1 to {QUESTION_MAX_CHARS} characters)."),
]
StreamName = Annotated[
    str, StringConstraints(pattern=STREAM_NAME_PATTERN), Field(description="Memory stream name (see list_streams).")
]
ThreadId = Annotated[
    str,
    StringConstraints(pattern=THREAD_ID_PATTERN),
    Field(description="Conversation thread to continue (follow-up questions); omit to start a new thread."),
]
TopK = Annotated[int, Field(ge=1, le=MAX_TOP_K, description="How many segments (moments) to take from the index.")]
StreamTime = Annotated[
    float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False, description="A stream time in seconds.")
]
Fps = Annotated[float, Field(ge=MIN_FPS, le=MAX_FPS, allow_inf_nan=False, description="Frames sampled per second.")]
Window = Annotated[int, Field(ge=1, le=MAX_WINDOW, description="Sampled frames per segment.")]
FrameEdge = Annotated[int, Field(ge=MIN_EDGE, le=MAX_EDGE, description="Longest frame side in pixels.")]
Budget = Annotated[int, Field(ge=1, le=MAX_BUDGET, description="Visual token budget over the timeline.")]
ContextLimit = Annotated[int, Field(ge=1, le=MAX_CONTEXT, description="Global LLM context in tokens.")]
NewTokens = Annotated[int, Field(ge=1, le=MAX_NEW_TOKENS, description="Longest answer in tokens.")]
AgeSeconds = Annotated[
    float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False, description="An age or duration in seconds.")
]
ByteCount = Annotated[int, Field(ge=1, le=MAX_BYTES, description="A size in bytes.")]
SegmentCount = Annotated[int, Field(ge=1, le=MAX_COUNT, description="A number of segments.")]
StoredTokens = Annotated[int, Field(ge=1, le=1024, description="Memory tokens kept per segment.")]
SegmentIndex = Annotated[int, Field(ge=0, le=MAX_COUNT, description="A segment index (0 is the first).")]
BatchSize = Annotated[int, Field(ge=1, le=MAX_BATCH, description="Segments per forward pass.")]
Port = Annotated[int, Field(ge=1, le=65535, description="A TCP port.")]
Concurrency = Annotated[int, Field(ge=1, le=64, description="Worker threads in one process.")]
DemoSeconds = Annotated[
    float, Field(ge=4, le=MAX_DEMO_SECONDS, allow_inf_nan=False, description="Demo video length in seconds.")
]
Origin = Annotated[str, StringConstraints(pattern=ORIGIN_PATTERN, max_length=512), Field(description="A web origin.")]
QueueLength = Annotated[int, Field(ge=1, le=100_000, description="Requests that may wait.")]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1, description="A random seed.")]
ProxyQuality = Annotated[int, Field(ge=0, le=MAX_CRF, description="x264 CRF of live proxy clips (0 = lossless).")]
Device = Annotated[str, StringConstraints(pattern=DEVICE_PATTERN), Field(description="A torch device.")]
RedisUrl = Annotated[str, StringConstraints(pattern=REDIS_URL_PATTERN), Field(description="A Redis URL.")]
# Monitoring rules (tempo rules add; memory.alerts.validate_rule checks the same limits).
RuleText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_RULE_TEXT),
    Field(description=f"The standing question, e.g. 'a person climbs the fence' (1 to {MAX_RULE_TEXT} characters)."),
]
Score = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False, description="A relevance score in [0, 1].")]
MinSegments = Annotated[int, Field(ge=1, le=MAX_MIN_SEGMENTS, description="Consecutive segments to open an episode.")]
LeaseWait = Annotated[
    float, Field(ge=0, le=86400, allow_inf_nan=False, description="Seconds to wait for a held writer lease.")
]
CooldownSeconds = Annotated[
    float, Field(ge=0, le=MAX_COOLDOWN, allow_inf_nan=False, description="Seconds before an episode may re-open.")
]
WebhookUrl = Annotated[str, StringConstraints(pattern=WEBHOOK_URL_PATTERN), Field(description="An http(s) URL.")]
# A checkpoint directory or hub id, a host name: free text, but never blank.
Name = Annotated[str, StringConstraints(min_length=1, max_length=4096, pattern=NON_BLANK_PATTERN)]


# ---- one sentence per problem ----------------------------------------------------------------------
def describe_error(err: ErrorDetails) -> str:
    """The first problem pydantic found, as a clause: "input should be at most 50"."""
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        return PATTERN_HINTS.get(str(ctx.get("pattern")), "the value has the wrong form")
    if kind == "finite_number":
        return "input should be a finite number"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "input should be a whole number"
    if kind in ("float_parsing", "float_type"):
        return "input should be a number"
    if kind == "value_error":  # our own validators' sentences
        return str(ctx.get("error", err.get("msg", "invalid value"))).rstrip(".")
    message = str(err.get("msg", "invalid value")).rstrip(".")
    return message[:1].lower() + message[1:]


def check(annotation: Any, value: Any, what: str) -> Any:
    """`value` validated against one of the types above; InvalidInputError naming `what` if not."""
    try:
        return _adapter(annotation).validate_python(value)
    except ValidationError as exc:
        raise InvalidInputError(f"invalid {what}: {describe_error(exc.errors()[0])}") from None


def check_question(question: Any) -> str:
    """A question as every entry point accepts it: stripped, not blank, at most QUESTION_MAX_CHARS."""
    return check(Question, question, "question")


def check_time_range(
    start: float | None, end: float | None, duration: float | None = None
) -> tuple[float, float] | None:
    """A [start, end) scope in stream seconds from optional bounds (a missing end is the stream's
    `duration`, or open), or None when neither is given. The one check of a time range, done by the
    ways in (REST, tools, `Conversations.ask`); what they hand further down is a valid interval."""
    if start is None and end is None:
        return None
    lo = 0.0 if start is None else float(start)
    hi = float(duration if duration is not None else float("inf")) if end is None else float(end)
    if lo != lo or hi != hi or lo < 0:  # NaN or negative
        raise InvalidTimeScopeError("start and end must be seconds of stream time, 0 or more")
    if hi <= lo:
        raise InvalidTimeScopeError(f"the time scope must end after it starts (got {lo:g} s to {hi:g} s)")
    return lo, hi


_ADAPTERS: dict[int, TypeAdapter[Any]] = {}


def _adapter(annotation: Any) -> TypeAdapter[Any]:
    key = id(annotation)
    if key not in _ADAPTERS:
        _ADAPTERS[key] = TypeAdapter(annotation)
    return _ADAPTERS[key]


def arg_type(annotation: Any, metavar: str | None = None) -> Callable[[str], Any]:
    """An argparse `type=` for one of the types above: the value, or a usage error of one sentence."""
    adapter = _adapter(annotation)

    def parse(text: str) -> Any:
        try:
            value = adapter.validate_python(text)
        except ValidationError as exc:
            shown = text if len(text) <= 40 else text[:37] + "..."
            raise argparse.ArgumentTypeError(f"{describe_error(exc.errors()[0])} (got {shown!r})") from None
        if isinstance(value, float) and not math.isfinite(value):  # belt and braces: never a nan downstream
            raise argparse.ArgumentTypeError(f"input should be a finite number (got {text!r})")
        return value

    parse.__name__ = metavar or getattr(annotation, "__name__", "value")
    return parse


# ---- the tools' inputs (LangChain args_schema, MCP tool signatures) ---------------------------------
def _admits_bool(annotation: Any) -> bool:
    if annotation is bool or annotation is Any:
        return True
    return any(_admits_bool(a) for a in typing.get_args(annotation))


class StrictInput(BaseModel):
    """An input model of any way in (tool arguments, REST bodies): unknown fields are refused, strings
    stripped, and `true`/`false` are not numbers (JSON's true would otherwise pass as 1)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _booleans_are_not_numbers(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name) if isinstance(name, str) else None
                if isinstance(value, bool) and field is not None and not _admits_bool(field.annotation):
                    raise ValueError(f"{name} must not be {str(value).lower()}")
        return data


class ToolInput(StrictInput):
    """The arguments of one tool (MCP, LangChain)."""


class AskVideoInput(ToolInput):
    """Ask a question about a video stream in memory; answers cite times (seconds)."""

    question: Question
    stream: StreamName | None = Field(default=None, description="Memory stream to ask about; omit for all streams.")
    thread_id: ThreadId | None = None
    start: StreamTime | None = Field(default=None, description="Only look from this stream time (seconds).")
    end: StreamTime | None = Field(default=None, description="Only look up to this stream time (seconds).")


class SearchMomentsInput(ToolInput):
    """Find the moments of a stream that best match a description."""

    query: Query
    stream: StreamName | None = Field(default=None, description="Memory stream to search; omit for all streams.")
    start: StreamTime | None = Field(default=None, description="Only look from this stream time (seconds).")
    end: StreamTime | None = Field(default=None, description="Only look up to this stream time (seconds).")
    top_k: TopK = Field(default=5, description="How many moments to return.")


class ListStreamsInput(ToolInput):
    """List the video streams held in memory."""


class ListAlertsInput(ToolInput):
    """List the alerts monitoring rules raised (see `tempo rules`), oldest first."""

    stream: StreamName | None = Field(default=None, description="Only this stream's alerts.")
    since: Name | None = Field(
        default=None,
        max_length=64,
        description="Only alerts opened since: Unix seconds, an ISO 8601 time, or a duration back (30m, 12h, 2d).",
    )
    limit: int = Field(default=20, ge=1, le=MAX_ALERTS, description="At most this many (the newest).")


class TranscriptInput(ToolInput):
    """What was said or subtitled in a time range of a stream."""

    stream: StreamName
    start: StreamTime | None = Field(default=None, description="From this stream time (seconds).")
    end: StreamTime | None = Field(default=None, description="Up to this stream time (seconds).")


TOOL_INPUTS: dict[str, type[ToolInput]] = {
    "ask_video": AskVideoInput,
    "search_moments": SearchMomentsInput,
    "list_streams": ListStreamsInput,
    "list_alerts": ListAlertsInput,
    "transcript": TranscriptInput,
}


def tool_signature(model: type[BaseModel]) -> inspect.Signature:
    """A keyword-only function signature with the model's fields (types, limits, descriptions,
    defaults), for frameworks that build a tool's schema from a function (the MCP SDK)."""
    params = []
    for name, field in model.model_fields.items():
        annotation = Annotated[(field.annotation, *field.metadata, Field(description=field.description))]
        default = inspect.Parameter.empty if field.is_required() else field.default
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default))
    return inspect.Signature(params, return_annotation=dict[str, Any])
