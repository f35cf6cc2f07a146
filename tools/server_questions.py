"""Questions and conversation threads over HTTP (`tempo serve`): the same `Conversations` calls as
`tempo ask --thread` and `tempo chat`, through the model queue.

    POST /v1/streams/{stream}/ask                 answer (JSON), or stream it (Accept: text/event-stream)
    POST /v1/ask                                  the same across streams (`streams`; absent = all)
    GET /v1/threads[?stream=&limit=]              threads, newest first
    GET/DELETE /v1/threads/{id}                   one thread's transcript; delete it
    POST /v1/threads/{id}/ask                     a follow-up on the thread's stream

The answer is the question's `TurnResult` (tempo.engine.result), as `tempo ask --json` prints it: its
`segments` are the whole timeline the answer saw (ATA made visible in the console). A question without
`thread_id` is one-shot (no thread is made) unless `new_thread` is true; a thread's follow-up keeps the
thread's streams unless the question names another stream.

A question is cancelled (tempo.models.cancel: the model stops at its next token or compressor batch,
no turn and no cached answer is kept) when its streamed answer's client goes away (the console's
Cancel closes the request) or when it runs past its timeout (504).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

import anyio
from fastapi import FastAPI, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import Field
from tempo import inputs
from tempo.agent.errors import ThreadNotFoundError
from tempo.engine.result import TurnResult
from tempo.errors import TempoError
from tempo.inputs import check_time_range
from tempo.models.cancel import cancellable, check_cancelled
from tempo.tools.server_problems import TITLES, status_of
from tempo.tools.server_sse import sse

if TYPE_CHECKING:
    from tempo.tools.server import TempoServer

log = logging.getLogger(__name__)



class ThreadAskRequest(inputs.StrictInput):
    question: inputs.Question
    start: inputs.StreamTime | None = Field(default=None, description="Only look from this stream time (s).")
    end: inputs.StreamTime | None = Field(default=None, description="Only look up to this stream time (s).")


class AskRequest(ThreadAskRequest):
    thread_id: inputs.ThreadId | None = Field(
        default=None, description="Thread to continue (an unknown id starts it); omit for a one-shot question."
    )
    new_thread: bool = Field(default=False, description="Without thread_id: start a thread (its id comes back).")


class CrossAskRequest(AskRequest):
    streams: list[inputs.StreamName] | None = Field(
        default=None, max_length=256, description="Streams to ask about together; omit for all streams."
    )


def register_question_routes(app: FastAPI, server: TempoServer) -> None:
    """Ask and thread routes over `server.conversations`, questions admitted by `server.queue`."""
    service = server.service

    async def answer(
        request: Request,
        stream: str | None,
        question: str,
        thread_id: str | None,
        start: float | None,
        end: float | None,
        *,
        streams: list[str] | None = None,
        new_thread: bool = False,
    ) -> Any:
        """`stream` None: across `streams` (None: all, or a thread's own streams)."""

        def scope() -> tuple[float | None, float | None] | None:
            if stream is None:  # across streams: checked against them by ask_streams
                return (start, end) if (start is not None or end is not None) else None
            info = service.stream(stream)
            return check_time_range(start, end, info.end) if (start is not None or end is not None) else None

        time_range = await anyio.to_thread.run_sync(scope)
        streaming = "text/event-stream" in request.headers.get("accept", "")
        server.queue.reserve()  # 429 now, before a response starts
        text_queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def on_text(piece: str) -> None:
            loop.call_soon_threadsafe(text_queue.put_nowait, ("text", piece))

        cancel = threading.Event()  # set when nobody waits for the answer any more

        def run() -> TurnResult:
            t0 = time.perf_counter()
            error = False
            write = on_text if streaming else None
            try:
                with cancellable(cancel):
                    check_cancelled()  # its client left while it waited for the model
                    return ask_now(write)
            except TempoError:
                error = True
                raise
            finally:
                server.tool_metrics.record("ask_video", time.perf_counter() - t0, error=error)

        def ask_now(write: Callable[[str], None] | None) -> TurnResult:
            if stream is not None and thread_id is not None:
                return server.conversations.ask(stream, question, thread_id=thread_id, time_range=time_range,
                                                on_text=write)  # fmt: skip
            return server.conversations.ask_streams(
                [stream] if stream is not None else streams, question, thread_id=thread_id,
                new_thread=new_thread, time_range=time_range, on_text=write,
            )  # fmt: skip

        # Its own task from now on: a client that goes away cannot leave the queue holding its place.
        task = asyncio.ensure_future(server.queue.submit(run))
        # Once the task ends (answered, failed, or given up at its timeout while the model still runs)
        # whatever still runs for it stops; its outcome is taken here, so an unread one is not logged.
        task.add_done_callback(lambda t: (cancel.set(), t.cancelled() or t.exception()))
        if not streaming:
            return await task

        return StreamingResponse(
            answer_events(task, text_queue, cancel),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @app.post(
        "/v1/streams/{stream}/ask",
        tags=["questions"],
        response_model=TurnResult,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def ask(stream: str, body: AskRequest, request: Request) -> Any:
        """Answer a question (JSON: the `TurnResult`), or stream it (`Accept: text/event-stream`): `text`
        events with the answer as it is generated, then `allocation` (the timeline's segments),
        `citations`, and `done` (the whole `TurnResult`)."""
        return await answer(
            request, stream, body.question, body.thread_id, body.start, body.end, new_thread=body.new_thread
        )

    @app.post(
        "/v1/ask",
        tags=["questions"],
        response_model=TurnResult,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def ask_across(body: CrossAskRequest, request: Request) -> Any:
        """Answer a question across `streams` (omitted: every stream; a thread's follow-up: the thread's
        streams unless the question names another): one FAISS search over them all, one token budget,
        segments and citations naming their stream. JSON or `text/event-stream` as the stream route."""
        return await answer(
            request, None, body.question, body.thread_id, body.start, body.end, streams=body.streams,
            new_thread=body.new_thread,
        )  # fmt: skip

    _register_thread_routes(app, server, answer)


async def answer_events(
    task: asyncio.Future[Any], text_queue: asyncio.Queue[tuple[str, Any]], cancel: threading.Event
) -> AsyncIterator[bytes]:
    """The SSE events of a streamed answer: `text` pieces as `text_queue` gets them, then `allocation`,
    `citations` and `done` from the finished `task` (or one `error`). A client that goes away before
    the end (the console's Cancel closes the request) sets `cancel`: the question stops."""
    task.add_done_callback(lambda _: text_queue.put_nowait(("end", None)))
    try:
        while True:
            kind, value = await text_queue.get()
            if kind == "text":
                yield sse("text", {"text": value})
            else:
                break
    finally:
        if not task.done():
            cancel.set()
    try:
        body = task.result()
    except TempoError as exc:
        yield sse("error", {"status": status_of(exc), "title": TITLES[status_of(exc)], "detail": str(exc)})
        return
    except Exception:
        log.exception("tempo serve: a streamed question failed")
        yield sse("error", {"status": 500, "detail": "the server failed to answer this question"})
        return
    yield sse("allocation", {"segments": body["segments"]})
    yield sse("citations", {"citations": body["citations"]})
    yield sse("done", body)


def _register_thread_routes(app: FastAPI, server: TempoServer, answer: Callable[..., Awaitable[Any]]) -> None:
    """The thread routes; a follow-up is answered by `answer` (the question routes' one path)."""

    @app.get("/v1/threads", tags=["threads"])
    async def list_threads(
        stream: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[dict[str, Any]]:
        return await anyio.to_thread.run_sync(lambda: server.conversations.list_threads(stream, limit))

    @app.get("/v1/threads/{thread_id}", tags=["threads"])
    async def show_thread(thread_id: str) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(server.conversations.show_thread, thread_id)

    @app.delete("/v1/threads/{thread_id}", status_code=204, tags=["threads"])
    async def delete_thread(thread_id: str) -> None:
        if not await anyio.to_thread.run_sync(server.conversations.delete_thread, thread_id):
            raise ThreadNotFoundError(f"no thread {thread_id!r}")

    @app.post("/v1/threads/{thread_id}/ask", tags=["threads", "questions"], response_model=TurnResult)
    async def ask_in_thread(thread_id: str, body: ThreadAskRequest, request: Request) -> Any:
        await anyio.to_thread.run_sync(server.conversations.show_thread, thread_id)  # 404 for an unknown thread
        # The thread's streams, unless the question names another (Conversations.ask_streams).
        return await answer(request, None, body.question, thread_id, body.start, body.end)
