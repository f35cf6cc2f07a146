"""Rules and alerts over HTTP (`tempo serve`, issues 11 and 12): the same `AlertStore` calls as
`tempo rules` and `tempo alerts`, plus an SSE feed of the alert event stream.

    GET/POST /v1/rules, GET/DELETE /v1/rules/{id}         rule book (filter: ?stream=)
    GET /v1/alerts?stream=&since=&limit=                  alerts, oldest first (the newest `limit`)
    GET /v1/alerts/{id}, POST /v1/alerts/{id}/ack         one alert; acknowledge it
    GET /v1/alerts/events[?stream=&after=]                SSE: one `alert` event per entry of the stream

The feed reads the Redis Stream with blocking XREAD in worker threads of its own (a separate anyio
limiter, so followers neither block the event loop nor take the threads that lists and clips use)
and never enters the model queue. It ends when the client goes away: each XREAD blocks at most
FEED_BLOCK_S, after which the loop checks the connection and sends a keep-alive comment.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

import anyio
from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, field_validator
from tempo import inputs
from tempo.memory.alerts import AlertStore, Rule, parse_since
from tempo.memory.store import RedisMemoryStore

FEED_BLOCK_S = 1.0  # longest XREAD block: how late a disconnect is noticed (seconds)
MAX_FOLLOWERS = 32  # concurrent SSE followers; the next one is answered 503
EVENT_ID_PATTERN = r"^(\$|\d{1,20}-\d{1,20})$"  # a Redis Stream entry id, or '$' for only new events

_SCORE: TypeAdapter[float] = TypeAdapter(inputs.Score)
EventId = Annotated[str, Field(pattern=EVENT_ID_PATTERN, description="A Redis Stream entry id, or '$'.")]



class RuleIn(inputs.StrictInput):
    """A new rule (the fields and limits of `tempo rules add`)."""

    stream: inputs.StreamName
    text: inputs.RuleText
    enter: float | str = Field(
        default=0.8, description="Score in [0, 1] that opens an episode, or 'auto' (rolling baseline)."
    )
    exit: inputs.Score | None = Field(default=None, description="Score below which an episode closes.")
    min_segments: inputs.MinSegments = 2
    cooldown: inputs.CooldownSeconds = 60.0
    verify: bool = False
    webhook: inputs.WebhookUrl | None = None

    @field_validator("enter")
    @classmethod
    def _score_or_auto(cls, value: float | str) -> float | str:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        try:
            return _SCORE.validate_python(value)
        except ValidationError as exc:
            raise ValueError(f"{inputs.describe_error(exc.errors()[0])}, or 'auto'") from None


class RuleOut(BaseModel):
    id: str
    stream: str
    text: str
    enter: float | Literal["auto"]
    exit: float | None
    min_segments: int
    cooldown: float
    verify: bool
    webhook: str | None
    created: float


class AlertsQuery(inputs.StrictInput):
    stream: inputs.StreamName | None = Field(default=None, description="Only this stream's alerts.")
    since: str | None = Field(
        default=None,
        max_length=64,
        description="Only alerts opened since: Unix seconds, an ISO 8601 time, or a duration back (30m, 12h, 2d).",
    )
    limit: int = Field(default=100, ge=1, le=inputs.MAX_ALERTS, description="At most this many (the newest).")


def _check_stream(stream: str | None) -> None:
    if stream is not None:
        RedisMemoryStore.check_name(stream)


def register_alert_routes(
    app: FastAPI, store: Callable[[], AlertStore], *, deny_private_networks: bool | None = None
) -> None:
    """Add the rule and alert routes; `store()` gives the AlertStore (the service's, made on first use).
    Webhook URLs are checked by the network policy (`--deny-private-networks`, else the environment's)."""
    followers = anyio.CapacityLimiter(MAX_FOLLOWERS)

    alerts = store

    @app.get("/v1/rules", tags=["monitoring"])
    async def list_rules(stream: Annotated[inputs.StreamName | None, Query()] = None) -> list[RuleOut]:
        def work() -> list[RuleOut]:
            _check_stream(stream)
            return [RuleOut(**r.shown()) for r in alerts().rules(stream)]

        return await anyio.to_thread.run_sync(work)

    @app.post("/v1/rules", status_code=201, tags=["monitoring"])
    async def add_rule(body: RuleIn) -> RuleOut:
        rule = Rule(
            id="",
            stream=body.stream,
            text=body.text,
            enter=None if body.enter == "auto" else body.enter,
            exit=body.exit,
            min_segments=body.min_segments,
            cooldown=body.cooldown,
            verify=body.verify,
            webhook=body.webhook,
        )
        added = await anyio.to_thread.run_sync(
            functools.partial(alerts().add_rule, rule, deny_private=deny_private_networks)
        )
        return RuleOut(**added.shown())

    @app.get("/v1/rules/{rule_id}", tags=["monitoring"])
    async def show_rule(rule_id: str) -> RuleOut:
        return RuleOut(**(await anyio.to_thread.run_sync(alerts().get_rule, rule_id)).shown())

    @app.delete("/v1/rules/{rule_id}", status_code=204, tags=["monitoring"])
    async def remove_rule(rule_id: str) -> None:
        await anyio.to_thread.run_sync(alerts().remove_rule, rule_id)

    # Declared before /v1/alerts/{alert_id}, which would otherwise take "events" for an id.
    @app.get(
        "/v1/alerts/events",
        tags=["monitoring"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def alert_events(
        request: Request,
        stream: Annotated[inputs.StreamName | None, Query()] = None,
        after: Annotated[EventId | None, Query(description="Replay events after this entry id.")] = None,
        last_event_id: Annotated[EventId | None, Header()] = None,
    ) -> Any:
        """Server-sent events: `alert` (data: the alert's fields plus `event`: opened, verified or
        closed; `id`: the stream entry id, so a reconnect with Last-Event-ID misses nothing). New
        events only, unless `after` or Last-Event-ID names where to resume."""
        _check_stream(stream)
        store_ = alerts()
        start = after or last_event_id or "$"
        if start == "$":
            start = await anyio.to_thread.run_sync(store_.latest_event_id)

        def read(cursor: str) -> list[tuple[str, dict[str, Any]]]:
            return store_.events(cursor, count=100, block_ms=int(FEED_BLOCK_S * 1000))

        async def feed() -> AsyncIterator[bytes]:
            cursor = start
            yield b": following alert events\n\n"
            while not await request.is_disconnected():
                got = await anyio.to_thread.run_sync(read, cursor, limiter=followers)
                for entry_id, event in got:
                    cursor = entry_id
                    if stream is None or event.get("stream") == stream:
                        yield f"id: {entry_id}\n".encode() + _sse("alert", event)
                if not got:
                    yield b": keep-alive\n\n"

        return StreamingResponse(
            feed(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    @app.get("/v1/alerts", tags=["monitoring"])
    async def list_alerts(query: Annotated[AlertsQuery, Query()]) -> list[dict[str, Any]]:
        def work() -> list[dict[str, Any]]:
            _check_stream(query.stream)
            since = None if query.since is None else parse_since(query.since)
            return alerts().alerts(query.stream, since=since, limit=query.limit)

        return await anyio.to_thread.run_sync(work)

    @app.get("/v1/alerts/{alert_id}", tags=["monitoring"])
    async def show_alert(alert_id: str) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(alerts().alert, alert_id)

    @app.post("/v1/alerts/{alert_id}/ack", tags=["monitoring"])
    async def ack_alert(alert_id: str) -> dict[str, Any]:
        """Acknowledge an alert (kept; `acked` is the Unix time of the first acknowledgement)."""
        return await anyio.to_thread.run_sync(alerts().ack, alert_id)


def _sse(event: str, data: Any) -> bytes:
    from tempo.tools.server_sse import sse

    return sse(event, data)
