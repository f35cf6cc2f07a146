"""A question of `tempo serve` whose client goes away (the console's Cancel closes its request) is
cancelled: the model stops at its next token and the thread keeps no turn of it. The server answers up
to 2000 new tokens here (seconds of the tiny model's babble), so a question that ran on would finish
its answer and store its turn."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx2
import pytest

from .conftest import ServeProcess

ASKS = re.compile(r'^tempo_tool_calls_total\{tool="ask_video"\} (\S+)$', re.M)


@pytest.fixture(scope="module")
def long_answers(serve_memory) -> Iterator[ServeProcess]:
    server = ServeProcess(serve_memory, "--max-new-tokens", "2000")
    yield server
    server.stop()


def asks_ended(base: str) -> float:
    """Questions whose model work ended (answered, failed or cancelled), from /metrics."""
    found = ASKS.search(httpx2.get(f"{base}/metrics").text)
    return float(found.group(1)) if found else 0.0


def test_a_streamed_question_whose_client_leaves_stops_and_keeps_no_turn(long_answers) -> None:
    base, thread = long_answers.base, "cancelled-in-console"
    before = asks_ended(base)
    with httpx2.stream(
        "POST",
        f"{base}/v1/streams/cam/ask",
        json={"question": "What moves, and where does it go?", "thread_id": thread},
        headers={"Accept": "text/event-stream"},
        timeout=120,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event: text"):
                break  # the first piece of the answer: the client leaves
    deadline = time.monotonic() + 120
    while asks_ended(base) == before:  # the question's model work ended (a cancelled one at once)
        assert time.monotonic() < deadline, "the question never ended"
        time.sleep(0.2)
    # It stopped before its turn, and the thread it had started is gone again (no thread without a turn).
    while [t for t in httpx2.get(f"{base}/v1/threads", params={"stream": "cam"}).json() if t["id"] == thread]:
        assert time.monotonic() < deadline, "the cancelled first question left its thread behind"
        time.sleep(0.2)

    # The server goes on: the next question on the same thread is answered and is its first turn.
    asked = httpx2.post(
        f"{base}/v1/streams/cam/ask", json={"question": "Where is the square?", "thread_id": thread}, timeout=300
    )
    assert asked.status_code == 200, asked.text
    turns = httpx2.get(f"{base}/v1/threads/{thread}").json()["turns"]
    assert [t["question"] for t in turns] == ["Where is the square?"]
