"""The issue's follow-ups on the real system (tiny checkpoint, real Redis, FAISS and LangGraph): a 2:30
stream, threads whose follow-ups move in time, and questions with two ranges."""

from __future__ import annotations

import pytest
from tempo.agent.conversations import Conversations
from tempo.engine.timeexpr import format_clock
from tempo.settings import AskSettings

STREAM = "followups150"


@pytest.fixture(scope="module")
def conv(live_service):
    from agent_live_memory import add_live_stream  # loaded by conftest.py

    add_live_stream(live_service, STREAM, segments=30, step=5.0, wallclock0=None)  # 0-150 s, 5 s segments
    try:
        yield Conversations(live_service, settings=AskSettings(max_new_tokens=8, top_k=2))
    finally:
        # The session's memory is shared with the tool tests, which expect the one stream "cam".
        live_service.store.delete_stream(STREAM)


def ranges(result) -> list[tuple[float, float]]:
    return [(r["start"], r["end"]) for r in result["time_scope"]["ranges"]]


def inside(result, allowed: list[tuple[float, float]]) -> bool:
    return all(any(c["start"] < b and c["end"] > a for a, b in allowed) for c in result["candidates"])


def test_after_that_moves_past_the_first_minute_and_does_not_accumulate(conv):
    first = conv.ask(STREAM, "What happens in the first minute?")
    assert ranges(first) == [(0.0, 60.0)] and inside(first, [(0.0, 60.0)])
    # "that" is what the answer cited, when it cited something; else the scope it looked at.
    end = max((c["end"] for c in first["citations"]), default=60.0)
    then = conv.ask(STREAM, "And after that?", thread_id=first["thread_id"])
    assert ranges(then) == [(end, 150.0)] and inside(then, [(end, 150.0)])
    assert then["time_scope"]["phrase"].startswith("after that")
    assert then["rewrite_source"] == "fallback"
    if not first["citations"]:
        assert then["standalone_question"] == "What happens after 1:00?"
    else:
        assert then["standalone_question"] == f"What happens after {format_clock(end)}?"
    stored = conv.show_thread(first["thread_id"])["turns"]
    assert stored[1]["standalone_question"] == then["standalone_question"]
    assert "first minute" not in then["standalone_question"]


def test_before_that_after_the_last_minute(conv):
    last = conv.ask(STREAM, "What happens in the last minute?")
    assert ranges(last) == [(90.0, 150.0)]
    start = min((c["start"] for c in last["citations"]), default=90.0)
    before = conv.ask(STREAM, "what about before that?", thread_id=last["thread_id"])
    assert ranges(before) == [(0.0, start)] and inside(before, [(0.0, start)])


def test_compare_keeps_both_ranges_and_retrieves_from_each(conv):
    both = conv.ask_once(STREAM, "compare the first and the last minute")
    assert ranges(both) == [(0.0, 60.0), (90.0, 150.0)]
    assert (both["time_scope"]["start"], both["time_scope"]["end"]) == (0.0, 150.0)
    assert inside(both, [(0.0, 60.0), (90.0, 150.0)])
    assert any(c["end"] <= 60.0 for c in both["candidates"]) and any(c["start"] >= 90.0 for c in both["candidates"])
    # Both ranges stay in the answer's timeline, with candidates in each.
    kinds = {(s["start"] < 60.0, s["start"] >= 90.0) for s in both["segments"] if s["kind"] == "candidate"}
    assert kinds == {(True, False), (False, True)}

    points = conv.ask_once(STREAM, "compare 0:10 with 2:10")
    assert ranges(points) == [(0.0, 40.0), (100.0, 150.0)]
    assert inside(points, [(0.0, 40.0), (100.0, 150.0)])
    assert any(c["end"] <= 40.0 for c in points["candidates"])
    assert any(c["start"] >= 100.0 for c in points["candidates"])
